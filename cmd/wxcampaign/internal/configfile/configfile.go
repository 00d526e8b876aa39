// Package configfile reads a YAML config file strictly into a struct, from
// the yaml.v3 node tree as package campaigns reads campaign files: unknown
// and repeated keys and wrong types are problems at their position, every
// problem is collected, and later checks can point at any key's value. It
// belongs to the wxcampaign binary; it is a package of its own so that its
// fuzz target runs without the whole binary's dependencies.
package configfile

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"github.com/wxcampaign/wxcampaign/internal/suggest"
	"io"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign"
)

// Error is every problem of a config file, each as
// "file:line:col: key: message" (without a position when the key is not in
// the file: a default or an environment variable).
type Error struct {
	File     string
	Problems []Problem
}

// Problem is one problem of a config file. Line 0: no position.
type Problem struct {
	Line, Col int
	Key       string // "wechat.rate"; "" for the file as a whole
	Msg       string
}

// Error lists the problems, one per line, in file order.
func (e *Error) Error() string {
	file := e.File
	if file == "" {
		file = "config"
	}
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(file)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", p.Line, max(p.Col, 1))
		}
		b.WriteString(": ")
		if p.Key != "" {
			b.WriteString(p.Key)
			b.WriteString(": ")
		}
		b.WriteString(p.Msg)
	}
	return b.String()
}

// Decoder reads one config file. It records the node of every key so that
// later checks can point at it, and collects every problem.
type Decoder struct {
	file    string
	data    []byte
	lines   int
	key     map[string]*yaml.Node // "wechat.rate" -> key node
	val     map[string]*yaml.Node // "wechat.rate" -> value node
	fromEnv map[string]string     // key -> environment variable that set it
	probs   []Problem
	decoded bool // the document was read (validation is meaningful)
}

// New returns a decoder of data, the text of file ("" for no file).
func New(file string, data []byte) *Decoder {
	return &Decoder{
		file: file, data: data, lines: countLines(data),
		key: map[string]*yaml.Node{}, val: map[string]*yaml.Node{}, fromEnv: map[string]string{},
	}
}

// lineBreaks replaces every line break YAML knows with "\n".
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")

// countLines counts the lines of data as a YAML parser does.
func countLines(data []byte) int {
	return strings.Count(lineBreaks.Replace(string(data)), "\n") + 1
}

