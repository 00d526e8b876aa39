package wxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testAppID  = "wx-test-app"
	testSecret = "test-secret-0123456789"
)

// allTypes is a one-time template with a key of every keyword type.
var allTypes = TemplateDef{
	ID:    "T-ALL",
	Title: "every type",
	Kind:  "one_time",
	Keys: []string{"thing1", "number2", "letter3", "symbol4", "character_string5", "time6", "date7",
		"amount8", "phone_number9", "car_number10", "name11", "phrase12", "enum13", "short_thing14"},
	Labels:   map[string]string{"thing1": "商品名称", "enum13": "物流状态", "short_thing14": "状态"},
	Examples: map[string]string{"thing1": "限量球鞋", "short_thing14": "配送中"},
	Enums:    map[string][]string{"enum13": {"已发货", "未发货"}},
}

var validData = map[string]string{
	"thing1":            "降价提醒：限量球鞋",
	"number2":           "12.5",
	"letter3":           "abcXYZ",
	"symbol4":           "%$#",
	"character_string5": "ORD-2024-0001",
	"time6":             "2019年10月1日 15:01",
	"date7":             "2019-10-01",
	"amount8":           "¥12.50",
	"phone_number9":     "+86 138-0000-0000",
	"car_number10":      "粤A12345",
	"name11":            "张三",
	"phrase12":          "已发货",
	"enum13":            "未发货",
	"short_thing14":     "配送中",
}

var longTerm = TemplateDef{ID: "T-LONG", Kind: "long_term", Keys: []string{"thing1", "time2"}}

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	sim   *Server
	srv   *httptest.Server
	clock *fakeClock
	token string
}

func setup(t *testing.T, mod func(*Config)) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	cfg := Config{AppID: testAppID, Secret: testSecret, Templates: []TemplateDef{allTypes, longTerm}, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	sim, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sim.Close() })
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	e := &env{t: t, sim: sim, srv: srv, clock: clock}
	e.token = e.stableToken(false)
	return e
}

// call POSTs (or GETs, when body is nil) and decodes the JSON reply.
func (e *env) call(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, &out); err != nil {
			e.t.Fatalf("%s %s: reply %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode, out
}

func (e *env) stableToken(force bool) string {
	e.t.Helper()
	_, r := e.call("POST", "/cgi-bin/stable_token", map[string]any{"grant_type": "client_credential", "appid": testAppID, "secret": testSecret, "force_refresh": force})
	tok, _ := r["access_token"].(string)
	if tok == "" {
		e.t.Fatalf("stable_token: %v", r)
	}
	return tok
}

type sendBody struct {
	ToUser     string                       `json:"touser"`
	TemplateID string                       `json:"template_id"`
	Page       string                       `json:"page,omitempty"`
	State      string                       `json:"miniprogram_state,omitempty"`
	Lang       string                       `json:"lang,omitempty"`
	Data       map[string]map[string]string `json:"data"`
}

func body(to, tmpl string, data map[string]string) sendBody {
	d := make(map[string]map[string]string, len(data))
	for k, v := range data {
		d[k] = map[string]string{"value": v}
	}
	return sendBody{ToUser: to, TemplateID: tmpl, Data: d}
}

// send posts a send with the env's token and returns status, errcode, errmsg.
func (e *env) send(b sendBody) (int, int, string) {
	e.t.Helper()
	return e.sendWith(e.token, b)
}

func (e *env) sendWith(tok string, b sendBody) (int, int, string) {
	e.t.Helper()
	status, r := e.call("POST", "/cgi-bin/message/subscribe/send?access_token="+url.QueryEscape(tok), b)
	code, _ := r["errcode"].(float64)
	msg, _ := r["errmsg"].(string)
	return status, int(code), msg
}

func with(key, value string) map[string]string {
	d := make(map[string]string, len(validData))
	for k, v := range validData {
		d[k] = v
	}
	d[key] = value
	return d
}

func TestKeywordRules(t *testing.T) {
	e := setup(t, func(c *Config) { c.LooseCredits = true })
	tests := []struct {
		key, pass, fail string
	}{
		{"thing1", "订单已发货 Order 1", "一二三四五六七八九十一二三四五六七八九十一"},
		{"number2", "-3.25", "12a"},
		{"letter3", "OK", "abc1"},
		{"symbol4", "¥%", "a%"},
		{"character_string5", "A1-b2_c3", "订单1"},
		{"time6", "15:01~16:30", "25:61"},
		{"date7", "2019年10月1日", "2019-13-01"},
		{"amount8", "12.50元", "12 yuan"},
		{"phone_number9", "13800000000", "138-abc"},
		{"car_number10", "京A1B2C3", "A!12345"},
		{"name11", "Li Lei", "张三李四王五赵六钱七孙八"},
		{"phrase12", "待支付", "pay"},
		{"enum13", "已发货", "已取消"},
		{"short_thing14", "已发货了吗", "已发货了吗？"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if _, code, msg := e.send(body("o-pass", "T-ALL", with(tt.key, tt.pass))); code != 0 {
				t.Errorf("pass value %q: errcode %d %s", tt.pass, code, msg)
			}
			_, code, msg := e.send(body("o-fail", "T-ALL", with(tt.key, tt.fail)))
			want := "argument invalid! data." + tt.key + ".value invalid"
			if code != 47003 || msg != want {
				t.Errorf("fail value %q: got %d %q, want 47003 %q", tt.fail, code, msg, want)
			}
		})
	}
	for _, key := range allTypes.Keys {
		t.Run(key+"/empty", func(t *testing.T) {
			if _, code, _ := e.send(body("o-empty", "T-ALL", with(key, ""))); code != 47003 {
				t.Errorf("empty %s: errcode %d, want 47003", key, code)
			}
		})
	}
	if got := len(e.sim.MessagesTo("o-fail")); got != 0 {
		t.Errorf("%d messages delivered to o-fail, want 0", got)
	}
	if got := len(e.sim.MessagesTo("o-pass")); got != len(tests) {
		t.Errorf("%d messages delivered to o-pass, want %d", got, len(tests))
	}
}

