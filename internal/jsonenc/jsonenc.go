// Package jsonenc writes json.Marshal's bytes for decoded JSON values
// (strings, float64, bool, nil, []string, []any, map[string]any) without
// reflection. A subscription result's fingerprint is stored and compared,
// and the grants' vars column is read back as JSON: both need exactly
// json.Marshal's encoding, at a fraction of its cost.
package jsonenc

import (
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Marshal returns json.Marshal(v): written here for decoded JSON values,
// by json.Marshal for anything else.
func Marshal(v any) ([]byte, error) {
	if b, ok := Append(make([]byte, 0, 128), v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

// Append appends json.Marshal's encoding of v for the values a decoded
// subscription result holds: strings, float64, bool, nil, []string, []any
// and map[string]any of those (keys sorted, HTML characters escaped, as
// json.Marshal does). ok is false for anything else (another type, NaN or
// an infinity), and the caller uses json.Marshal. It is 5 to 10 times
// cheaper than json.Marshal, whose reflection was a quarter of an import's
// CPU. FuzzAppend checks it against json.Marshal.
func Append(b []byte, v any) (_ []byte, ok bool) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), true
	case string:
		return AppendString(b, x), true
	case bool:
		return strconv.AppendBool(b, x), true
	case float64:
		return appendJSONFloat(b, x)
	case []string:
		return AppendStrings(b, x), true
	case []any:
		if x == nil {
			return append(b, "null"...), true
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			if b, ok = Append(b, e); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case map[string]any:
		if x == nil {
			return append(b, "null"...), true
		}
		var small [8]string // a result's few variables: no allocation
		keys := small[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(AppendString(b, k), ':')
			if b, ok = Append(b, x[k]); !ok {
				return b, false
			}
		}
		return append(b, '}'), true
	}
	return b, false
}

// AppendStrings appends the list ids as json.Marshal writes a []string
// (null when nil).
func AppendStrings(b []byte, ids []string) []byte {
	if ids == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, s := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = AppendString(b, s)
	}
	return append(b, ']')
}

// AppendString appends s as json.Marshal quotes it. A string without
// control characters, '"', '\\', '<', '>', '&', U+2028, U+2029 or invalid
// UTF-8 (ids, scenes, prices, Chinese text) is copied as it is; any other
// goes through json.Marshal, which knows every rule.
func AppendString(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return appendMarshaled(b, s)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return appendMarshaled(b, s)
		}
		i += size
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshaled(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// appendJSONFloat appends f as json.Marshal writes a float64 (the ES6
// number form); NaN and infinities are not ok, as for json.Marshal.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 as e-9, like json.Marshal
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}