// Err returns the problems as an *Error, or nil.
func (d *Decoder) Err() error {
	if len(d.probs) == 0 {
		return nil
	}
	slices.SortStableFunc(d.probs, func(a, b Problem) int {
		// Problems with a position first, in file order.
		return cmp.Or(cmp.Compare(noPos(a), noPos(b)), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
	return &Error{File: d.file, Problems: d.probs}
}

func noPos(p Problem) int {
	if p.Line == 0 {
		return 1
	}
	return 0
}

func (d *Decoder) problem(n *yaml.Node, key, format string, args ...any) {
	p := Problem{Key: key, Msg: fmt.Sprintf(format, args...)}
	if n != nil && n.Line > 0 {
		p.Line, p.Col = min(n.Line, d.lines), n.Column
	}
	d.probs = append(d.probs, p)
}

// Has reports whether the file sets key.
func (d *Decoder) Has(key string) bool { return d.val[key] != nil }

// SetFromEnv records that the environment variable env set key: problems
// of key name it instead of a position.
func (d *Decoder) SetFromEnv(key, env string) { d.fromEnv[key] = env }

// Decoded reports whether the file was read (it may still have problems);
// false after a syntax error or a top level that is not a mapping, when
// checking the values would only repeat defaults.
func (d *Decoder) Decoded() bool { return d.decoded }

// ErrorAt records a problem of key's value: at its value in the file, or
// with the environment variable that set it, or at the nearest enclosing
// key the file has, or without a position.
func (d *Decoder) ErrorAt(key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if env := d.fromEnv[key]; env != "" {
		d.problem(nil, key, "%s (from %s)", msg, env)
		return
	}
	if n := d.val[key]; n != nil {
		if n.Kind == yaml.MappingNode && d.key[key] != nil {
			n = d.key[key] // a whole section: point at its name
		}
		d.problem(n, key, "%s", msg)
		return
	}
	for k := key; k != ""; {
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
		if n := d.key[k]; n != nil {
			d.problem(n, key, "%s", msg)
			return
		}
	}
	d.problem(nil, key, "%s", msg)
}

// Section maps the *wxcampaign.FieldError values of a package's Validate
// to keys: prefix.field, or rename[field] (a full key) when given.
func (d *Decoder) Section(err error, prefix string, rename map[string]string) {
	if err == nil {
		return
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *wxcampaign.FieldError
		if !errors.As(e, &fe) {
			d.ErrorAt(prefix, "%v", e)
			continue
		}
		key := prefix + "." + fe.Field
		if k, ok := rename[fe.Field]; ok {
			key = k
		}
		d.ErrorAt(key, "%s", fe.Msg)
	}
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Decode reads the file into *cfg, a struct holding the defaults, by the
// yaml tags of its fields (string, bool, int, int64, float64,
// time.Duration, []string, pointers and nested structs).
func (d *Decoder) Decode(cfg any) {
	if len(bytes.TrimSpace(d.data)) == 0 {
		d.decoded = true
		return
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.decoded = true
			return
		}
		d.yamlError(err)
		return
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.problem(&extra, "", "more than one YAML document: a config file holds one")
		return
	} else if !errors.Is(err, io.EOF) {
		d.yamlError(err)
		return
	}
	n := &doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			d.decoded = true
			return
		}
		n = n.Content[0]
	}
	if resolve(n).Kind == yaml.ScalarNode && resolve(n).ShortTag() == "!!null" {
		d.decoded = true
		return
	}
	if resolve(n).Kind != yaml.MappingNode {
		d.problem(n, "", "the config must be a mapping of keys, got %s", describe(n))
		return
	}
	d.value(n, "", reflect.ValueOf(cfg).Elem())
	d.decoded = true
}

// yamlError records a syntax error at the line yaml.v3 names.
func (d *Decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") {
			line++ // yaml.v3 gives parser errors a 0-based line
		}
		line = max(1, min(line, d.lines))
		d.probs = append(d.probs, Problem{Line: line, Col: 1, Msg: "invalid YAML: " + m[2]})
		return
	}
	d.probs = append(d.probs, Problem{Line: 1, Col: 1, Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: ")})
}

// resolve follows aliases (a bounded number of hops).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	n = resolve(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	case yaml.AliasNode:
		return "an alias"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean " + n.Value
	}
	return strconv.Quote(n.Value)
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes node n into v, the field at key.
func (d *Decoder) value(n *yaml.Node, key string, v reflect.Value) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return // absent: the default stays
	}
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(yaml.Unmarshaler); ok {
			if err := u.UnmarshalYAML(n); err != nil {
				d.problem(n, key, "%v", err)
			}
			return
		}
	}
	switch {
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(n, key, v.Elem())
	case v.Kind() == reflect.Struct:
		d.mapping(n, key, v)
	case v.Type() == durationType:
		s, ok := d.scalar(n, key)
		if !ok {
			return
		}
		dur, err := time.ParseDuration(s)
		if err != nil && s != "0" {
			d.problem(n, key, "expected a duration such as 500ms, 5s, 2m or 1h30m, got %s", describe(n))
			return
		}
		v.SetInt(int64(dur))
	case v.Kind() == reflect.String:
		if s, ok := d.scalar(n, key); ok {
			v.SetString(s)
		}
	case v.Kind() == reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.problem(n, key, "expected true or false, got %s", describe(n))
			return
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.problem(n, key, "expected an integer, got %s", describe(n))
			return
		}
		v.SetInt(i)
	case v.Kind() == reflect.Float64:
		var f float64
		tag := n.ShortTag()
		if n.Kind != yaml.ScalarNode || tag != "!!int" && tag != "!!float" || n.Decode(&f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			d.problem(n, key, "expected a number, got %s", describe(n))
			return
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		if n.Kind != yaml.SequenceNode {
			d.problem(n, key, "expected a list of strings, got %s", describe(n))
			return
		}
		out := make([]string, 0, len(n.Content))
		for i, item := range n.Content {
			if s, ok := d.scalar(resolve(item), fmt.Sprintf("%s[%d]", key, i)); ok {
				out = append(out, s)
			}
		}
		v.Set(reflect.ValueOf(out))
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Struct:
		if n.Kind != yaml.SequenceNode {
			d.problem(n, key, "expected a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.value(item, fmt.Sprintf("%s[%d]", key, i), out.Index(i))
		}
		v.Set(out)
	default:
		d.problem(n, key, "cannot be set from the file") // a field type the decoder does not know
	}
}

// scalar returns the text of a scalar value.
func (d *Decoder) scalar(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(n, key, "expected a single value, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// mapping decodes a mapping into the struct v by the fields' yaml tags:
// unknown and repeated keys are problems.
func (d *Decoder) mapping(n *yaml.Node, key string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.problem(n, key, "expected a mapping of keys, got %s", describe(n))
		return
	}
	fields := map[string]int{}
	var names []string
	for i := range v.NumField() {
		tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			fields[tag] = i
			names = append(names, tag)
		}
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			d.problem(k, key, "a key must be a name, got %s", describe(k))
			continue
		}
		full := k.Value
		if key != "" {
			full = key + "." + k.Value
		}
		if first := seen[k.Value]; first != nil {
			d.problem(k, full, "repeated key (first at line %d)", first.Line)
			continue
		}
		seen[k.Value] = k
		fi, ok := fields[k.Value]
		if !ok {
			msg := "unknown key"
			if s := suggest.Closest(k.Value, names); s != "" {
				msg += fmt.Sprintf(" (did you mean %s?)", s)
			} else {
				msg += fmt.Sprintf(" (known: %s)", strings.Join(names, ", "))
			}
			d.problem(k, full, "%s", msg)
			continue
		}
		d.key[full], d.val[full] = k, resolve(val)
		d.value(val, full, v.Field(fi))
	}
}
