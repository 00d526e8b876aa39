package campaigns

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/wxcampaign/wxcampaign/internal/suggest"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decoder walks the yaml.Node tree of one file. It records the node of every
// field by its path ("template.kind", "limits[1].max", "data.thing1") so that
// validation and the rules compiler can point at it, and collects every
// problem instead of stopping at the first.
// yamlNode is yaml.Node, named for the tests.
type yamlNode = yaml.Node

type decoder struct {
	file     string
	lines    [][]rune              // source lines, for positions inside expressions
	root     *yaml.Node            // the top-level mapping, or the document
	val      map[string]*yaml.Node // path -> value node
	key      map[string]*yaml.Node // path -> key node
	reported map[string]bool       // paths that already have an error
	errs     ErrorList
}

func newDecoder(file string, data []byte) *decoder {
	p := &decoder{
		file:     file,
		val:      map[string]*yaml.Node{},
		key:      map[string]*yaml.Node{},
		reported: map[string]bool{},
	}
	for _, l := range splitLines(string(data)) {
		p.lines = append(p.lines, []rune(l))
	}
	return p
}

// lineBreaks replaces every line break YAML knows with "\n".
var lineBreaks = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\u0085", "\n", "\u2028", "\n", "\u2029", "\n")

// splitLines splits text into lines as a YAML parser counts them.
func splitLines(s string) []string {
	return strings.Split(lineBreaks.Replace(s), "\n")
}

// errorAt records a problem at node n (the top of the file when n is nil) and
// marks path as reported.
func (p *decoder) errorAt(n *yaml.Node, path, format string, args ...any) {
	line, col := 1, 1
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	p.errorPos(line, col, path, format, args...)
}

func (p *decoder) errorPos(line, col int, path, format string, args ...any) {
	if len(p.lines) > 0 && line > len(p.lines) {
		line, col = len(p.lines), len(p.lines[len(p.lines)-1])+1 // the end of the input
	}
	line, col = max(line, 1), max(col, 1)
	if path != "" {
		p.reported[path] = true
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

// at returns the node to blame for path: its value, else its key, else the
// nearest enclosing field that is present, else the root.
func (p *decoder) at(path string) *yaml.Node {
	for path != "" {
		if n := p.val[path]; n != nil {
			return n
		}
		if n := p.key[path]; n != nil {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return p.root
}

// has reports whether the file sets path to something other than null.
func (p *decoder) has(path string) bool {
	n := p.val[path]
	return n != nil && !isNull(n)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// load parses the YAML text and returns the top-level mapping, or nil after
// recording why there is none.
func (p *decoder) load(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAt(nil, "", "empty file: a campaign needs at least name, schedule, template, when and data")
			return nil
		}
		p.yamlError(err)
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		p.errorAt(&extra, "", "more than one YAML document: a file holds one campaign")
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
	}
	p.root = &doc
	n := resolve(&doc)
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = resolve(n.Content[0])
	}
	if n.Kind != yaml.MappingNode {
		p.errorAt(n, "", "a campaign must be a mapping of fields, got %s", describe(n))
		return nil
	}
	p.root = n
	return n
}

// yamlError records a syntax error at the line yaml.v3 gives (it gives no
// column).
func (p *decoder) yamlError(err error) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") {
			line++ // yaml.v3 gives parser errors a 0-based line
		}
		line = max(1, min(line, len(p.lines)))
		p.errorPos(line, 1, "", "invalid YAML: %s", m[2])
		return
	}
	p.errorPos(1, 1, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// resolve follows aliases (a bounded number of hops).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of a node for error messages.
func describe(n *yaml.Node) string {
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
	case "!!int":
		return "an integer"
	case "!!float":
		return "a number"
	case "!!bool":
		return "a boolean"
	}
	return fmt.Sprintf("%q", n.Value)
}

