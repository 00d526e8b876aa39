package jsonenc

import (
	"encoding/json"
	"math"
	"testing"
)

// checkAppend: Append writes json.Marshal's bytes, or says it
// cannot.
func checkAppend(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	got, ok := Append(nil, v)
	if err != nil {
		if ok {
			t.Fatalf("%#v: Append ok, json.Marshal: %v", v, err)
		}
		return
	}
	if ok && string(got) != string(want) {
		t.Fatalf("%#v:\nAppend   %s\njson.Marshal %s", v, got, want)
	}
}

func TestAppend(t *testing.T) {
	for _, v := range []any{
		nil, "", "oUser_1", "add_to_cart", `a"b\c`, "<p>&amp;</p>", "降价了", "\u2028\u2029", "\x00\x1f\b\f\n\r\t", "\xff\xfe",
		true, false, 0.0, math.Copysign(0, -1), 1.0, 21.27, 1e20, 1e21, 1e-6, 1e-7, 123456789.125, -3.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1),
		[]string(nil), []string{}, []string{"b", "a"},
		[]any(nil), []any{}, []any{"a", 1.5, nil, true, map[string]any{"k": "v"}},
		map[string]any(nil), map[string]any{}, map[string]any{"z": 1.0, "a": "x", "<": nil, "m": map[string]any{"b": false}},
		map[string]any{"n": json.Number("12")}, map[string]any{"i": 3},
		[]any{"o", "scene", "biz", map[string]any{"saved_price": "21.27"}, []string{"T1"}, []string(nil), []string(nil), []string{}},
	} {
		checkAppend(t, v)
	}
	if _, ok := Append(nil, map[string]any{"i": 3}); ok {
		t.Error("an int is not a decoded JSON value: Append should leave it to json.Marshal")
	}
}

// FuzzAppend compares Append with json.Marshal on the shape of a
// fingerprint: strings, a map of strings, numbers and booleans, id lists.
func FuzzAppend(f *testing.F) {
	f.Add("oUser", "cart", "k", "v", 21.27, true, "T1")
	f.Add("\u2028<&>", "\xff", "\x00", `"\`, 1e-7, false, "降价")
	f.Fuzz(func(t *testing.T, a, b, k, s string, x float64, flag bool, id string) {
		checkAppend(t, []any{a, b, map[string]any{k: s, k + "x": x, k + "b": flag, k + "n": nil}, []string{id, a}, []string(nil)})
		checkAppend(t, x)
	})
}

func TestMarshal(t *testing.T) {
	for _, v := range []any{map[string]any{"b": 1.5, "a": "<x>"}, map[string]any{"i": 3}, []string{"a"}} {
		got, err := Marshal(v)
		want, _ := json.Marshal(v)
		if err != nil || string(got) != string(want) {
			t.Errorf("Marshal(%#v) = %s, %v; want %s", v, got, err, want)
		}
	}
	if _, err := Marshal(math.NaN()); err == nil {
		t.Error("Marshal(NaN): no error")
	}
}
