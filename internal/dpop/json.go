package dpop

import (
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// A minimal strict JSON reader for the flat objects of a DPoP proof. It
// validates the whole input (RFC 8259), matches member names exactly (unlike
// encoding/json, which folds case), and hands each member to a callback;
// the callbacks reject duplicates of the members they know.

type jsonKind uint8

const (
	kindString jsonKind = iota + 1
	kindNumber
	kindObject
	kindOther // array, true, false, null
)

const maxJSONDepth = 16

var errJSON = errors.New("malformed json")

type jsonScanner struct {
	b     []byte
	i     int
	depth int
}

// eachMember calls fn for each member of the JSON object data. raw is the
// member's value as it appears in data (strings with their quotes).
func eachMember(data []byte, fn func(key string, kind jsonKind, raw []byte) error) error {
	s := jsonScanner{b: data}
	s.ws()
	if err := s.object(fn); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errJSON
	}
	return nil
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) object(fn func(string, jsonKind, []byte) error) error {
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return errJSON
	}
	s.depth++
	if s.depth > maxJSONDepth {
		return errJSON
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		s.depth--
		return nil
	}
	for {
		rawKey, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return errJSON
		}
		s.i++
		s.ws()
		start := s.i
		kind, err := s.value()
		if err != nil {
			return err
		}
		if fn != nil {
			key, err := jsonString(rawKey)
			if err != nil {
				return err
			}
			if err := fn(key, kind, s.b[start:s.i]); err != nil {
				return err
			}
		}
		s.ws()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case '}':
			s.i++
			s.depth--
			return nil
		default:
			return errJSON
		}
	}
}

func (s *jsonScanner) array() error {
	s.depth++
	if s.depth > maxJSONDepth {
		return errJSON
	}
	s.i++ // '['
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == ']' {
		s.i++
		s.depth--
		return nil
	}
	for {
		if _, err := s.value(); err != nil {
			return err
		}
		s.ws()
		if s.i >= len(s.b) {
			return errJSON
		}
		switch s.b[s.i] {
		case ',':
			s.i++
			s.ws()
		case ']':
			s.i++
			s.depth--
			return nil
		default:
			return errJSON
		}
	}
}

func (s *jsonScanner) value() (jsonKind, error) {
	if s.i >= len(s.b) {
		return 0, errJSON
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.str()
		return kindString, err
	case c == '{':
		return kindObject, s.object(nil)
	case c == '[':
		return kindOther, s.array()
	case c == 't':
		return kindOther, s.literal("true")
	case c == 'f':
		return kindOther, s.literal("false")
	case c == 'n':
		return kindOther, s.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return kindNumber, s.number()
	}
	return 0, errJSON
}

func (s *jsonScanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return errJSON
	}
	s.i += len(lit)
	return nil
}

func (s *jsonScanner) digits() int {
	n := 0
	for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *jsonScanner) number() error {
	if s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if s.digits() == 0 {
		return errJSON
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if s.digits() == 0 {
			return errJSON
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if s.digits() == 0 {
			return errJSON
		}
	}
	return nil
}

// str scans a string and returns it raw, quotes included.
func (s *jsonScanner) str() ([]byte, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, errJSON
	}
	start := s.i
	s.i++
	ascii := true
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			raw := s.b[start:s.i]
			if !ascii && !utf8.Valid(raw) {
				return nil, errJSON
			}
			return raw, nil
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, errJSON
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if len(s.b)-s.i < 5 {
					return nil, errJSON
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return nil, errJSON
					}
				}
				s.i += 5
			default:
				return nil, errJSON
			}
		case c < 0x20:
			return nil, errJSON
		default:
			if c >= 0x80 {
				ascii = false
			}
			s.i++
		}
	}
	return nil, errJSON
}

// jsonString decodes a raw string as returned by str.
func jsonString(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", errJSON
			}
			return v, nil
		}
	}
	return string(inner), nil
}

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}
