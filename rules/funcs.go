package rules

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/wxcampaign/wxcampaign/keyword"
)

// Date and time layouts of the formatting functions.
const (
	layoutDate     = "2006年1月2日"
	layoutClock    = "15:04"
	layoutDateTime = "2006年1月2日 15:04"
	layoutStr      = "2006-01-02 15:04:05"
)

var (
	float64Type = reflect.TypeOf(float64(0))
	stringType  = reflect.TypeOf("")
	timeType    = reflect.TypeOf(time.Time{})
	durType     = reflect.TypeOf(time.Duration(0))
)

// class is what the checker knows of an argument's type.
type class int

const (
	clUnknown class = iota // interface: only known at run time
	clInt
	clFloat
	clString
	clBool
	clTime
	clOther
)

func classify(t reflect.Type) class {
	if t == nil {
		return clUnknown
	}
	if t == timeType {
		return clTime
	}
	switch t.Kind() {
	case reflect.Interface:
		return clUnknown
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return clInt
	case reflect.Float32, reflect.Float64:
		return clFloat
	case reflect.String:
		return clString
	case reflect.Bool:
		return clBool
	}
	return clOther
}

// typeName is how an error names a type.
func typeName(t reflect.Type) string {
	if t == nil {
		return "nil"
	}
	return typeNames.Replace(t.String())
}

// fnOption registers a function with a custom argument check, which gives
// clearer compile errors than overloads.
func fnOption(name string, fn func(args ...any) (any, error), validate func(args []reflect.Type) (reflect.Type, error)) expr.Option {
	return func(c *conf.Config) {
		c.Functions[name] = &builtin.Function{Name: name, Func: fn, Validate: validate}
	}
}

// numberArg accepts a number, a string or an unknown type.
func numberArg(name string, want reflect.Type) func([]reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		if len(args) != 1 {
			return nil, fmt.Errorf("%s takes one argument, got %d", name, len(args))
		}
		switch classify(args[0]) {
		case clUnknown, clInt, clFloat, clString:
			return want, nil
		}
		return nil, fmt.Errorf("%s: want a number or a numeric string, got %s", name, typeName(args[0]))
	}
}

// timeArg accepts a time (or a string holding one) and, appended by
// zonePatch, the run's now.
func timeArg(name string) func([]reflect.Type) (reflect.Type, error) {
	return func(args []reflect.Type) (reflect.Type, error) {
		// One argument written becomes two: zonePatch appends now. Two
		// written arguments are accepted only when the second is a time,
		// as if the author had passed the zone's now themselves.
		if len(args) != 2 || classify(args[1]) != clTime {
			return nil, fmt.Errorf("%s takes one argument (a time), got %d", name, len(args))
		}
		switch classify(args[0]) {
		case clUnknown, clTime, clString:
			return stringType, nil
		}
		hint := ""
		if args[0] == durType {
			hint = " (a duration is not a point in time)"
		}
		return nil, fmt.Errorf("%s: want a time, got %s%s", name, typeName(args[0]), hint)
	}
}

func validateStr(args []reflect.Type) (reflect.Type, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("str takes one argument, got %d", len(args))
	}
	return stringType, nil
}

func validateTruncate(args []reflect.Type) (reflect.Type, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("truncate takes two arguments (text, length), got %d", len(args))
	}
	if c := classify(args[1]); c != clUnknown && c != clInt {
		return nil, fmt.Errorf("truncate: want an integer length, got %s", typeName(args[1]))
	}
	return stringType, nil
}

// zoned are the functions that show a time in the zone of now.
var zoned = map[string]bool{"date": true, "clock": true, "datetime": true}

// zonePatch rewrites date(t) into date(t, now), so the formatting functions
// learn the campaign's zone from the run's now without any shared state.
type zonePatch struct{}

// Visit implements ast.Visitor.
func (zonePatch) Visit(node *ast.Node) {
	call, ok := (*node).(*ast.CallNode)
	if !ok || len(call.Arguments) != 1 {
		return
	}
	id, ok := call.Callee.(*ast.IdentifierNode)
	if !ok || !zoned[id.Value] {
		return
	}
	now := &ast.IdentifierNode{Value: "now"}
	now.SetLocation(call.Location())
	call.Arguments = append(call.Arguments, now)
}

// fetchName is the environment entry of fetch. It is not an identifier a
// campaign author would write, and no fact may take it.
const fetchName = "__fetch"

var (
	rowType   = reflect.TypeOf(map[string]any(nil))
	fetchType = reflect.TypeOf(fetch)
)

// fetchPatch rewrites a member access on a map[string]any (a fact row,
// grant.vars), such as product.price, into __fetch(product, "price"): a typed
// call that indexes the map directly, where expr would go through reflection
// and allocate on every access. Optional accesses (product?.price) keep
// expr's own code, which jumps over nil.
type fetchPatch struct{}

// Visit implements ast.Visitor.
func (fetchPatch) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok || m.Optional || m.Method || m.Node.Type() != rowType {
		return
	}
	callee := &ast.IdentifierNode{Value: fetchName}
	callee.SetLocation(m.Location())
	// The checker does not visit again the arguments of a call it has
	// typed already (num(product.price)): set the types it would set.
	callee.SetType(fetchType)
	call := &ast.CallNode{Callee: callee, Arguments: []ast.Node{m.Node, m.Property}}
	call.SetType(m.Type())
	ast.Patch(node, call)
}

