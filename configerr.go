package wxcampaign

import "fmt"

// FieldError is one invalid value of a package's Config, found by its
// Validate. Field is the key of the value in the config file's section
// ("lease", "max_open_conns"), so that the binary can point at its line;
// Msg says what is wrong and what is allowed.
type FieldError struct {
	Field string
	Msg   string
}

// Error implements error: "field: message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// FieldErrorf returns a *FieldError for field with a formatted message.
func FieldErrorf(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}