// fields walks a strict mapping: every key must be a string, known to fn and
// not repeated. fn returns false for an unknown key. known lists the field
// names, for the "did you mean" hint.
func (p *decoder) fields(n *yaml.Node, path string, known []string, fn func(name string, v *yaml.Node) bool) {
	p.pairs(n, path, func(name string, k, v *yaml.Node) {
		if !fn(name, v) {
			msg := fmt.Sprintf("unknown field %q", name)
			if path != "" {
				msg += " in " + path
			}
			if s := suggest.Closest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			p.errorAt(k, join(path, name), "%s", msg)
		}
	})
}

// pairs walks a mapping with string keys, recording the key and value nodes of
// each entry under path.name and reporting repeated keys.
func (p *decoder) pairs(n *yaml.Node, path string, fn func(name string, k, v *yaml.Node)) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.errorAt(n, path, "%s: expected a mapping, got %s", path, describe(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.errorAt(k, path, "%s: a key must be a string, got %s", orTop(path), describe(k))
			continue
		}
		name := k.Value
		if k.ShortTag() == "!!merge" {
			p.errorAt(k, path, "merge keys (<<) are not supported: write the fields out")
			continue
		}
		if first := seen[name]; first != nil {
			p.errorAt(k, join(path, name), "duplicate field %q (first at line %d)", name, first.Line)
			continue
		}
		seen[name] = k
		fp := join(path, name)
		p.key[fp], p.val[fp] = k, v
		fn(name, k, v)
	}
	return true
}

// items walks a list, recording each item under path[i].
func (p *decoder) items(n *yaml.Node, path string, fn func(path string, v *yaml.Node)) {
	n = resolve(n)
	if n.Kind != yaml.SequenceNode {
		p.errorAt(n, path, "%s: expected a list, got %s", path, describe(n))
		return
	}
	for i, v := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		v = resolve(v)
		p.val[ip] = v
		fn(ip, v)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func orTop(path string) string {
	if path == "" {
		return "campaign"
	}
	return path
}

// str decodes a scalar as text. ok is false for null (the field is treated as
// absent) and for non-scalars (reported).
func (p *decoder) str(v *yaml.Node, path string) (s string, ok bool) {
	if v.Kind != yaml.ScalarNode {
		p.errorAt(v, path, "%s: expected a string, got %s", path, describe(v))
		return "", false
	}
	if isNull(v) {
		return "", false
	}
	return v.Value, true
}

// window decodes a window or duration ("30m", "24h", "7d"; parseWindow),
// reporting a bad one at its position.
func (p *decoder) window(v *yaml.Node, path string) (time.Duration, bool) {
	s, ok := p.str(v, path)
	if !ok {
		return 0, false
	}
	d, err := parseWindow(s)
	if err != nil {
		p.errorAt(v, path, "%s: %v", path, err)
		return 0, false
	}
	return d, true
}

// integer decodes an integer scalar.
func (p *decoder) integer(v *yaml.Node, path string) (int, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		if isNull(v) {
			return 0, false
		}
		p.errorAt(v, path, "%s: expected an integer, got %s", path, describe(v))
		return 0, false
	}
	var i int
	if err := v.Decode(&i); err != nil {
		p.errorAt(v, path, "%s: expected an integer, got %q", path, v.Value)
		return 0, false
	}
	return i, true
}

// boolean decodes true or false.
func (p *decoder) boolean(v *yaml.Node, path string) (bool, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" {
		if isNull(v) {
			return false, false
		}
		p.errorAt(v, path, "%s: expected true or false, got %s", path, describe(v))
		return false, false
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		p.errorAt(v, path, "%s: expected true or false, got %q", path, v.Value)
		return false, false
	}
	return b, true
}

// strings decodes a list of strings.
func (p *decoder) strList(v *yaml.Node, path string) []string {
	if isNull(v) {
		return nil
	}
	var out []string
	p.items(v, path, func(ip string, item *yaml.Node) {
		if s, ok := p.str(item, ip); ok {
			out = append(out, s)
		} else if item.Kind == yaml.ScalarNode {
			p.errorAt(item, ip, "%s: empty value", ip)
		}
	})
	return out
}
