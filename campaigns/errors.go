package campaigns

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a campaign file, with its position. Line and Col
// are 1-based; Line 0 means the problem concerns the whole file (it could not
// be read, for instance).
type Error struct {
	File string
	Line int
	Col  int
	Msg  string
	Err  error // the cause, when it is one of the package's errors (ErrNoCampaigns)
}

// ErrNoCampaigns is the cause of the problem LoadPaths reports for a
// directory without campaign files; errors.Is finds it in an ErrorList.
var ErrNoCampaigns = errors.New("no campaign files (*.yaml, *.yml) in the directory")

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Error formats the problem as "file:line:col: message", the form editors and
// CI logs link to, or "file: message" when there is no position.
func (e *Error) Error() string {
	if e.Line <= 0 {
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	}
	col := max(e.Col, 1)
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, col, e.Msg)
}

// ErrorList is every problem found, in file then position order.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// Err returns l as an error, or nil when l is empty, so that a caller never
// gets a non-nil error interface holding an empty list.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// sortByPosition orders the problems of one file by line then column, keeping
// the order of discovery for problems at the same position.
func (l ErrorList) sortByPosition() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
	})
}
