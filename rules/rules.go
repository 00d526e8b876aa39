// Package rules compiles a campaign's expressions (fact keys, the when
// rule, the data fields and the page) once, against a typed environment, and
// evaluates them per grant without allocating an environment per grant.
//
// Expressions are expr-lang (https://expr-lang.org). They see:
//
//	grant     the grant: id, openid, template_id, scene, biz_no, vars, granted_at, kind
//	<fact>    each fact by its name: the row as map[string]any, nil when no row matched
//	now       the run's scheduled time (time.Time) in the campaign's zone
//	campaign  the campaign: name
//
// and the functions num, money, date, clock, datetime, truncate and str, next
// to expr's builtins (without its date and now, which this package replaces).
// Misspelt grant fields, unknown names, type mismatches the checker can see,
// data keys of unknown keyword types and constant values that can never pass
// their keyword rule all fail Compile, with positions. The rule language is
// described in docs/rules.md.
//
// A Program is safe for concurrent use; an Env is not: use one per
// goroutine and reuse it across grants with Reset.
package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/vm"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/keyword"
)

// Overflow says what happens to a value of the thing family (thing, at
// most 20 characters; short_thing, at most 5) that is too long.
type Overflow string

// Overflow policies.
const (
	Truncate Overflow = "truncate" // shorten to the type's limit ending in "…", when the campaign asks for it
	Skip     Overflow = "skip"     // skip the grant: render invalid, longer than N characters (the default)
)

// Field is a data field: key "thing1" and its expression source.
type Field struct{ Key, Expr string }

// FactSpec is a fact a campaign joins: Name is how expressions call the row,
// Key the expression of its lookup key, which sees grant, now and campaign
// only.
type FactSpec struct{ Name, Key string }

// Spec is what Compile needs of a campaign.
type Spec struct {
	Campaign string
	Facts    []FactSpec
	When     string // bool expression; "" means true
	Page     string // string expression, optional ("" = no page)
	Data     []Field
	Overflow Overflow
	Enums    map[string][]string // optional allowed values per enum key
	// Pages lists the mini program's page paths (wechat.pages, without
	// query or leading "/"); when set, a rendered page's path must be one of
	// them. Empty accepts any well-formed page.
	Pages []string
}

// grantEnv is the grant as expressions see it.
type grantEnv struct {
	ID         int64          `expr:"id"`
	OpenID     string         `expr:"openid"`
	TemplateID string         `expr:"template_id"`
	Scene      string         `expr:"scene"`
	BizNo      string         `expr:"biz_no"`
	Vars       map[string]any `expr:"vars"`
	GrantedAt  time.Time      `expr:"granted_at"`
	Kind       string         `expr:"kind"`
}

// campaignEnv is the campaign as expressions see it.
type campaignEnv struct {
	Name string `expr:"name"`
}

type fact struct {
	name, src string
	prog      *vm.Program
}

type field struct {
	key, src string
	typ      keyword.Type
	enum     []string
	prog     *vm.Program
	constant bool   // the expression is a literal: value is its text
	value    string // rendered once at Compile
}

// Program is a campaign's compiled expressions. It is safe for concurrent
// use.
type Program struct {
	campaign string
	facts    []fact
	when     *vm.Program
	page     *vm.Program
	data     []field
	overflow Overflow
	pages    map[string]bool // nil: any well-formed page
}

