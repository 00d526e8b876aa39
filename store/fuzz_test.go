package store_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/wxcampaign/wxcampaign/store"
)

func FuzzParseLine(f *testing.F) {
	f.Add([]byte(`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1"}`))
	f.Add([]byte(`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1"} {}`))
	f.Add([]byte(`{"openId":"u1","extraVariableMap":{"a":[1,{"b":null}]},"rejectTemplateIds":["A"],"requestId":"r1","x":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := store.ParseLine(line)
		if err != nil {
			if r != nil {
				t.Fatal("result with error")
			}
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid result: %v", err)
		}
	})
}

func FuzzExpandKeys(f *testing.F) {
	for _, s := range []string{
		"SELECT * FROM t WHERE id IN (:keys)",
		"SELECT ':keys', \":keys\", `:keys` FROM t WHERE a IN (:keys) AND b IN (:keys) -- :keys\n",
		"SELECT a::int, :keyset FROM t /* :keys */ WHERE x = 'it''s :keys'",
		"SELECT 'unterminated :keys",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		out, n := store.ExpandKeys(q)
		if strings.Count(out, "?")-strings.Count(q, "?") != n {
			t.Fatalf("%q -> %q: %d replacements but ? count moved by %d", q, out, n, strings.Count(out, "?")-strings.Count(q, "?"))
		}
		if n == 0 && out != q {
			t.Fatalf("%q changed without replacements: %q", q, out)
		}
		if len(out) != len(q)-4*n {
			t.Fatalf("%q -> %q: length", q, out)
		}
	})
}

func TestExpandKeys(t *testing.T) {
	tests := []struct {
		in, want string
		n        int
	}{
		{"SELECT * FROM t WHERE id IN (:keys)", "SELECT * FROM t WHERE id IN (?)", 1},
		{"a IN (:keys) OR b IN (:keys)", "a IN (?) OR b IN (?)", 2},
		{"':keys' \":keys\" `:keys`", "':keys' \":keys\" `:keys`", 0},
		{"x = 'it''s' AND y IN (:keys)", "x = 'it''s' AND y IN (?)", 1},
		{"x = 'a\\'b' AND y IN (:keys)", "x = 'a\\'b' AND y IN (?)", 1},
		{"-- :keys\nIN (:keys)", "-- :keys\nIN (?)", 1},
		{"/* :keys */ IN (:keys)", "/* :keys */ IN (?)", 1},
		{":keyset, ::keys, :keys", ":keyset, ::keys, ?", 1},
	}
	for _, tc := range tests {
		got, n := store.ExpandKeys(tc.in)
		if got != tc.want || n != tc.n {
			t.Errorf("ExpandKeys(%q) = %q, %d; want %q, %d", tc.in, got, n, tc.want, tc.n)
		}
	}
}

// fastCases are lines for the differential test of the fast line parser;
// fast says whether the fast path takes the line (the common shapes).
var fastCases = []struct {
	line string
	fast bool
}{
	{`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"oUpF8uMuAJO_M2pxb1Q9zNjW1","scene":"cart","busNo":"sku-1","extraVariableMap":{"price":100.5,"title":"Spring sale"},"agreeTemplateIds":["tmpl-price","tmpl-stock"],"rejectTemplateIds":[],"requestId":"req-1"}` + "\n", true},
	{` { "openId" : "中文" , "agreeTemplateIds" : [ "A" , "B" ] , "longTermTemplateIds":["B"], "banTemplateIds":["C"], "filterTemplateIds":["D"], "requestId":"r" } ` + "\r\n", true},
	{`{"openId":"u1","extraVariableMap":{"a":[1,{"b":null}],"s":"x\"}y","n":-1.5e3},"rejectTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"u1","extraVariableMap":{},"agreeTemplateIds":[],"rejectTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{}`, true},
	// The bench's own lines (encoding/json of a SubscriptionResult): null lists.
	{`{"openId":"oBench000000001","scene":"add_to_cart","busNo":"p000002","extraVariableMap":{"saved_price":"21.27"},"agreeTemplateIds":["T"],"rejectTemplateIds":null,"requestId":"bench-000000001"}` + "\n", true},
	{`{"openId":"u1","scene":null,"busNo":null,"extraVariableMap":null,"agreeTemplateIds":["A"],"rejectTemplateIds":null,"banTemplateIds":null,"filterTemplateIds":null,"longTermTemplateIds":null,"requestId":"r1"}`, true},
	{`{"openId":null,"agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	// Escapes, as Python's json.dumps writes them (ensure_ascii).
	{`{"openId":"u\n1","agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"u\u0031","agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"\u4e2d\u6587 \"\\\/\b\f\n\r\t","scene":"\ud83d\ude00","agreeTemplateIds":["\u0041"],"requestId":"r1"}`, true},
	{`{"openId":"lone \ud83d x \ude00 \ud83d\u0041","agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{"{\"openId\":\"\xff\xfe a\",\"agreeTemplateIds\":[\"A\"],\"requestId\":\"r1\"}", true},
	{"{\"openId\":\"\\u00e9\xff\",\"agreeTemplateIds\":[\"A\"],\"requestId\":\"r1\"}", true},
	// extraVariableMap: flat values decoded in place, nested ones by encoding/json.
	{`{"openId":"u1","extraVariableMap":{"a":0,"b":-0,"c":-12.5e-3,"d":1E+2,"e":true,"f":false,"g":null,"h":"x\u00e9","a":7,"k\n":"v"},"agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"u1","extraVariableMap":{"n":123456789012345678901234567890,"m":{"x":[1]}},"agreeTemplateIds":["A"],"requestId":"r1"}`, true},
	{`{"openId":"u1","extraVariableMap":{"n":01},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":1.},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":.5},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":-},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":1e400},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":tru},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"n":1,},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	// Everything else goes to the strict decoder.
	{`{"openId":"u\'1","agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u\u00g1","agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"open\u0049d":"u1","agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"OPENID":"u1","agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","openId":"u2","agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","agreeTemplateIds":[null],"requestId":"r1"}`, false},
	{`{"openId":nul,"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":nullx,"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1","x":1}`, false},
	{`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1"} {}`, false},
	{`{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1"`, false},
	{`{"openId":"u1","agreeTemplateIds":["A",],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":{"a":[}},"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{`{"openId":"u1","extraVariableMap":[1],"agreeTemplateIds":["A"],"requestId":"r1"}`, false},
	{"{\"openId\":\"u\x01\",\"agreeTemplateIds\":[\"A\"],\"requestId\":\"r1\"}", false},
	{"\ufeff{\"openId\":\"u1\",\"agreeTemplateIds\":[\"A\"],\"requestId\":\"r1\"}", false},
}

// TestParseFast: whenever the fast parser accepts a line, the strict
// decoder accepts it too with the same result; the common shapes are
// taken by the fast path.
func TestParseFast(t *testing.T) {
	for i, c := range fastCases {
		checkFast(t, []byte(c.line))
		if _, ok := store.ParseFast([]byte(c.line)); ok != c.fast {
			t.Errorf("case %d %q: fast path ok=%v, want %v", i, c.line, ok, c.fast)
		}
	}
}

func checkFast(t *testing.T, line []byte) {
	t.Helper()
	fast, ok := store.ParseFast(line)
	if !ok {
		return
	}
	strict, err := store.ParseStrict(line)
	if err != nil {
		t.Fatalf("%q: fast path accepted, strict decoder says %v", line, err)
	}
	if !reflect.DeepEqual(fast, strict) {
		t.Fatalf("%q: fast %#v, strict %#v", line, fast, strict)
	}
}

// FuzzParseLineFast is the differential fuzz target of the fast parser.
func FuzzParseLineFast(f *testing.F) {
	for _, c := range fastCases {
		f.Add([]byte(c.line))
	}
	f.Fuzz(func(t *testing.T, line []byte) { checkFast(t, line) })
}

// BenchmarkParseLine decodes the bench's line shape (fast path) and, for
// reference, the same line with the strict decoder.
func BenchmarkParseLine(b *testing.B) {
	line := []byte(`{"openId":"oBench000000001","scene":"add_to_cart","busNo":"p000002","extraVariableMap":{"saved_price":"21.27"},"agreeTemplateIds":["bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c"],"rejectTemplateIds":null,"requestId":"bench-000000001"}`)
	for _, bc := range []struct {
		name  string
		parse func([]byte) error
	}{
		{"fast", func(l []byte) error { _, err := store.ParseLine(l); return err }},
		{"strict", func(l []byte) error { _, err := store.ParseStrict(l); return err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.parse(line); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// checkDecodeObject: decodeObject gives what encoding/json gives, value
// and error alike (an error's text may differ).
func checkDecodeObject(t *testing.T, s string) {
	t.Helper()
	got, gotErr := store.DecodeObject(s)
	var want map[string]any
	wantErr := json.Unmarshal([]byte(s), &want)
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, encoding/json %v", s, gotErr, wantErr)
	}
	if gotErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: %#v, encoding/json %#v", s, got, want)
	}
}

var objectCases = []string{
	`{"saved_price":"21.27"}`,
	`{"saved_price":21.27,"n":-1e3,"ok":true,"no":false,"x":null}`,
	` { "a" : "b" } `,
	`{}`,
	`null`,
	`{"a":"\u00e9\ud83d\ude00","b":"\ud800"}`,
	`{"a":"b","a":"c"}`,
	`{"nested":{"a":1},"list":[1,2]}`,
	`{"a":1e400}`,
	`{"a":01}`,
	`{"a":"b"} x`,
	`{"a":"b",}`,
	"{\"a\":\"\xff\"}",
	``,
}

func TestDecodeObject(t *testing.T) {
	for _, s := range objectCases {
		t.Run(s, func(t *testing.T) { checkDecodeObject(t, s) })
	}
}

// FuzzDecodeObject is the differential fuzz target of the grants.vars
// decoder against encoding/json.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range objectCases {
		f.Add(s)
	}
	f.Fuzz(checkDecodeObject)
}