func TestSendChecks(t *testing.T) {
	e := setup(t, func(c *Config) { c.Pages = []string{"pages/item/detail", "pages/index"} })
	e.sim.AddCredits("o1", "T-ALL", 100)
	missing := with("thing1", "x")
	delete(missing, "date7")
	extra := with("thing1", "x")
	extra["thing99"] = "y"
	tests := []struct {
		name    string
		tok     string
		b       sendBody
		code    int
		msgPart string
	}{
		{"ok", "", body("o1", "T-ALL", validData), 0, "ok"},
		{"no token", "-", body("o1", "T-ALL", validData), 41001, "missing"},
		{"bad token", "nope", body("o1", "T-ALL", validData), 40001, "invalid credential"},
		{"empty touser", "", body("", "T-ALL", validData), 40003, "openid"},
		{"unknown template", "", body("o1", "T-NOPE", validData), 40037, "template_id"},
		{"missing key", "", body("o1", "T-ALL", missing), 47003, "data.date7.value is empty"},
		{"extra key", "", body("o1", "T-ALL", extra), 47003, "data.thing99 is not in template"},
		{"page with query", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Page = "pages/item/detail?id=1"; return b }(), 0, "ok"},
		{"page leading slash", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Page = "/pages/index"; return b }(), 41030, "page"},
		{"page with space", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Page = "pages/ind ex"; return b }(), 41030, "page"},
		{"page unknown", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Page = "pages/other"; return b }(), 41030, "page"},
		{"page too long", "", func() sendBody {
			b := body("o1", "T-ALL", validData)
			b.Page = "pages/item/detail?q=" + strings.Repeat("x", 1100)
			return b
		}(), 41030, "page"},
		{"state trial", "", func() sendBody { b := body("o1", "T-ALL", validData); b.State = "trial"; return b }(), 0, "ok"},
		{"state bad", "", func() sendBody { b := body("o1", "T-ALL", validData); b.State = "prod"; return b }(), 47003, "miniprogram_state"},
		{"lang en_US", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Lang = "en_US"; return b }(), 0, "ok"},
		{"lang bad", "", func() sendBody { b := body("o1", "T-ALL", validData); b.Lang = "fr_FR"; return b }(), 47003, "lang"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := e.token
			switch tt.tok {
			case "-":
				tok = ""
			case "":
			default:
				tok = tt.tok
			}
			_, code, msg := e.sendWith(tok, tt.b)
			if code != tt.code || !strings.Contains(msg, tt.msgPart) {
				t.Errorf("got %d %q, want %d containing %q", code, msg, tt.code, tt.msgPart)
			}
		})
	}
	// Malformed JSON.
	resp, err := http.Post(e.srv.URL+"/cgi-bin/message/subscribe/send?access_token="+e.token, "application/json", strings.NewReader("{nope"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct{ ErrCode int }
	json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r.ErrCode != 47001 {
		t.Errorf("malformed JSON: errcode %d, want 47001", r.ErrCode)
	}
	msgs := e.sim.Messages()
	if len(msgs) != 4 {
		t.Fatalf("%d messages delivered, want 4", len(msgs))
	}
	if m := msgs[1]; m.Page != "pages/item/detail?id=1" || m.Data["amount8"] != "¥12.50" || m.MsgID <= msgs[0].MsgID {
		t.Errorf("delivered message = %+v", m)
	}
}

func TestCredits(t *testing.T) {
	e := setup(t, nil)
	b := body("o1", "T-ALL", validData)
	if _, code, _ := e.send(b); code != 43101 {
		t.Fatalf("send without credit: errcode %d, want 43101", code)
	}
	e.sim.AddCredits("o1", "T-ALL", 2)
	e.sim.AddCredits("o2", "T-ALL", 5) // someone else's credits do not count
	for i := range 2 {
		if _, code, msg := e.send(b); code != 0 {
			t.Fatalf("send %d with credit: %d %s", i, code, msg)
		}
	}
	if _, code, _ := e.send(b); code != 43101 {
		t.Fatalf("send after credits ran out: errcode %d, want 43101", code)
	}
	if c := e.sim.Credits("o1", "T-ALL"); c != 0 {
		t.Errorf("credits left = %d, want 0", c)
	}
	// A refused send does not consume a credit.
	e.sim.AddCredits("o1", "T-ALL", 1)
	if _, code, _ := e.send(body("o1", "T-ALL", with("amount8", "bad"))); code != 47003 {
		t.Fatalf("invalid send: errcode %d", code)
	}
	if c := e.sim.Credits("o1", "T-ALL"); c != 1 {
		t.Errorf("credits after a refused send = %d, want 1", c)
	}
	// Long-term templates need no credit.
	if _, code, msg := e.send(body("o1", "T-LONG", map[string]string{"thing1": "x", "time2": "15:01"})); code != 0 {
		t.Errorf("long-term send: %d %s", code, msg)
	}
	// Admin endpoint: one entry and a list.
	if st, r := e.call("POST", "/admin/credits", map[string]any{"openid": "o3", "template_id": "T-ALL", "count": 3}); st != 200 || r["credits"] == nil {
		t.Fatalf("admin credits: %d %v", st, r)
	}
	if st, _ := e.call("POST", "/admin/credits", []map[string]any{{"openid": "o3", "template_id": "T-ALL", "count": 2}, {"openid": "o4", "template_id": "T-ALL"}}); st != 200 {
		t.Fatalf("admin credits list: %d", st)
	}
	if c3, c4 := e.sim.Credits("o3", "T-ALL"), e.sim.Credits("o4", "T-ALL"); c3 != 5 || c4 != 1 {
		t.Errorf("credits after admin = %d, %d; want 5, 1", c3, c4)
	}
	if st, _ := e.call("POST", "/admin/credits", map[string]any{"openid": "", "template_id": "T-ALL"}); st != 400 {
		t.Errorf("admin credits without openid: status %d, want 400", st)
	}
	st := e.sim.Stats()
	if st.Errors[43101] != 2 || st.Sends != 3 {
		t.Errorf("stats = %+v", st)
	}
}

func TestOverlap(t *testing.T) {
	e := setup(t, func(c *Config) { c.Faults.Latency = 300 * time.Millisecond })
	e.sim.AddCredits("o1", "T-ALL", 10)
	e.sim.AddCredits("o2", "T-ALL", 10)
	var wg sync.WaitGroup
	codes := make([]int, 3)
	for i, to := range []string{"o1", "o1", "o2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 {
				time.Sleep(100 * time.Millisecond) // start while the first is in flight
			}
			_, codes[i], _ = e.send(body(to, "T-ALL", validData))
		}()
	}
	wg.Wait()
	// Under load the second o1 send may reach the simulator first: exactly
	// one of the two must be refused.
	if codes[0]+codes[1] != 43108 || codes[0]*codes[1] != 0 || codes[2] != 0 {
		t.Fatalf("errcodes = %v, want one of the o1 sends 43108, the other and o2 0", codes)
	}
	if c := e.sim.Credits("o1", "T-ALL"); c != 9 {
		t.Errorf("o1 credits = %d, want 9 (43108 consumes none)", c)
	}
	if st := e.sim.Stats(); st.Overlaps != 1 {
		t.Errorf("overlaps = %d, want 1", st.Overlaps)
	}
	// After the first finished, the same openid may be sent to again.
	if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
		t.Errorf("sequential send after overlap: errcode %d", code)
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults Faults
		status int
		code   int
	}{
		{"system busy", Faults{SystemBusy: 1}, 200, -1},
		{"http 500", Faults{HTTP500: 1}, 500, 0},
		{"http 503", Faults{HTTP503: 1}, 503, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, nil)
			e.sim.AddCredits("o1", "T-ALL", 1)
			e.sim.SetFaults(tt.faults)
			status, code, _ := e.send(body("o1", "T-ALL", validData))
			if status != tt.status || code != tt.code {
				t.Fatalf("got status %d errcode %d, want %d %d", status, code, tt.status, tt.code)
			}
			if n := len(e.sim.Messages()); n != 0 {
				t.Errorf("%d messages delivered, want 0", n)
			}
			if c := e.sim.Credits("o1", "T-ALL"); c != 1 {
				t.Errorf("credit consumed by a fault: %d left", c)
			}
			e.sim.SetFaults(Faults{})
			if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
				t.Errorf("after clearing faults: errcode %d", code)
			}
		})
	}
	t.Run("rates", func(t *testing.T) {
		e := setup(t, func(c *Config) { c.LooseCredits = true })
		e.sim.SetFaults(Faults{SystemBusy: 0.3, Seed: 7})
		busy := 0
		for i := range 200 {
			if _, code, _ := e.send(body(fmt.Sprint("o", i), "T-ALL", validData)); code == -1 {
				busy++
			}
		}
		if busy < 30 || busy > 90 {
			t.Errorf("%d of 200 busy at rate 0.3", busy)
		}
	})
	t.Run("latency", func(t *testing.T) {
		e := setup(t, func(c *Config) { c.LooseCredits = true })
		e.sim.SetFaults(Faults{Latency: 150 * time.Millisecond})
		start := time.Now()
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Fatalf("errcode %d", code)
		}
		if d := time.Since(start); d < 150*time.Millisecond {
			t.Errorf("send took %v, want at least 150ms", d)
		}
	})
	t.Run("withhold after deliver", func(t *testing.T) {
		e := setup(t, nil)
		e.sim.AddCredits("o1", "T-ALL", 1)
		e.sim.SetFaults(Faults{WithholdAfterDeliver: 1, WithholdFor: 10 * time.Second})
		hc := &http.Client{Timeout: 200 * time.Millisecond}
		b, _ := json.Marshal(body("o1", "T-ALL", validData))
		start := time.Now()
		_, err := hc.Post(e.srv.URL+"/cgi-bin/message/subscribe/send?access_token="+e.token, "application/json", bytes.NewReader(b))
		if err == nil {
			t.Fatal("reply was not withheld")
		}
		if time.Since(start) > 5*time.Second {
			t.Error("client did not time out")
		}
		if n := len(e.sim.Messages()); n != 1 {
			t.Errorf("%d messages delivered, want 1 (delivered, then withheld)", n)
		}
		if c := e.sim.Credits("o1", "T-ALL"); c != 0 {
			t.Errorf("credit not consumed: %d left", c)
		}
		if st := e.sim.Stats(); st.Withheld != 1 {
			t.Errorf("withheld = %d", st.Withheld)
		}
	})
	t.Run("quota after", func(t *testing.T) {
		e := setup(t, func(c *Config) { c.LooseCredits = true; c.Faults.QuotaAfter = 3 })
		var codes []int
		for range 5 {
			_, code, _ := e.send(body("o1", "T-ALL", validData))
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[0 0 0 45009 45009]" {
			t.Fatalf("errcodes = %v", codes)
		}
		_, q := e.call("POST", "/cgi-bin/openapi/quota/get?access_token="+e.token, map[string]string{"cgi_path": "/cgi-bin/message/subscribe/send"})
		if quota, _ := q["quota"].(map[string]any); quota["remain"] != 0.0 || quota["used"] != 3.0 {
			t.Errorf("quota/get = %v", q)
		}
		if st, _ := e.call("POST", "/admin/quota/reset", nil); st != 200 {
			t.Fatal(st)
		}
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Errorf("after quota reset: errcode %d", code)
		}
	})
	t.Run("expire token every", func(t *testing.T) {
		e := setup(t, func(c *Config) { c.LooseCredits = true; c.Faults.ExpireTokenEvery = 2 })
		var codes []int
		for range 3 {
			_, code, _ := e.send(body("o1", "T-ALL", validData))
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[0 0 42001]" {
			t.Fatalf("errcodes = %v", codes)
		}
		tok := e.stableToken(false)
		if tok == e.token {
			t.Fatal("stable_token returned the expired token")
		}
		if _, code, _ := e.sendWith(tok, body("o1", "T-ALL", validData)); code != 0 {
			t.Errorf("with the new token: errcode %d", code)
		}
	})
	t.Run("admin", func(t *testing.T) {
		e := setup(t, func(c *Config) { c.LooseCredits = true })
		st, r := e.call("POST", "/admin/faults", map[string]any{"system_busy": 1, "latency": "10ms"})
		if st != 200 || r["latency"] != "10ms" {
			t.Fatalf("set faults: %d %v", st, r)
		}
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != -1 {
			t.Errorf("errcode %d, want -1", code)
		}
		if st, _ := e.call("POST", "/admin/faults", map[string]any{"system_busy": 2}); st != 400 {
			t.Errorf("rate 2 accepted: %d", st)
		}
		if st, _ := e.call("POST", "/admin/reset", nil); st != 200 {
			t.Fatal(st)
		}
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Errorf("after reset: errcode %d", code)
		}
		_, stats := e.call("GET", "/admin/stats", nil)
		if stats["sends"] != 1.0 {
			t.Errorf("stats = %v", stats)
		}
		_, msgs := e.call("GET", "/admin/messages?touser=o1", nil)
		if l, _ := msgs["messages"].([]any); len(l) != 1 {
			t.Errorf("messages = %v", msgs)
		}
		_, msgs = e.call("GET", "/admin/messages?touser=o2", nil)
		if l, _ := msgs["messages"].([]any); len(l) != 0 {
			t.Errorf("messages to o2 = %v", msgs)
		}
	})
}

