package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/wxcampaign/wxcampaign"
)

// readBody reads the request body, at most max bytes: a longer body is a
// *wxcampaign.Error ETOOLARGE.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return nil, decodeError(err)
	}
	return b, nil
}

// decodeJSON decodes exactly one JSON object from data into v, a pointer to
// a struct, strictly: unknown fields (matched case-sensitively, unlike
// encoding/json), duplicate fields, wrong types and trailing data are
// *wxcampaign.Error EINVALID naming the field or offset. Numbers inside
// interface values stay json.Number, so that they are stored exactly as sent.
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// Exactly one value: anything but whitespace after it is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: trailing data after the object at offset %d", dec.InputOffset())
	}
	return checkKeys(data, fieldNames(v))
}

// fieldNames returns the JSON names of the fields of the struct v points to.
func fieldNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := make(map[string]bool)
	if t.Kind() != reflect.Struct {
		return nil
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-" || !f.IsExported():
		case name == "":
			names[f.Name] = true
		default:
			names[name] = true
		}
	}
	return names
}

// checkKeys rejects top-level keys of the object in data that are not
// exactly one of names (encoding/json matches them case-insensitively) or
// that occur twice (encoding/json keeps the last one silently). data has
// already been decoded successfully; names nil skips the check.
func checkKeys(data []byte, names map[string]bool) error {
	if names == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil // null: nothing to check
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return decodeError(err)
		}
		key, _ := tok.(string)
		if !names[key] {
			return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: unknown field %q (field names are case-sensitive)", key)
		}
		if seen[key] {
			return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: field %q appears twice", key)
		}
		seen[key] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return decodeError(err)
		}
	}
	return nil
}

// decodeError turns a json or body-limit error into an application error
// with a reason the client can act on.
func decodeError(err error) error {
	var (
		syntax  *json.SyntaxError
		typ     *json.UnmarshalTypeError
		tooBig  *http.MaxBytesError
		invalid *json.InvalidUnmarshalError
	)
	switch {
	case errors.As(err, &tooBig):
		return wxcampaign.Errorf(wxcampaign.ETOOLARGE, "request body is larger than %d bytes", tooBig.Limit)
	case errors.As(err, &syntax):
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON at offset %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "(top level)"
		}
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: field %s must be %s, got %s at offset %d", field, jsonType(typ.Type.Kind().String()), typ.Value, typ.Offset)
	case errors.Is(err, io.EOF):
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: empty body")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: body ends before the object does")
	case errors.As(err, &invalid):
		return wxcampaign.Errorf(wxcampaign.EINTERNAL, "decode: %v", err)
	}
	// DisallowUnknownFields reports `json: unknown field "x"` without a
	// typed error.
	if msg := err.Error(); strings.HasPrefix(msg, "json: unknown field ") {
		return wxcampaign.Errorf(wxcampaign.EINVALID, "invalid JSON: unknown field %s", strings.TrimPrefix(msg, "json: unknown field "))
	}
	// A read error of the body (client gone, timeout): not the client's JSON.
	return wxcampaign.Errorf(wxcampaign.EINVALID, "reading the request body failed")
}

// jsonType names a Go kind as the JSON type a client should send.
func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	default:
		return kind
	}
}

// checkRawStrings reports the first string of the JSON object in data
// (already decoded successfully) that could not be stored byte for byte:
// invalid UTF-8, an unpaired surrogate escape (encoding/json turns both
// into U+FFFD silently) or a NUL. The error names the top-level field the
// string belongs to.
func checkRawStrings(data []byte) error {
	depth, field, key := 0, "", false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '{':
			depth++
			key = depth == 1
		case '[':
			depth++
		case '}', ']':
			depth--
		case ',':
			key = depth == 1
		case '"':
			end, problem := scanString(data, i)
			name := field
			if depth == 1 && key {
				field, name, key = string(data[i+1:end]), "a field name", false
			}
			if problem != "" {
				return wxcampaign.Errorf(wxcampaign.EINVALID, "%s %s", name, problem)
			}
			i = end
		}
	}
	return nil
}

// scanString returns the index of the quote that ends the JSON string
// starting at data[start], and what is wrong with its content, if anything.
func scanString(data []byte, start int) (end int, problem string) {
	for j := start + 1; j < len(data); {
		switch c := data[j]; {
		case c == '"':
			return j, problem
		case c == '\\' && j+1 < len(data) && data[j+1] == 'u':
			r := hex4(data, j+2)
			j += 6
			switch {
			case r == 0 && problem == "":
				problem = "contains a NUL character"
			case utf16.IsSurrogate(r) && r < 0xDC00 && j+1 < len(data) && data[j] == '\\' && data[j+1] == 'u' && isLowSurrogate(hex4(data, j+2)):
				j += 6
			case utf16.IsSurrogate(r) && problem == "":
				problem = "has an unpaired surrogate escape (not valid UTF-8)"
			}
		case c == '\\':
			j += 2
		case c < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(data[j:])
			if r == utf8.RuneError && size == 1 && problem == "" {
				problem = "is not valid UTF-8"
			}
			j += size
		}
	}
	return len(data) - 1, problem
}

// hex4 decodes the 4 hex digits at data[i:] (-1 if they are not).
func hex4(data []byte, i int) rune {
	if i+4 > len(data) {
		return -1
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			r = r<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return -1
		}
	}
	return r
}

func isLowSurrogate(r rune) bool { return 0xDC00 <= r && r <= 0xDFFF }