// reserved are names a fact may not take.
var reserved = func() map[string]bool {
	m := map[string]bool{"grant": true, "now": true, "campaign": true, fetchName: true}
	for _, w := range []string{"true", "false", "nil", "in", "not", "and", "or", "matches", "contains",
		"startsWith", "endsWith", "let", "if", "else", "env", "$env"} {
		m[w] = true
	}
	for _, f := range functionNames {
		m[f] = true
	}
	for _, f := range builtin.Builtins {
		m[f.Name] = true
	}
	return m
}()

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// Compile compiles every expression of spec. It reports all problems at
// once; the error is then Errors.
func Compile(spec Spec) (*Program, error) {
	p := &Program{campaign: spec.Campaign, overflow: spec.Overflow}
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, &CompileError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for _, pg := range spec.Pages {
		if p.pages == nil {
			p.pages = make(map[string]bool, len(spec.Pages))
		}
		p.pages[keyword.PagePath(pg)] = true
	}
	switch spec.Overflow {
	case "":
		// WeChat never truncates; the engine shortens a thing only when a
		// campaign asks for it (WECHAT.md), as campaigns' default says.
		p.overflow = Skip
	case Truncate, Skip:
	default:
		add("overflow", "unknown overflow %q: want truncate or skip", spec.Overflow)
	}

	keyEnv := map[string]any{"grant": &grantEnv{}, "now": time.Time{}, "campaign": &campaignEnv{}, fetchName: fetch}
	env := map[string]any{"grant": &grantEnv{}, "now": time.Time{}, "campaign": &campaignEnv{}, fetchName: fetch}
	seenFact := map[string]bool{}
	for _, f := range spec.Facts {
		where := "facts." + f.Name
		switch {
		case !validName(f.Name):
			add(where, "fact name %q is not an identifier", f.Name)
			continue
		case reserved[f.Name]:
			add(where, "fact name %q is reserved", f.Name)
			continue
		case seenFact[f.Name]:
			add(where, "duplicate fact")
			continue
		}
		seenFact[f.Name] = true
		env[f.Name] = map[string]any{}
		prog, ce := compileExpr(where+".key", f.Key, keyEnv, wantKey)
		if ce != nil {
			errs = append(errs, ce)
			continue
		}
		p.facts = append(p.facts, fact{name: f.Name, src: f.Key, prog: prog})
	}

	if strings.TrimSpace(spec.When) != "" {
		prog, ce := compileExpr("when", spec.When, env, wantBool)
		if ce != nil {
			errs = append(errs, ce)
		}
		p.when = prog
	}
	if strings.TrimSpace(spec.Page) != "" {
		prog, ce := compileExpr("page", spec.Page, env, wantString)
		if ce != nil {
			errs = append(errs, ce)
		} else if v, ok := constant(prog); ok {
			if s, _ := v.(string); s != "" {
				if _, reason := p.pageText(s); reason != "" {
					errs = append(errs, atRoot("page", spec.Page, reason))
				}
			}
		} else if path, ok := constantPath(prog.Node()); ok {
			// "pages/x/y?id=" + grant.biz_no: the path is known now.
			if _, reason := p.pageText(path); reason != "" {
				errs = append(errs, atRoot("page", spec.Page, reason))
			}
		}
		p.page = prog
	}

	if len(spec.Data) == 0 {
		add("data", "no data fields")
	}
	seenKey := map[string]bool{}
	for _, d := range spec.Data {
		where := "data." + d.Key
		typ, _, err := keyword.Parse(d.Key)
		if err != nil {
			add(where, "%s", strings.TrimPrefix(err.Error(), "keyword: "))
			continue
		}
		if seenKey[d.Key] {
			add(where, "duplicate data key")
			continue
		}
		seenKey[d.Key] = true
		f := field{key: d.Key, src: d.Expr, typ: typ, enum: spec.Enums[d.Key]}
		prog, ce := compileExpr(where, d.Expr, env, wantText)
		if ce != nil {
			errs = append(errs, ce)
			continue
		}
		f.prog = prog
		if v, ok := constant(prog); ok {
			s, rerr := p.finish(&f, v)
			if rerr != nil {
				errs = append(errs, atRoot(where, d.Expr, "constant can never be sent: "+rerr.Reason))
			}
			f.constant, f.value = true, s
		} else if f.typ == keyword.Enum && f.enum != nil {
			errs = append(errs, enumLiterals(where, d.Expr, prog, f.enum)...)
		}
		p.data = append(p.data, f)
	}
	enumKeys := make([]string, 0, len(spec.Enums))
	for k := range spec.Enums {
		enumKeys = append(enumKeys, k)
	}
	sort.Strings(enumKeys)
	for _, k := range enumKeys {
		if typ, _, err := keyword.Parse(k); err != nil || typ != keyword.Enum || !seenKey[k] {
			add("enums."+k, "not an enum key of data")
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

// want is what an expression must produce.
type want int

const (
	wantBool   want = iota // when
	wantString             // page
	wantText               // data: string or number
	wantKey                // fact key: string or number
)

// compileExpr compiles one expression and checks the type of its result.
// A panic inside expr becomes a CompileError, so that no campaign file can
// crash the loader.
func compileExpr(where, src string, env map[string]any, w want) (prog *vm.Program, ce *CompileError) {
	defer func() {
		if r := recover(); r != nil {
			prog, ce = nil, &CompileError{Field: where, Msg: fmt.Sprintf("internal compiler error: %v", r)}
		}
	}()
	if strings.TrimSpace(src) == "" {
		return nil, &CompileError{Field: where, Msg: "empty expression"}
	}
	prog, err := expr.Compile(src, options(env)...)
	if err != nil {
		return nil, compileError(where, err)
	}
	t := prog.Node().Type()
	c := classify(t)
	if c == clUnknown {
		return prog, nil
	}
	var msg string
	switch w {
	case wantBool:
		if c != clBool {
			msg = "want a bool, got " + typeName(t)
		}
	case wantString:
		if c != clString {
			msg = "want a string, got " + typeName(t)
		}
	case wantText, wantKey:
		if c != clString && c != clInt && c != clFloat {
			msg = "want a string or a number, got " + typeName(t)
			if c == clTime && w == wantText {
				msg += ": format it with date(), clock() or datetime()"
			}
		}
	}
	if msg != "" {
		return nil, atRoot(where, src, msg)
	}
	return prog, nil
}

// atRoot is a CompileError about the whole expression, placed at its
// first character.
func atRoot(where, src string, msg string) *CompileError {
	from := utf8.RuneCountInString(src) - utf8.RuneCountInString(strings.TrimLeft(src, " \t\r\n"))
	line, col := position(src, from)
	return &CompileError{Field: where, Line: line, Column: col, Msg: msg}
}

// constantPath returns the path of a page expression that starts with a
// string literal holding the whole path and the "?" of the query, as in
// "pages/x/y?id=" + grant.biz_no.
func constantPath(n ast.Node) (string, bool) {
	for {
		switch b := n.(type) {
		case *ast.BinaryNode:
			if b.Operator != "+" {
				return "", false
			}
			n = b.Left
			continue
		case *ast.StringNode:
			path, _, found := strings.Cut(b.Value, "?")
			return path, found && path != ""
		}
		return "", false
	}
}

// enumLiterals checks the string literals an enum expression can result in
// (the branches of a conditional, either side of ??, the whole expression)
// against the enum values: a literal outside them can never be sent.
func enumLiterals(where, src string, prog *vm.Program, values []string) Errors {
	var errs Errors
	var walk func(n ast.Node)
	walk = func(n ast.Node) {
		switch n := n.(type) {
		case *ast.StringNode:
			if !slices.Contains(values, n.Value) {
				line, col := position(src, n.Location().From)
				errs = append(errs, &CompileError{Field: where, Line: line, Column: col,
					Msg: fmt.Sprintf("%q can never be sent: not one of the enum values (%s)", n.Value, strings.Join(values, ", "))})
			}
		case *ast.ConditionalNode:
			walk(n.Exp1)
			walk(n.Exp2)
		case *ast.BinaryNode:
			if n.Operator == "??" {
				walk(n.Left)
				walk(n.Right)
			}
		}
	}
	walk(prog.Node())
	return errs
}

// constant returns the value of an expression whose result the optimizer
// folded into a literal.
func constant(prog *vm.Program) (any, bool) {
	switch n := prog.Node().(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.FloatNode:
		return n.Value, true
	case *ast.BoolNode:
		return n.Value, true
	case *ast.NilNode:
		return nil, true
	case *ast.ConstantNode:
		return n.Value, true
	}
	return nil, false
}

// Env is the environment of one evaluation: a grant, the run's now and the
// rows of the facts. Use one per goroutine and reuse it across grants: Reset
// does not allocate.
type Env struct {
	p     *Program
	vars  map[string]any
	grant grantEnv
	camp  campaignEnv
	now   time.Time
	vm    vm.VM
}

// NewEnv returns an environment for p, with no grant and every fact nil.
func (p *Program) NewEnv() *Env {
	e := &Env{p: p, camp: campaignEnv{Name: p.campaign}}
	e.vars = make(map[string]any, 4+len(p.facts))
	e.vars[fetchName] = fetch
	e.vars["grant"] = &e.grant
	e.vars["campaign"] = &e.camp
	e.vars["now"] = e.now
	for _, f := range p.facts {
		e.vars[f.name] = nil
	}
	return e
}

// Reset sets the grant and now, and clears every fact to nil.
func (e *Env) Reset(g *wxcampaign.Grant, now time.Time) {
	if g == nil {
		e.grant = grantEnv{}
	} else {
		e.grant = grantEnv{
			ID: g.ID, OpenID: g.OpenID, TemplateID: g.TemplateID, Scene: g.Scene,
			BizNo: g.BizNo, Vars: g.Vars, GrantedAt: g.GrantedAt, Kind: string(g.Kind),
		}
	}
	if now != e.now { // a run keeps one now: box it once, not per grant
		e.now = now
		e.vars["now"] = now
	}
	for _, f := range e.p.facts {
		e.vars[f.name] = nil
	}
}

// SetFact sets the row of a fact; nil means no row matched. Names that are
// not facts of the program are ignored.
func (e *Env) SetFact(name string, row map[string]any) {
	if _, ok := e.vars[name]; !ok || reserved[name] {
		return
	}
	if row == nil {
		e.vars[name] = nil // untyped nil: "product != nil" is false
		return
	}
	e.vars[name] = row
}

// Fact returns the row of a fact, nil when none matched or name is no fact.
func (e *Env) Fact(name string) map[string]any {
	if reserved[name] {
		return nil
	}
	row, _ := e.vars[name].(map[string]any)
	return row
}

// Facts lists the names of the program's facts, in the order of the spec.
func (p *Program) Facts() []string {
	names := make([]string, len(p.facts))
	for i, f := range p.facts {
		names[i] = f.name
	}
	return names
}

// FactKey evaluates the key expression of the named fact for e's grant. The
// key is a string, an int64 or a float64 (a float without a fraction, such
// as a JSON number, becomes an int64). A nil key (a missing grant variable)
// is returned as nil without error: the fact has no row.
func (p *Program) FactKey(name string, e *Env) (any, error) {
	for i := range p.facts {
		f := &p.facts[i]
		if f.name != name {
			continue
		}
		out, err := e.vm.Run(f.prog, e.vars)
		if err != nil {
			return nil, fmt.Errorf("rules: facts.%s.key: %s", name, runtimeReason(err))
		}
		switch v := out.(type) {
		case nil, string, int64:
			return v, nil
		case float64:
			if v == float64(int64(v)) {
				return int64(v), nil
			}
			return v, nil
		}
		switch classify(reflect.TypeOf(out)) {
		case clInt:
			s := str(out)
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, nil
			}
			return s, nil
		case clFloat:
			return reflect.ValueOf(out).Float(), nil
		case clString:
			return str(out), nil
		}
		return nil, fmt.Errorf("rules: facts.%s.key: %s", name, "evaluates to "+typeName(reflect.TypeOf(out))+", want a string or a number")
	}
	return nil, fmt.Errorf("rules: unknown fact %q", name)
}

// When evaluates the rule; a campaign without one is always true.
func (p *Program) When(e *Env) (bool, error) {
	if p.when == nil {
		return true, nil
	}
	out, err := e.vm.Run(p.when, e.vars)
	if err != nil {
		return false, fmt.Errorf("rules: when: %s", runtimeReason(err))
	}
	b, ok := out.(bool)
	if !ok {
		return false, fmt.Errorf("rules: when: evaluates to %s, want a bool", describe(out))
	}
	return b, nil
}

// Message is a rendered message: the data values by key and the page ("" =
// no page).
type Message struct {
	Data map[string]string
	Page string
}

// Render evaluates the data fields and the page and checks every value
// against its keyword rule. Failures are *RenderError naming the key ("page"
// for the page).
func (p *Program) Render(e *Env) (Message, error) {
	m := Message{Data: make(map[string]string, len(p.data))}
	for i := range p.data {
		f := &p.data[i]
		s, err := p.field(e, f)
		if err != nil {
			return Message{}, err
		}
		m.Data[f.key] = s
	}
	page, err := p.renderPage(e)
	if err != nil {
		return Message{}, err
	}
	m.Page = page
	return m, nil
}

// field evaluates one data field.
func (p *Program) field(e *Env, f *field) (string, *RenderError) {
	if f.constant {
		return f.value, nil
	}
	out, err := e.vm.Run(f.prog, e.vars)
	if err != nil {
		return "", &RenderError{Key: f.key, Reason: runtimeReason(err)}
	}
	return p.finish(f, out)
}

// finish converts a data result to its text and applies the keyword rule
// and the overflow policy.
func (p *Program) finish(f *field, out any) (string, *RenderError) {
	s, reason := text(out)
	if reason != "" {
		return "", &RenderError{Key: f.key, Reason: reason}
	}
	if err := keyword.CheckType(f.typ, s, f.enum); err != nil {
		if f.typ.Truncatable() && p.overflow == Truncate && errors.Is(err, keyword.ErrTooLong) {
			return keyword.Truncate(s, f.typ.MaxLen()), nil
		}
		return "", &RenderError{Key: f.key, Reason: err.Error()}
	}
	return s, nil
}

func (p *Program) renderPage(e *Env) (string, *RenderError) {
	if p.page == nil {
		return "", nil
	}
	out, err := e.vm.Run(p.page, e.vars)
	if err != nil {
		return "", &RenderError{Key: "page", Reason: runtimeReason(err)}
	}
	s, ok := out.(string)
	if !ok {
		return "", &RenderError{Key: "page", Reason: "evaluates to " + describe(out) + ", want a string"}
	}
	page, reason := p.pageText(s)
	if reason != "" {
		return "", &RenderError{Key: "page", Reason: reason}
	}
	return page, nil
}

// pageText normalises a page path and checks it against WeChat's rules:
// leading slashes are dropped (WeChat's page is relative to the mini
// program's root, "pages/x/y?id=1"), then keyword.CheckPage (length, path
// characters, no space or control character in the query) and, when the
// program knows the account's pages, that the path is one of them. An empty
// result means no page.
func (p *Program) pageText(s string) (string, string) {
	s = strings.TrimLeft(s, "/")
	if err := keyword.CheckPage(s); err != nil {
		return "", err.Error()
	}
	if s != "" && p.pages != nil {
		if path := keyword.PagePath(s); !p.pages[path] {
			return "", fmt.Sprintf("%q is not a page of the mini program (wechat.pages)", path)
		}
	}
	return s, ""
}

// Pages returns the page paths the program checks rendered pages against
// (Spec.Pages), sorted; nil when any well-formed page is accepted.
func (p *Program) Pages() []string {
	if p.pages == nil {
		return nil
	}
	out := make([]string, 0, len(p.pages))
	for pg := range p.pages {
		out = append(out, pg)
	}
	sort.Strings(out)
	return out
}

// Step is one evaluated expression of Explain: Field is "when",
// "data.thing1" or "page"; Value the result (the sent text for data and
// page); Err why it failed.
type Step struct {
	Field string
	Value any
	Err   error
}

// Explain evaluates every expression without stopping at the first failure,
// for the preview: when, then each data field, then the page.
func (p *Program) Explain(e *Env) []Step {
	steps := make([]Step, 0, len(p.data)+2)
	ok, err := p.When(e)
	steps = append(steps, Step{Field: "when", Value: ok, Err: err})
	for i := range p.data {
		f := &p.data[i]
		s, rerr := p.field(e, f)
		st := Step{Field: "data." + f.key, Value: s}
		if rerr != nil {
			st.Err = rerr
		}
		steps = append(steps, st)
	}
	if p.page != nil {
		s, rerr := p.renderPage(e)
		st := Step{Field: "page", Value: s}
		if rerr != nil {
			st.Err = rerr
		}
		steps = append(steps, st)
	}
	return steps
}
