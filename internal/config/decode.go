package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxNodes bounds the work of decoding one file, so that nested aliases cannot blow up.
const maxNodes = 100_000

// maxFileSize bounds the config file read by Load.
const maxFileSize = 10 << 20

// Error is one problem in a configuration, located by file, line and YAML path.
// Parse and Validate return these, joined with errors.Join when there are several.
type Error struct {
	File string // "" when unknown
	Line int    // 0 when unknown
	Path string // YAML path such as "upstreams[0].auth.type"; "" for the whole file
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// source records where each YAML path was read, for Validate's messages.
type source struct {
	file  string
	lines map[string]int
	env   map[string]string // path -> environment variable that overrode it
}

// Load reads the config file at path, applies environment overrides (KEYGATE_DATABASE replaces
// database) and validates the result. getenv may be nil. KEYGATE_CONFIG and KEYGATE_MASTER_KEY are
// the caller's business: the first picks path, the second is never kept in a Config.
func Load(path string, getenv func(string) string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read config %s: larger than %d bytes", path, maxFileSize)
	}
	c, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if getenv != nil {
		if v := getenv("KEYGATE_DATABASE"); v != "" {
			c.Database = v
			c.src.env["database"] = "KEYGATE_DATABASE"
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes one YAML document strictly and fills defaults; it does not Validate.
// filename is used in messages only.
func Parse(data []byte, filename string) (*Config, error) {
	d := &decoder{src: &source{file: filename, lines: map[string]int{}, env: map[string]string{}}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: filename, Msg: "empty configuration"}
		}
		return nil, d.yamlError(err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		return nil, &Error{File: filename, Line: next.Line, Msg: "multiple YAML documents; keygate reads one"}
	case !errors.Is(err, io.EOF):
		return nil, d.yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &Error{File: filename, Line: root.Line, Msg: "empty configuration"}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: filename, Line: root.Line, Msg: "expected a mapping of settings at top level, got " + describe(root)}
	}
	c := Default()
	d.decode(root, reflect.ValueOf(c).Elem(), "")
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	c.applyDefaults()
	c.src = d.src
	return c, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns a parser error into "file:line: message".
func (d *decoder) yamlError(err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: d.src.file, Line: line, Msg: m[2]}
	}
	return &Error{File: d.src.file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

type decoder struct {
	src   *source
	errs  []error
	nodes int
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: d.src.file, Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	rawMessageType  = reflect.TypeFor[json.RawMessage]()
)

// decode stores n into v, recording problems in d.errs and carrying on, so that one run reports
// every unknown key and wrong type.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if d.nodes++; d.nodes > maxNodes {
		if d.nodes == maxNodes+1 {
			d.fail(n, path, "document too large (more than %d values after expanding aliases)", maxNodes)
		}
		return
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.fail(n, path, "unknown alias")
			return
		}
		d.decode(n.Alias, v, path)
		return
	}
	if path != "" {
		if _, ok := d.src.lines[path]; !ok {
			d.src.lines[path] = n.Line
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // an empty value leaves the default in place
	}
	if n.Kind == yaml.ScalarNode && strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.ShortTag(), "!!") {
		d.fail(n, path, "unsupported YAML tag %s", n.Tag)
		return
	}
	if v.Type() == rawMessageType {
		d.decodeJSON(n, v, path)
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.fail(n, path, "%s", err)
		}
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(n, path, "expected a list, got %s", describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		switch {
		case n.Kind != yaml.ScalarNode:
			d.fail(n, path, "expected a string, got %s", describe(n))
		case n.ShortTag() == "!!bool":
			d.fail(n, path, "expected a string, got boolean %s (quote it if you mean the string)", n.Value)
		case n.ShortTag() == "!!binary":
			d.fail(n, path, "expected a string, got binary data")
		default:
			v.SetString(n.Value)
		}
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.fail(n, path, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.fail(n, path, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	default:
		// Only reachable if a field of an unsupported kind is added to Config.
		d.fail(n, path, "cannot decode into %s", v.Type())
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	fields := yamlFields(v.Type())
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.fail(k, path, "expected a key, got %s", describe(k))
			continue
		}
		where := path
		if where == "" {
			where = "top level"
		}
		if k.ShortTag() == "!!merge" {
			d.fail(k, path, "merge keys (<<) are not supported in %s", where)
			continue
		}
		if line, dup := seen[k.Value]; dup {
			d.fail(k, path, "duplicate key %q in %s (first at line %d)", k.Value, where, line)
			continue
		}
		seen[k.Value] = k.Line
		idx, ok := fields[k.Value]
		if !ok {
			hint := ""
			if s := suggest(k.Value, fields); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.errs = append(d.errs, &Error{File: d.src.file, Line: k.Line, Msg: fmt.Sprintf("unknown key %q in %s%s", k.Value, where, hint)})
			continue
		}
		child := k.Value
		if path != "" {
			child = path + "." + k.Value
		}
		d.src.lines[child] = k.Line
		d.decode(val, v.Field(idx), child)
	}
}

// decodeJSON stores a YAML mapping (or a string holding JSON) as JSON bytes.
func (d *decoder) decodeJSON(n *yaml.Node, v reflect.Value, path string) {
	var raw []byte
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		raw = []byte(strings.TrimSpace(n.Value))
		if !json.Valid(raw) {
			d.fail(n, path, "expected a JSON object or a YAML mapping, got a string that is not JSON")
			return
		}
	} else {
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		var x any
		if err := n.Decode(&x); err != nil {
			d.fail(n, path, "cannot read as JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
			return
		}
		var err error
		if raw, err = json.Marshal(x); err != nil {
			d.fail(n, path, "cannot convert to JSON (keys must be strings, numbers finite)")
			return
		}
	}
	v.SetBytes(raw)
}

// yamlFields maps yaml tag names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	return m
}

// suggest returns the known key closest to k, if it is a likely typo.
func suggest(k string, fields map[string]int) string {
	best, bestDist := "", 3
	for name := range fields {
		if dist := editDistance(k, name); dist < bestDist || (dist == bestDist && name < best) {
			best, bestDist = name, dist
		}
	}
	if bestDist > 2 || bestDist >= len(k) {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names a node's kind for messages; scalars are quoted and shortened.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "..."
	}
	kind := "string"
	switch n.ShortTag() {
	case "!!int":
		kind = "integer"
	case "!!float":
		kind = "number"
	case "!!bool":
		kind = "boolean"
	case "!!null":
		return "null"
	}
	return fmt.Sprintf("%s %q", kind, v)
}