func TestTokens(t *testing.T) {
	e := setup(t, func(c *Config) { c.LooseCredits = true })
	ok := func(tok string) int {
		_, code, _ := e.sendWith(tok, body("o1", "T-LONG", map[string]string{"thing1": "x", "time2": "15:01"}))
		return code
	}
	if again := e.stableToken(false); again != e.token {
		t.Error("stable_token changed the token in normal mode")
	}
	if len(e.token) < 100 {
		t.Errorf("token of %d characters", len(e.token))
	}
	// Near expiry (within 5 minutes) a new token comes; the old one works until it expires.
	e.clock.Add(7200*time.Second - 4*time.Minute)
	next := e.stableToken(false)
	if next == e.token {
		t.Fatal("no new token near expiry")
	}
	if code := ok(e.token); code != 0 {
		t.Errorf("old token before its expiry: %d", code)
	}
	e.clock.Add(5 * time.Minute)
	if code := ok(e.token); code != 42001 {
		t.Errorf("old token after expiry: %d, want 42001", code)
	}
	if code := ok(next); code != 0 {
		t.Errorf("new token: %d", code)
	}
	// force_refresh invalidates the previous stable token.
	forced := e.stableToken(true)
	if code := ok(next); code != 40001 {
		t.Errorf("token after force_refresh: %d, want 40001", code)
	}
	// ExpireTokens invalidates everything.
	e.sim.ExpireTokens()
	if code := ok(forced); code != 40001 {
		t.Errorf("after ExpireTokens: %d, want 40001", code)
	}
	// /cgi-bin/token: the previous one works 5 more minutes.
	get := func() string {
		_, r := e.call("GET", "/cgi-bin/token?grant_type=client_credential&appid="+testAppID+"&secret="+testSecret, nil)
		tok, _ := r["access_token"].(string)
		return tok
	}
	t1 := get()
	t2 := get()
	if t1 == "" || t1 == t2 {
		t.Fatal("token did not issue a new token")
	}
	e.clock.Add(4 * time.Minute)
	if code := ok(t1); code != 0 {
		t.Errorf("previous token within 5 minutes: %d", code)
	}
	e.clock.Add(2 * time.Minute)
	if code := ok(t1); code != 42001 {
		t.Errorf("previous token after 5 minutes: %d, want 42001", code)
	}
	if code := ok(t2); code != 0 {
		t.Errorf("latest token: %d", code)
	}
	// Credentials.
	for _, tt := range []struct {
		appid, secret, grant string
		code                 float64
	}{
		{"other", testSecret, "client_credential", 40013},
		{testAppID, "wrong", "client_credential", 40125},
		{testAppID, testSecret, "password", 40002},
	} {
		_, r := e.call("POST", "/cgi-bin/stable_token", map[string]any{"grant_type": tt.grant, "appid": tt.appid, "secret": tt.secret})
		if r["errcode"] != tt.code {
			t.Errorf("stable_token(%s, %s, %s) = %v, want %v", tt.appid, tt.secret, tt.grant, r, tt.code)
		}
	}
}