// fetch is product.price for a row: the value, nil for a missing column, a
// run-time error for a nil row.
func fetch(from, key any) any {
	if m, ok := from.(map[string]any); ok {
		if k, ok := key.(string); ok {
			return m[k]
		}
	}
	if from == nil {
		panic(fmt.Sprintf("cannot fetch %v from <nil>", key))
	}
	return runtime.Fetch(from, key)
}

// functionNames are the functions the rules add; no fact may take their name.
var functionNames = []string{"num", "money", "date", "clock", "datetime", "truncate", "str"}

// options are the expr options shared by every expression.
func options(env map[string]any) []expr.Option {
	return []expr.Option{
		expr.Env(env),
		expr.DisableBuiltin("now"),
		expr.DisableBuiltin("date"),
		expr.Patch(zonePatch{}),
		expr.Patch(fetchPatch{}),
		fnOption("num", fnNum, numberArg("num", float64Type)),
		fnOption("money", fnMoney, numberArg("money", stringType)),
		fnOption("date", fnTime("date", layoutDate), timeArg("date")),
		fnOption("clock", fnTime("clock", layoutClock), timeArg("clock")),
		fnOption("datetime", fnTime("datetime", layoutDateTime), timeArg("datetime")),
		fnOption("truncate", fnTruncate, validateTruncate),
		fnOption("str", fnStr, validateStr),
	}
}

func fnNum(args ...any) (any, error) {
	f, err := toFloat(args[0])
	if err != nil {
		return nil, fmt.Errorf("num: %w", err)
	}
	return f, nil
}

func fnMoney(args ...any) (any, error) {
	f, err := toFloat(args[0])
	if err != nil {
		return nil, fmt.Errorf("money: %w", err)
	}
	var buf [32]byte
	return string(strconv.AppendFloat(append(buf[:0], "¥"...), f, 'f', 2, 64)), nil
}

func fnTime(name, layout string) func(args ...any) (any, error) {
	return func(args ...any) (any, error) {
		now, _ := args[1].(time.Time)
		t, err := toTime(args[0], now.Location())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return t.In(now.Location()).Format(layout), nil
	}
}

func fnTruncate(args ...any) (any, error) {
	n, ok := toInt(args[1])
	if !ok {
		return nil, fmt.Errorf("truncate: length %s is not an integer", describe(args[1]))
	}
	return keyword.Truncate(str(args[0]), n), nil
}

func fnStr(args ...any) (any, error) { return str(args[0]), nil }

// describe names a value in an error, shortened so that no long user text
// ends up in a reason.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(keyword.Truncate(v, 24))
	}
	return fmt.Sprintf("%s %s", typeName(reflect.TypeOf(v)), keyword.Truncate(str(v), 24))
}

// toFloat converts a number or a numeric string to a finite float64.
func toFloat(v any) (float64, error) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	case string:
		var err error
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not a number", describe(v))
		}
	default:
		rv := reflect.ValueOf(v)
		switch classify(reflect.TypeOf(v)) {
		case clInt:
			if rv.CanInt() {
				return float64(rv.Int()), nil
			}
			return float64(rv.Uint()), nil
		case clFloat:
			f = rv.Float()
		case clString:
			return toFloat(rv.String())
		default:
			return 0, fmt.Errorf("%s is not a number", describe(v))
		}
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a finite number", describe(v))
	}
	return f, nil
}

// toInt converts an integer value, or a float without a fraction, to int.
func toInt(v any) (int, bool) {
	switch classify(reflect.TypeOf(v)) {
	case clInt:
		rv := reflect.ValueOf(v)
		if rv.CanInt() {
			return int(rv.Int()), true
		}
		return int(rv.Uint()), true
	case clFloat:
		f := reflect.ValueOf(v).Float()
		if f == math.Trunc(f) && math.Abs(f) < 1<<31 {
			return int(f), true
		}
	}
	return 0, false
}

// timeLayouts are the string forms toTime accepts; the ones without a zone
// are read in the campaign's zone.
var timeLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"}

// toTime converts a time.Time, or a string in one of timeLayouts, to a time.
func toTime(v any, loc *time.Location) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		for _, layout := range timeLayouts {
			if t, err := time.ParseInLocation(layout, x, loc); err == nil {
				return t, nil
			}
		}
	}
	return time.Time{}, fmt.Errorf("%s is not a time", describe(v))
}

// str converts any value to text: numbers without trailing zeros, times as
// "2006-01-02 15:04:05" in their own zone, nil as "".
func str(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return formatFloat(x)
	case bool:
		return strconv.FormatBool(x)
	case time.Time:
		return x.Format(layoutStr)
	case time.Duration:
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	switch classify(rv.Type()) {
	case clInt:
		if rv.CanInt() {
			return strconv.FormatInt(rv.Int(), 10)
		}
		return strconv.FormatUint(rv.Uint(), 10)
	case clFloat:
		return formatFloat(rv.Float())
	case clString:
		return rv.String()
	}
	return fmt.Sprint(v)
}

// formatFloat writes f in decimal without an exponent or trailing zeros.
func formatFloat(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// text converts a data or page result to its string: strings as they are,
// numbers as formatFloat; anything else is a reason why not.
func text(v any) (string, string) {
	switch x := v.(type) {
	case string:
		return x, ""
	case int64:
		return strconv.FormatInt(x, 10), ""
	case int:
		return strconv.Itoa(x), ""
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", "not a finite number"
		}
		return formatFloat(x), ""
	case nil:
		return "", "evaluates to nil"
	}
	switch classify(reflect.TypeOf(v)) {
	case clInt, clString:
		return str(v), ""
	case clFloat:
		return text(reflect.ValueOf(v).Float())
	}
	return "", "evaluates to " + typeName(reflect.TypeOf(v)) + ", want a string or a number"
}
