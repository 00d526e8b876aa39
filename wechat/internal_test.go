package wechat

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{
		`{"errcode":0,"errmsg":"ok","msgid":1700000000000000000}`,
		`{"errcode":47003,"errmsg":"argument invalid! data.thing3.value invalid"}`,
		`{"errcode":-1,"errmsg":"system error"}`,
		`{"access_token":"abc","expires_in":7200}`,
		`{"errcode":0,"data":[{"priTmplId":"x","content":"a:{{thing1.DATA}}\n","type":2,"keywordEnumValueList":[{"keywordCode":"{{enum2.DATA}}","enumValueList":["a"]}]}]}`,
		`{"errcode":"40001"}`,
		`{"msgid":1.5e3}`,
		`[]`, `null`, ``, `<html>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sendReply
		code, msg, err := decodeResponse(data, &s)
		if err != nil {
			if code != 0 || msg != "" {
				t.Fatalf("error with code %d msg %q", code, msg)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON %q decoded without error", data)
		}
		if code == 0 && s.MsgID != "" {
			parseMsgID(string(s.MsgID)) // must not panic
		}
		var tr templateReply
		if _, _, err := decodeResponse(data, &tr); err == nil {
			for _, d := range tr.Data {
				for _, k := range ParseContent(d.Content) {
					if k.Key == "" || k.Type == "" || k.Index < 0 || !strings.HasPrefix(k.Key, k.Type) {
						t.Fatalf("bad key %+v from %q", k, d.Content)
					}
				}
			}
		}
		var q quotaReply
		decodeResponse(data, &q)
		var tok tokenReply
		decodeResponse(data, &tok)
	})
}

func TestDecodeResponse(t *testing.T) {
	tests := []struct {
		in      string
		code    int
		msgid   string
		wantErr bool
	}{
		{`{"errcode":0,"errmsg":"ok","msgid":123}`, 0, "123", false},
		{`{"errmsg":"ok","msgid":123}`, 0, "123", false},
		{`{"errcode":43101,"errmsg":"user refuse"}`, 43101, "", false},
		{`{"errcode":43101,"msgid":"oops"}`, 43101, "", false},
		{`not json`, 0, "", true},
		{`{"errcode":"x"}`, 0, "", true},
		{`{"errcode":0,"msgid":{}}`, 0, "", true},
	}
	for _, tt := range tests {
		var r sendReply
		code, _, err := decodeResponse([]byte(tt.in), &r)
		if (err != nil) != tt.wantErr || code != tt.code || string(r.MsgID) != tt.msgid {
			t.Errorf("decode(%s) = %d %q %v", tt.in, code, r.MsgID, err)
		}
	}
}

func TestParseMsgID(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "1700000000000000000": 1700000000000000000, "1.5e3": 1500} {
		if got, err := parseMsgID(in); err != nil || got != want {
			t.Errorf("parseMsgID(%s) = %d %v", in, got, err)
		}
	}
	for _, in := range []string{"", "x", "1e40"} {
		if _, err := parseMsgID(in); err == nil {
			t.Errorf("parseMsgID(%q) accepted", in)
		}
	}
}

func TestParseContent(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n", "date2(date,2,会议时间) thing1(thing,1,会议地点)"},
		{"单号：{{character_string12.DATA}}\n金额 : {{amount3.DATA}}", "character_string12(character_string,12,单号) amount3(amount,3,金额)"},
		{"{{thing1.DATA}}{{time2.DATA}}", "thing1(thing,1,) time2(time,2,)"},
		{"broken {{thing1.DATA", ""},
		{"{{Thing1.DATA}} {{1.DATA}} {{thing.DATA}}", ""},
		{"", ""},
	}
	for _, tt := range tests {
		var got []string
		for _, k := range ParseContent(tt.in) {
			got = append(got, fmt.Sprintf("%s(%s,%d,%s)", k.Key, k.Type, k.Index, k.Name))
		}
		if s := strings.Join(got, " "); s != tt.want {
			t.Errorf("ParseContent(%q) = %q, want %q", tt.in, s, tt.want)
		}
	}
}

func TestClassOfCode(t *testing.T) {
	want := map[int]Class{
		0: "", -1: ClassRetryable, 43108: ClassRetryable,
		40001: ClassToken, 40014: ClassToken, 42001: ClassToken,
		40003: ClassUser, 43101: ClassGrantGone, 47003: ClassContent, 45168: ClassContent,
		40037: ClassMisconfigured, 41030: ClassMisconfigured, 43107: ClassMisconfigured,
		45009: ClassQuota, 40013: ClassConfig, 40164: ClassConfig, 40243: ClassConfig, 40002: ClassConfig, 40125: ClassConfig,
		40029: ClassPermanent, 99999: ClassPermanent,
	}
	for code, cl := range want {
		if got := ClassOfCode(code); got != cl {
			t.Errorf("ClassOfCode(%d) = %q, want %q", code, got, cl)
		}
	}
	statuses := map[int]Class{502: ClassRetryable, 503: ClassRetryable, 500: ClassAmbiguous, 504: ClassAmbiguous, 429: ClassRetryable, 404: ClassConfig, 301: ClassConfig}
	for st, cl := range statuses {
		if got := classOfStatus(st); got != cl {
			t.Errorf("classOfStatus(%d) = %q, want %q", st, got, cl)
		}
	}
}

func TestClassOf(t *testing.T) {
	tests := []struct {
		err  error
		want Class
	}{
		{nil, ""},
		{&APIError{Class: ClassQuota}, ClassQuota},
		{fmt.Errorf("engine: %w", &APIError{Class: ClassGrantGone}), ClassGrantGone},
		{&net.OpError{Op: "dial", Err: errors.New("refused")}, ClassRetryable},
		{&net.OpError{Op: "read", Err: errors.New("reset")}, ClassAmbiguous},
		{errors.New("who knows"), ClassAmbiguous},
	}
	for _, tt := range tests {
		if got := ClassOf(tt.err); got != tt.want {
			t.Errorf("ClassOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

func TestRedact(t *testing.T) {
	in := `Post "http://x/cgi-bin/send?access_token=TOK123456&x=1": js_code=abc secret=SEC session_key=KEY TOK123456 MYSECRET`
	got := redactString(in, "MYSECRET", "TOK123456")
	for _, s := range []string{"TOK123456", "SEC ", "abc", "KEY", "MYSECRET"} {
		if strings.Contains(got, s) {
			t.Errorf("%q left in %q", s, got)
		}
	}
	if !strings.Contains(got, "x=1") {
		t.Errorf("too much removed: %q", got)
	}
}

func TestMessageJSON(t *testing.T) {
	m := Message{ToUser: "o1", TemplateID: "T", Page: "p?a=1&b=<2>", State: "formal", Lang: "zh_CN",
		Data: map[string]string{"thing1": "引号\"和\\反斜杠\n", "amount2": "¥1"}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %s", b)
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	if d := raw["data"].(map[string]any)["thing1"].(map[string]any)["value"]; d != m.Data["thing1"] {
		t.Errorf("data value = %q", d)
	}
	var back Message
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(m) {
		t.Errorf("round trip: %+v != %+v", back, m)
	}
	empty, _ := json.Marshal(Message{ToUser: "o", TemplateID: "T"})
	if string(empty) != `{"touser":"o","template_id":"T","data":{}}` {
		t.Errorf("minimal message = %s", empty)
	}
}

// TestMessageJSONIsEncodingJSON: the hand-written encoding is the one
// encoding/json gives for the same wire form, escapes included.
func TestMessageJSONIsEncodingJSON(t *testing.T) {
	type value struct {
		Value string `json:"value"`
	}
	type wire struct {
		ToUser     string           `json:"touser"`
		TemplateID string           `json:"template_id"`
		Page       string           `json:"page,omitempty"`
		State      string           `json:"miniprogram_state,omitempty"`
		Lang       string           `json:"lang,omitempty"`
		Data       map[string]value `json:"data"`
	}
	for _, m := range []Message{
		{ToUser: "o1", TemplateID: "T", Data: map[string]string{"thing1": "降价了，快来看看", "amount2": "¥12.50", "time3": "2026-12-02 10:00"}},
		{ToUser: "o<2>", TemplateID: "T&", Page: "p?a=1&b=<2>", State: "formal", Lang: "zh_CN",
			Data: map[string]string{"thing1": "a\u2028b\u2029c", "thing2": "bad \xff utf-8", "thing3": "tab\tnul\x00del\x7f", "q": `"\`}},
	} {
		got, err := m.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		w := wire{ToUser: m.ToUser, TemplateID: m.TemplateID, Page: m.Page, State: m.State, Lang: m.Lang, Data: map[string]value{}}
		for k, v := range m.Data {
			w.Data[k] = value{v}
		}
		want, _ := json.Marshal(w)
		if string(got) != string(want) {
			t.Errorf("MarshalJSON\n got %s\nwant %s", got, want)
		}
	}
}