func TestSessionAndTemplates(t *testing.T) {
	e := setup(t, nil)
	q := "/sns/jscode2session?appid=" + testAppID + "&secret=" + testSecret + "&grant_type=authorization_code&js_code="
	_, r := e.call("GET", q+"code-oABC", nil)
	if r["openid"] != "oABC" || r["session_key"] == "" || r["unionid"] != "union-oABC" {
		t.Errorf("session = %v", r)
	}
	if _, r = e.call("GET", q+"code-oABC", nil); r["errcode"] != 40163.0 {
		t.Errorf("reused code = %v, want 40163", r)
	}
	if _, r = e.call("GET", q+"garbage", nil); r["errcode"] != 40029.0 {
		t.Errorf("bad code = %v, want 40029", r)
	}
	_, r = e.call("GET", "/wxaapi/newtmpl/gettemplate?access_token="+e.token, nil)
	data, _ := r["data"].([]any)
	if len(data) != 2 {
		t.Fatalf("templates = %v", r)
	}
	first := data[0].(map[string]any)
	if first["priTmplId"] != "T-ALL" || first["type"] != 2.0 || first["title"] != "every type" ||
		!strings.HasPrefix(first["content"].(string), "商品名称:{{thing1.DATA}}\nnumber2:{{number2.DATA}}\n") ||
		!strings.Contains(first["content"].(string), "\n物流状态:{{enum13.DATA}}\n状态:{{short_thing14.DATA}}\n") {
		t.Errorf("template = %v", first)
	}
	if first["example"] != "商品名称:限量球鞋\n状态:配送中\n" {
		t.Errorf("example = %q", first["example"])
	}
	enums, _ := first["keywordEnumValueList"].([]any)
	if len(enums) != 1 || enums[0].(map[string]any)["keywordCode"] != "{{enum13.DATA}}" {
		t.Errorf("keywordEnumValueList = %v", first["keywordEnumValueList"])
	}
	if data[1].(map[string]any)["type"] != 3.0 {
		t.Errorf("long-term template type = %v", data[1])
	}
	if _, r = e.call("GET", "/wxaapi/newtmpl/gettemplate?access_token=bad", nil); r["errcode"] != 40001.0 {
		t.Errorf("templates with bad token = %v", r)
	}
}

