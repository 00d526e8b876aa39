package rules

import (
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr/file"
)

// CompileError is one problem in one expression. Field names the place:
// "when", "page", "data.thing1", "facts.product.key". Line and Column are
// 1-based positions inside the expression source (0 when unknown).
type CompileError struct {
	Field        string
	Line, Column int
	Msg          string
}

// Error implements error: "data.thing1:1:7: type grant has no field bizno".
func (e *CompileError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.Field, e.Line, e.Column, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// Errors is a list of CompileError; Compile returns all problems, not only
// the first.
type Errors []*CompileError

// Error implements error, one problem per line.
func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, ce := range e {
		parts[i] = ce.Error()
	}
	return strings.Join(parts, "\n")
}

// RenderError is a value that cannot be sent: a runtime failure of a data or
// page expression, or a rendered value that breaks its keyword rule. Key is
// the data key ("amount2") or "page".
type RenderError struct {
	Key, Reason string
}

// Error implements error: "render invalid: amount2: not an amount".
func (e *RenderError) Error() string { return "render invalid: " + e.Key + ": " + e.Reason }

// typeNames maps the Go names of the environment's types, as expr prints
// them, to the names a campaign author sees.
var typeNames = strings.NewReplacer(
	"rules.grantEnv", "grant",
	"*rules.grantEnv", "grant",
	"rules.campaignEnv", "campaign",
	"*rules.campaignEnv", "campaign",
)

// shortMsg is the one-line message of an expr error, without its snippet.
func shortMsg(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return typeNames.Replace(fe.Message)
	}
	msg, _, _ := strings.Cut(err.Error(), "\n")
	return typeNames.Replace(msg)
}

// runtimeReason is an evaluation error as one line with its position.
func runtimeReason(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) && fe.Line > 0 {
		return fmt.Sprintf("%s (%d:%d)", typeNames.Replace(fe.Message), fe.Line, fe.Column+1)
	}
	return shortMsg(err)
}

// compileError turns an expr compile error into a CompileError for field.
func compileError(field string, err error) *CompileError {
	var fe *file.Error
	if errors.As(err, &fe) {
		ce := &CompileError{Field: field, Msg: typeNames.Replace(fe.Message)}
		if fe.Line > 0 {
			ce.Line, ce.Column = fe.Line, fe.Column+1
		}
		return ce
	}
	return &CompileError{Field: field, Msg: shortMsg(err)}
}

// position converts a rune offset in src into a 1-based line and column.
func position(src string, from int) (line, col int) {
	line, col = 1, 1
	i := 0
	for _, r := range src {
		if i == from {
			break
		}
		if r == '\n' {
			line++
			col = 1
		} else {
			col++
		}
		i++
	}
	return line, col
}
