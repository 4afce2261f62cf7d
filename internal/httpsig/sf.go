package httpsig

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
)

// A strict parser for the part of RFC 8941 (Structured Field Values) used by
// Signature-Input, Signature and Content-Digest: dictionaries (§3.2) whose
// members are inner lists (§3.1.1) or items (§3.3) with parameters (§3.1.2),
// bare items being integers, strings, tokens, byte sequences and booleans.
// Decimals are refused. Duplicate dictionary keys are refused rather than
// resolved to the last one (§4.2.2 would keep the last): two signatures
// under one label are an attack, not a convenience.

type itemKind uint8

const (
	kindInteger itemKind = iota + 1
	kindString
	kindToken
	kindBytes
	kindBoolean
)

type bareItem struct {
	kind itemKind
	i    int64
	s    string // string or token
	b    []byte
	t    bool
}

type param struct {
	key string
	val bareItem
}

type item struct {
	val    bareItem
	params []param
}

type member struct {
	key    string
	isList bool
	list   []item // when isList
	item   item   // otherwise; for a list, item.params are the list's
}

const (
	maxMembers   = 8
	maxListItems = 32
	maxParams    = 16
)

var errSF = errors.New("malformed structured field")

type sfParser struct {
	s string
	i int
}

// parseDictionary parses s as an RFC 8941 §4.2.2 dictionary.
func parseDictionary(s string) ([]member, error) {
	p := sfParser{s: s}
	p.sp()
	var out []member
	for p.i < len(p.s) {
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		for _, m := range out {
			if m.key == key {
				return nil, errSF
			}
		}
		if !p.eat('=') {
			return nil, errSF // bare key = boolean true: never meaningful here
		}
		m := member{key: key}
		if p.peek() == '(' {
			m.isList = true
			if m.list, err = p.innerList(); err != nil {
				return nil, err
			}
			if m.item.params, err = p.params(); err != nil {
				return nil, err
			}
		} else if m.item, err = p.item(); err != nil {
			return nil, err
		}
		out = append(out, m)
		if len(out) > maxMembers {
			return nil, errSF
		}
		p.ows()
		if p.i == len(p.s) {
			return out, nil
		}
		if !p.eat(',') {
			return nil, errSF
		}
		p.ows()
		if p.i == len(p.s) {
			return nil, errSF // trailing comma
		}
	}
	return out, nil
}

func (p *sfParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *sfParser) eat(c byte) bool {
	if p.peek() == c && p.i < len(p.s) {
		p.i++
		return true
	}
	return false
}

func (p *sfParser) sp() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *sfParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// key is RFC 8941 §4.2.3.3: ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" ).
func (p *sfParser) key() (string, error) {
	start := p.i
	if c := p.peek(); !('a' <= c && c <= 'z' || c == '*') {
		return "", errSF
	}
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == '*') {
			break
		}
		p.i++
	}
	return p.s[start:p.i], nil
}

func (p *sfParser) innerList() ([]item, error) {
	p.i++ // '('
	var items []item
	for {
		p.sp()
		if p.eat(')') {
			return items, nil
		}
		if len(items) > 0 && p.s[p.i-1] != ' ' {
			return nil, errSF // items are separated by at least one SP
		}
		it, err := p.item()
		if err != nil {
			return nil, err
		}
		items = append(items, it)
		if len(items) > maxListItems {
			return nil, errSF
		}
		if c := p.peek(); c != ' ' && c != ')' {
			return nil, errSF
		}
	}
}

func (p *sfParser) item() (item, error) {
	v, err := p.bareItem()
	if err != nil {
		return item{}, err
	}
	ps, err := p.params()
	return item{val: v, params: ps}, err
}

func (p *sfParser) params() ([]param, error) {
	var ps []param
	for p.eat(';') {
		p.sp()
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		for _, q := range ps {
			if q.key == key {
				return nil, errSF
			}
		}
		v := bareItem{kind: kindBoolean, t: true}
		if p.eat('=') {
			if v, err = p.bareItem(); err != nil {
				return nil, err
			}
		}
		ps = append(ps, param{key: key, val: v})
		if len(ps) > maxParams {
			return nil, errSF
		}
	}
	return ps, nil
}