func TestLoadTemplates(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, content string
		want                int
		wantErr             string
	}{
		{"yaml wrapped", "a.yaml", "templates:\n  - id: T1\n    kind: one_time\n    keys: [thing1, amount2]\n  - id: T2\n    kind: long_term\n    keys: [enum1]\n    enums: {enum1: [a, b]}\n", 2, ""},
		{"yaml list", "b.yml", "- id: T1\n  keys: [thing1]\n", 1, ""},
		{"json wrapped", "c.json", `{"templates":[{"id":"T1","kind":"one_time","keys":["thing1"]}]}`, 1, ""},
		{"json list", "d.json", `[{"id":"T1","keys":["thing1"]},{"id":"T2","keys":["date1"]}]`, 2, ""},
		{"unknown field", "e.yaml", "- id: T1\n  keys: [thing1]\n  colour: red\n", 0, "colour"},
		{"bad key", "f.yaml", "- id: T1\n  keys: [colour1]\n", 0, "unknown type"},
		{"bad kind", "g.yaml", "- id: T1\n  kind: forever\n  keys: [thing1]\n", 0, "kind"},
		{"enum for missing key", "h.yaml", "- id: T1\n  keys: [thing1]\n  enums: {enum2: [a]}\n", 0, "enum2"},
		{"labels", "k.yaml", "- id: T1\n  keys: [thing1, short_thing2]\n  labels: {thing1: 商品名称, short_thing2: 状态}\n  examples: {thing1: 球鞋}\n", 1, ""},
		{"example breaks its rule", "n.yaml", "- id: T1\n  keys: [amount1]\n  examples: {amount1: twelve}\n", 0, "example of amount1"},
		{"label for missing key", "l.yaml", "- id: T1\n  keys: [thing1]\n  labels: {thing2: 名称}\n", 0, "label for thing2"},
		{"label with braces", "m.yaml", "- id: T1\n  keys: [thing1]\n  labels: {thing1: \"a{{b\"}\n", 0, "newline or {{ }}"},
		{"empty", "i.yaml", "", 0, "empty"},
		{"scalar", "j.yaml", "hello\n", 0, "want a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defs, err := LoadTemplates(write(tt.file, tt.content))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(defs) != tt.want {
				t.Fatalf("%d templates, want %d", len(defs), tt.want)
			}
		})
	}
	if _, err := LoadTemplates(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no credentials", Config{Templates: []TemplateDef{longTerm}}},
		{"duplicate template", Config{AppID: "a", Secret: "s", Templates: []TemplateDef{longTerm, longTerm}}},
		{"duplicate key", Config{AppID: "a", Secret: "s", Templates: []TemplateDef{{ID: "x", Keys: []string{"thing1", "thing1"}}}}},
		{"bad rate", Config{AppID: "a", Secret: "s", Faults: Faults{HTTP500: -0.5}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}

func TestMessageLimit(t *testing.T) {
	e := setup(t, func(c *Config) { c.LooseCredits = true; c.MessageLimit = 64 })
	for i := range 10 {
		if _, code, _ := e.send(body("same-user", "T-ALL", validData)); code != 0 {
			t.Fatalf("send %d: %d", i, code)
		}
	}
	msgs := e.sim.Messages()
	if st := e.sim.Stats(); len(msgs)+int(st.Dropped) != 10 || st.Dropped == 0 {
		t.Errorf("%d kept, %d dropped", len(msgs), st.Dropped)
	}
	if last := msgs[len(msgs)-1]; last.MsgID != 10 {
		t.Errorf("newest message dropped: last msgid %d", last.MsgID)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := contextWithCancel(t)
	ln, err := listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, Config{AppID: testAppID, Secret: testSecret, Templates: []TemplateDef{longTerm}}, nil)
	}()
	var stats Stats
	var got atomic.Bool
	for range 50 {
		resp, err := http.Get("http://" + ln.Addr().String() + "/admin/stats")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&stats)
			resp.Body.Close()
			got.Store(true)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !got.Load() {
		t.Fatal("server did not answer")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not stop on cancel")
	}
}
