package wechat

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxcampaign/wxcampaign"
)

// Template is one private template of the mini program (getTemplateList).
type Template struct {
	ID      string              `json:"priTmplId"`
	Title   string              `json:"title"`
	Content string              `json:"content"`
	Example string              `json:"example"`
	Type    int                 `json:"type"`            // 2 one-time, 3 long-term
	Keys    []KeyInfo           `json:"keys,omitempty"`  // parsed from Content, in order
	Enums   map[string][]string `json:"enums,omitempty"` // enum values per key, from keywordEnumValueList
}

// KeyInfo is one data key of a template, parsed from "会议时间:{{date2.DATA}}".
type KeyInfo struct {
	Key     string `json:"key"`               // "date2"
	Type    string `json:"type"`              // "date"
	Index   int    `json:"index"`             // 2
	Name    string `json:"name"`              // "会议时间", the label in front of the key
	Example string `json:"example,omitempty"` // "2016年8月8日", the example's line with the same label
}

// Kind returns the subscription kind of the template: type 3 is long-term,
// anything else one-time.
func (t Template) Kind() wxcampaign.Kind {
	if t.Type == 3 {
		return wxcampaign.LongTerm
	}
	return wxcampaign.OneTime
}

// templateReply is the reply of getTemplateList.
type templateReply struct {
	Data []struct {
		ID      string `json:"priTmplId"`
		Title   string `json:"title"`
		Content string `json:"content"`
		Example string `json:"example"`
		Type    int    `json:"type"`
		Enums   []struct {
			KeywordCode   string   `json:"keywordCode"`
			EnumValueList []string `json:"enumValueList"`
		} `json:"keywordEnumValueList"`
	} `json:"data"`
}

// Templates calls getTemplateList and returns the account's templates with
// their keys and enum values.
func (c *Client) Templates(ctx context.Context) ([]Template, error) {
	var r templateReply
	if err := c.callWithToken(ctx, "templates", "GET", "/wxaapi/newtmpl/gettemplate", nil, &r); err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(r.Data))
	for _, d := range r.Data {
		t := Template{ID: d.ID, Title: d.Title, Content: d.Content, Example: d.Example, Type: d.Type, Keys: ParseContent(d.Content)}
		exampleValues(t.Keys, d.Example)
		for _, e := range d.Enums {
			k := trimKeyCode(e.KeywordCode)
			if k == "" {
				continue
			}
			if t.Enums == nil {
				t.Enums = make(map[string][]string, len(d.Enums))
			}
			t.Enums[k] = e.EnumValueList
		}
		out = append(out, t)
	}
	return out, nil
}

// ParseContent returns the keys of a template content such as
// "会议时间:{{date2.DATA}}\n会议地点:{{thing1.DATA}}\n", in order.
func ParseContent(content string) []KeyInfo {
	var keys []KeyInfo
	rest := content
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			return keys
		}
		j := strings.Index(rest[i:], "}}")
		if j < 0 {
			return keys
		}
		label := rest[:i]
		if nl := strings.LastIndexByte(label, '\n'); nl >= 0 {
			label = label[nl+1:]
		}
		if k := strings.LastIndex(label, "}}"); k >= 0 {
			label = label[k+2:]
		}
		label = strings.TrimSpace(strings.TrimRight(strings.TrimSpace(label), ":："))
		code := rest[i+2 : i+j]
		rest = rest[i+j+2:]
		key := strings.TrimSuffix(code, ".DATA")
		typ, idx, ok := splitKey(key)
		if !ok {
			continue
		}
		keys = append(keys, KeyInfo{Key: key, Type: typ, Index: idx, Name: label})
	}
}

// exampleValues sets each key's Example from a template example such as
// "会议时间:2016年8月8日\n会议地点:TIT会议室\n": the value of the first line
// whose label is the key's label.
func exampleValues(keys []KeyInfo, example string) {
	used := make([]bool, len(keys))
	for _, line := range strings.Split(example, "\n") {
		i := strings.IndexAny(line, ":：")
		if i < 0 {
			continue
		}
		label := strings.TrimSpace(line[:i])
		_, size := utf8.DecodeRuneInString(line[i:])
		value := strings.TrimSpace(line[i+size:])
		for k := range keys {
			if !used[k] && keys[k].Name == label {
				keys[k].Example, used[k] = value, true
				break
			}
		}
	}
}

// trimKeyCode turns "{{phrase4.DATA}}" (or "phrase4") into "phrase4".
func trimKeyCode(code string) string {
	code = strings.TrimSpace(code)
	code = strings.TrimPrefix(code, "{{")
	code = strings.TrimSuffix(code, "}}")
	return strings.TrimSuffix(code, ".DATA")
}

// splitKey splits "character_string12" into "character_string" and 12.
func splitKey(key string) (string, int, bool) {
	i := len(key)
	for i > 0 && key[i-1] >= '0' && key[i-1] <= '9' {
		i--
	}
	if i == 0 || i == len(key) || i < len(key)-6 {
		return "", 0, false
	}
	for _, r := range key[:i] {
		if (r < 'a' || r > 'z') && r != '_' {
			return "", 0, false
		}
	}
	n, err := strconv.Atoi(key[i:])
	if err != nil {
		return "", 0, false
	}
	return key[:i], n, true
}

// Session is the reply of jscode2session. SessionKey is a secret: String
// and GoString leave it out.
type Session struct {
	OpenID     string `json:"openid"`
	UnionID    string `json:"unionid"`
	SessionKey string `json:"session_key"`
}

// String returns the session without its key.
func (s Session) String() string {
	return fmt.Sprintf("{OpenID:%s UnionID:%s SessionKey:REDACTED}", s.OpenID, s.UnionID)
}

// GoString returns the session without its key.
func (s Session) GoString() string { return "wechat.Session" + s.String() }

// Session calls jscode2session for a login code from wx.login. A code
// works once.
func (c *Client) Session(ctx context.Context, code string) (Session, error) {
	if code == "" {
		return Session{}, &APIError{Op: "session", Class: ClassPermanent, Err: fmt.Errorf("empty code")}
	}
	q := "appid=" + url.QueryEscape(c.appid) + "&secret=" + url.QueryEscape(c.secret) + "&js_code=" + url.QueryEscape(code) + "&grant_type=authorization_code"
	var s Session
	if err := c.call(ctx, "session", "GET", "/sns/jscode2session", q, nil, &s); err != nil {
		return Session{}, err
	}
	if s.OpenID == "" {
		return Session{}, &APIError{Op: "session", Class: ClassAmbiguous, Err: fmt.Errorf("reply without openid")}
	}
	return s, nil
}

// quotaReply is the reply of openapi/quota/get.
type quotaReply struct {
	Quota struct {
		DailyLimit int `json:"daily_limit"`
		Used       int `json:"used"`
		Remain     int `json:"remain"`
	} `json:"quota"`
}

// Quota calls openapi/quota/get for an API path such as
// "/cgi-bin/message/subscribe/send".
func (c *Client) Quota(ctx context.Context, cgiPath string) (dailyLimit, used, remain int, err error) {
	body, err := json.Marshal(map[string]string{"cgi_path": cgiPath})
	if err != nil {
		return 0, 0, 0, &APIError{Op: "quota", Class: ClassConfig, Err: err}
	}
	var r quotaReply
	if err := c.callWithToken(ctx, "quota", "POST", "/cgi-bin/openapi/quota/get", body, &r); err != nil {
		return 0, 0, 0, err
	}
	return r.Quota.DailyLimit, r.Quota.Used, r.Quota.Remain, nil
}