func (p *sfParser) bareItem() (bareItem, error) {
	switch c := p.peek(); {
	case c == '-' || '0' <= c && c <= '9':
		return p.integer()
	case c == '"':
		return p.str()
	case c == ':':
		return p.bytes()
	case c == '?':
		if p.i+1 < len(p.s) && (p.s[p.i+1] == '0' || p.s[p.i+1] == '1') {
			b := p.s[p.i+1] == '1'
			p.i += 2
			return bareItem{kind: kindBoolean, t: b}, nil
		}
	case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '*':
		return p.token()
	}
	return bareItem{}, errSF
}

// integer is RFC 8941 §4.2.4 without decimals: at most 15 digits.
func (p *sfParser) integer() (bareItem, error) {
	start := p.i
	p.eat('-')
	d := p.i
	for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
		p.i++
	}
	if p.i == d || p.i-d > 15 || p.peek() == '.' {
		return bareItem{}, errSF
	}
	n, err := strconv.ParseInt(p.s[start:p.i], 10, 64)
	if err != nil {
		return bareItem{}, errSF
	}
	return bareItem{kind: kindInteger, i: n}, nil
}

// str is RFC 8941 §4.2.5: printable ASCII, with \" and \\ escapes only.
func (p *sfParser) str() (bareItem, error) {
	p.i++ // '"'
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch {
		case c == '\\':
			if p.i >= len(p.s) || (p.s[p.i] != '"' && p.s[p.i] != '\\') {
				return bareItem{}, errSF
			}
			b.WriteByte(p.s[p.i])
			p.i++
		case c == '"':
			return bareItem{kind: kindString, s: b.String()}, nil
		case c < 0x20 || c > 0x7e:
			return bareItem{}, errSF
		default:
			b.WriteByte(c)
		}
	}
	return bareItem{}, errSF
}

// token is RFC 8941 §4.2.6: ( ALPHA / "*" ) *( tchar / ":" / "/" ).
func (p *sfParser) token() (bareItem, error) {
	start := p.i
	p.i++
	for p.i < len(p.s) {
		c := p.s[p.i]
		if !(isTchar(c) || c == ':' || c == '/') {
			break
		}
		p.i++
	}
	return bareItem{kind: kindToken, s: p.s[start:p.i]}, nil
}

func isTchar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// bytes is RFC 8941 §4.2.7: base64 between colons. Padding may be absent
// ("parsers SHOULD NOT fail when = padding is not present").
func (p *sfParser) bytes() (bareItem, error) {
	p.i++ // ':'
	end := strings.IndexByte(p.s[p.i:], ':')
	if end < 0 {
		return bareItem{}, errSF
	}
	enc := p.s[p.i : p.i+end]
	p.i += end + 1
	for i := 0; i < len(enc); i++ {
		c := enc[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return bareItem{}, errSF
		}
	}
	codec := base64.StdEncoding.Strict()
	if len(enc)%4 != 0 {
		codec = base64.RawStdEncoding.Strict()
	}
	b, err := codec.DecodeString(enc)
	if err != nil {
		return bareItem{}, errSF
	}
	return bareItem{kind: kindBytes, b: b}, nil
}

// appendBareItem serialises v per RFC 8941 §4.1.
func appendBareItem(b []byte, v bareItem) []byte {
	switch v.kind {
	case kindInteger:
		return strconv.AppendInt(b, v.i, 10)
	case kindString:
		return appendString(b, v.s)
	case kindToken:
		return append(b, v.s...)
	case kindBytes:
		b = append(b, ':')
		b = base64.StdEncoding.AppendEncode(b, v.b)
		return append(b, ':')
	case kindBoolean:
		if v.t {
			return append(b, "?1"...)
		}
		return append(b, "?0"...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// appendParams serialises parameters per RFC 8941 §4.1.1.2: a true boolean
// is the key alone.
func appendParams(b []byte, ps []param) []byte {
	for _, q := range ps {
		b = append(b, ';')
		b = append(b, q.key...)
		if q.val.kind == kindBoolean && q.val.t {
			continue
		}
		b = append(b, '=')
		b = appendBareItem(b, q.val)
	}
	return b
}
