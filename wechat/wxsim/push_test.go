package wxsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat"
)

const testPushToken = "push-token-123"

// receiver is a message-push endpoint that checks every push the way the
// engine will: signature, then ParsePush.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	events []wechat.PushEvent
	raws   []map[string]any
	stamps []string // timestamp query parameters
	bad    []string // pushes that failed a check
	hits   atomic.Int64
	// fail answers the n-th request (from 1) with this status when non-zero.
	fail func(n int64) int
	gate chan struct{} // when set, each request waits for a value or close
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{t: t}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	n := rc.hits.Add(1)
	if rc.gate != nil {
		select {
		case <-rc.gate:
		case <-r.Context().Done():
			return
		}
	}
	if rc.fail != nil {
		if st := rc.fail(n); st != 0 {
			http.Error(w, "fail", st)
			return
		}
	}
	q := r.URL.Query()
	body, _ := io.ReadAll(io.LimitReader(r.Body, wechat.MaxPushBody))
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		rc.bad = append(rc.bad, r.Method+" "+r.Header.Get("Content-Type"))
	}
	if !wechat.VerifyPushSignature(testPushToken, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) || q.Get("nonce") == "" {
		rc.bad = append(rc.bad, "signature: "+r.URL.RawQuery)
		http.Error(w, "bad signature", http.StatusForbidden)
		return
	}
	ev, err := wechat.ParsePush(body)
	if err != nil {
		rc.bad = append(rc.bad, err.Error())
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var raw map[string]any
	json.Unmarshal(body, &raw) //nolint:errcheck // ParsePush accepted it
	rc.events = append(rc.events, ev)
	rc.raws = append(rc.raws, raw)
	rc.stamps = append(rc.stamps, q.Get("timestamp"))
	io.WriteString(w, "success") //nolint:errcheck
}

func (rc *receiver) got() ([]wechat.PushEvent, []map[string]any, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.bad) > 0 {
		rc.t.Errorf("bad pushes: %q", rc.bad)
	}
	return append([]wechat.PushEvent(nil), rc.events...), append([]map[string]any(nil), rc.raws...), append([]string(nil), rc.stamps...)
}

func pushSetup(t *testing.T, rc *receiver, mod func(*Config)) *env {
	return setup(t, func(c *Config) {
		c.PushURL = rc.srv.URL + "/wx/push?app=1"
		c.PushToken = testPushToken
		c.PushBackoff = time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
}

func flush(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.FlushPushes(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestPushOnDelivery(t *testing.T) {
	rc := newReceiver(t)
	e := pushSetup(t, rc, nil)
	e.sim.AddCredits("o1", "T-ALL", 2)
	e.sim.AddCredits("o2", "T-ALL", 1)
	long := map[string]string{"thing1": "活动开始", "time2": "2024年5月1日 10:00"}
	sends := []struct {
		to, tmpl string
		data     map[string]string
		code     int
	}{
		{"o1", "T-ALL", validData, 0},
		{"o1", "T-ALL", validData, 0},
		{"o1", "T-ALL", validData, 43101},                  // no credit left: no push
		{"o2", "T-ALL", with("date7", "yesterday"), 47003}, // refused: no push
		{"o2", "T-ALL", validData, 0},
		{"o3", "T-LONG", long, 0},
		{"o3", "T-NONE", long, 40037},
	}
	for i, s := range sends {
		if _, code, msg := e.send(body(s.to, s.tmpl, s.data)); code != s.code {
			t.Fatalf("send %d: errcode %d %s, want %d", i, code, msg, s.code)
		}
	}
	// A delivery whose reply is withheld (the client times out) is pushed too.
	e.sim.SetFaults(Faults{WithholdAfterDeliver: 1, WithholdFor: 10 * time.Second})
	b, _ := json.Marshal(body("o3", "T-LONG", long))
	hc := &http.Client{Timeout: 200 * time.Millisecond}
	if _, err := hc.Post(e.srv.URL+"/cgi-bin/message/subscribe/send?access_token="+e.token, "application/json", bytes.NewReader(b)); err == nil {
		t.Fatal("reply was not withheld")
	}
	flush(t, e.sim)

	msgs := e.sim.Messages()
	if len(msgs) != 5 {
		t.Fatalf("%d delivered, want 5", len(msgs))
	}
	evs, raws, stamps := rc.got()
	if len(evs) != len(msgs) {
		t.Fatalf("%d pushes for %d delivered messages", len(evs), len(msgs))
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].Items[0].MsgID < evs[j].Items[0].MsgID })
	now := e.clock.Now()
	for i, m := range msgs {
		ev := evs[i]
		want := wechat.PushEvent{ToUserName: "gh_wxsim", OpenID: m.ToUser, MsgType: "event", Event: wechat.EventSubscribeSent,
			CreateTime: m.At.UTC().Truncate(time.Second), Items: []wechat.PushItem{{TemplateID: m.TemplateID, MsgID: m.MsgID, ErrorStatus: "success"}}}
		if !equalEvent(ev, want) {
			t.Errorf("push %d = %+v, want %+v", i, ev, want)
		}
	}
	for i, raw := range raws { // the wire shape: List an object, MsgID and ErrorCode strings, CreateTime a number
		list, ok := raw["List"].(map[string]any)
		if !ok {
			t.Fatalf("push %d: List is %T, want an object", i, raw["List"])
		}
		if _, ok := list["MsgID"].(string); !ok {
			t.Errorf("push %d: MsgID is %T", i, list["MsgID"])
		}
		if list["ErrorCode"] != "0" {
			t.Errorf("push %d: ErrorCode %#v", i, list["ErrorCode"])
		}
		if _, ok := raw["CreateTime"].(float64); !ok {
			t.Errorf("push %d: CreateTime is %T", i, raw["CreateTime"])
		}
		if stamps[i] != strconv.FormatInt(now.Unix(), 10) {
			t.Errorf("push %d: timestamp %s, want the simulator clock %d", i, stamps[i], now.Unix())
		}
	}
	if st := e.sim.Stats(); st.Pushed != 5 || st.PushFailed != 0 || st.PushDropped != 0 || st.PushRetries != 0 || st.Withheld != 1 {
		t.Errorf("stats = %+v", st)
	}
	_, stats := e.call("GET", "/admin/stats", nil)
	if stats["pushed"] != 5.0 || stats["push_dropped"] != 0.0 {
		t.Errorf("/admin/stats = %v", stats)
	}
}

func equalEvent(a, b wechat.PushEvent) bool {
	if !a.CreateTime.Equal(b.CreateTime) || len(a.Items) != len(b.Items) {
		return false
	}
	a.CreateTime, b.CreateTime = time.Time{}, time.Time{}
	ai, bi := a.Items, b.Items
	a.Items, b.Items = nil, nil
	if a.ToUserName != b.ToUserName || a.OpenID != b.OpenID || a.MsgType != b.MsgType || a.Event != b.Event {
		return false
	}
	for i := range ai {
		if ai[i] != bi[i] {
			return false
		}
	}
	return true
}

func TestPushRetry(t *testing.T) {
	t.Run("recovers", func(t *testing.T) {
		rc := newReceiver(t)
		rc.fail = func(n int64) int {
			if n <= 2 {
				return []int{500, 503}[n-1]
			}
			return 0
		}
		e := pushSetup(t, rc, func(c *Config) { c.LooseCredits = true })
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Fatal(code)
		}
		flush(t, e.sim)
		evs, _, _ := rc.got()
		if st := e.sim.Stats(); len(evs) != 1 || st.Pushed != 1 || st.PushRetries != 2 || st.PushFailed != 0 || rc.hits.Load() != 3 {
			t.Errorf("%d events, %d requests, stats %+v", len(evs), rc.hits.Load(), st)
		}
	})
	t.Run("gives up", func(t *testing.T) {
		rc := newReceiver(t)
		rc.fail = func(int64) int { return http.StatusBadGateway }
		e := pushSetup(t, rc, func(c *Config) { c.LooseCredits = true; c.PushRetries = 3 })
		for range 2 {
			if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
				t.Fatal(code)
			}
		}
		flush(t, e.sim)
		if st := e.sim.Stats(); st.Pushed != 0 || st.PushFailed != 2 || st.PushRetries != 6 || rc.hits.Load() != 8 {
			t.Errorf("%d requests, stats %+v; want 2 failed after 1+3 attempts each", rc.hits.Load(), st)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		e := setup(t, func(c *Config) {
			c.LooseCredits, c.PushURL, c.PushToken, c.PushRetries, c.PushBackoff = true, url, testPushToken, 1, time.Millisecond
		})
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Fatal(code)
		}
		flush(t, e.sim)
		if st := e.sim.Stats(); st.PushFailed != 1 || st.PushRetries != 1 {
			t.Errorf("stats %+v", st)
		}
	})
}

func TestPushDropRate(t *testing.T) {
	tests := []struct {
		rate           float64
		wantAllDropped bool
		wantNone       bool
	}{
		{rate: 1, wantAllDropped: true},
		{rate: 0.5},
		{rate: 0, wantNone: true},
	}
	for _, tt := range tests {
		t.Run(strconv.FormatFloat(tt.rate, 'g', -1, 64), func(t *testing.T) {
			rc := newReceiver(t)
			e := pushSetup(t, rc, func(c *Config) { c.LooseCredits = true; c.Faults = Faults{PushDropRate: tt.rate, Seed: 7} })
			const n = 40
			for range n {
				if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
					t.Fatal(code)
				}
			}
			flush(t, e.sim)
			evs, _, _ := rc.got()
			st := e.sim.Stats()
			if st.Pushed+st.PushDropped != n || int64(len(evs)) != st.Pushed {
				t.Fatalf("%d events, stats %+v", len(evs), st)
			}
			switch {
			case tt.wantAllDropped && st.PushDropped != n,
				tt.wantNone && st.PushDropped != 0,
				!tt.wantAllDropped && !tt.wantNone && (st.Pushed == 0 || st.PushDropped == 0):
				t.Errorf("rate %v: %d pushed, %d dropped", tt.rate, st.Pushed, st.PushDropped)
			}
		})
	}
	t.Run("admin", func(t *testing.T) {
		rc := newReceiver(t)
		e := pushSetup(t, rc, func(c *Config) { c.LooseCredits = true })
		if st, r := e.call("POST", "/admin/faults", map[string]any{"push_drop_rate": 1}); st != 200 || r["push_drop_rate"] != 1.0 {
			t.Fatalf("set faults: %d %v", st, r)
		}
		e.send(body("o1", "T-ALL", validData))
		flush(t, e.sim)
		if st := e.sim.Stats(); st.Sends != 1 || st.PushDropped != 1 || rc.hits.Load() != 0 {
			t.Errorf("stats %+v, %d requests", st, rc.hits.Load())
		}
		if st, _ := e.call("POST", "/admin/faults", map[string]any{"push_drop_rate": 1.5}); st != 400 {
			t.Errorf("rate 1.5 accepted: %d", st)
		}
	})
}

func TestPushQueueFullAndClose(t *testing.T) {
	rc := newReceiver(t)
	rc.gate = make(chan struct{})
	e := pushSetup(t, rc, func(c *Config) { c.LooseCredits = true; c.PushWorkers = 1; c.PushQueue = 1 })
	for range 5 {
		if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
			t.Fatal(code)
		}
	}
	// One push in flight (held at the gate) or queued, one queued, the rest dropped.
	if st := e.sim.Stats(); st.PushDropped < 3 || st.PushDropped > 4 {
		t.Fatalf("dropped %d, want 3 or 4 with a queue of 1 and one worker", st.PushDropped)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := e.sim.FlushPushes(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FlushPushes with a stuck receiver = %v, want DeadlineExceeded", err)
	}
	done := make(chan struct{})
	go func() { e.sim.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a stuck receiver")
	}
	e.sim.Close() // a second Close is harmless
	flush(t, e.sim)
	// After Close the API still answers; its pushes are dropped.
	if _, code, _ := e.send(body("o1", "T-ALL", validData)); code != 0 {
		t.Fatal(code)
	}
	close(rc.gate)
	flush(t, e.sim)
	if st := e.sim.Stats(); st.Sends != 6 || st.Pushed != 0 || st.PushDropped != 6 {
		t.Errorf("stats %+v, want every push dropped", st)
	}
}

func TestPushConfig(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
	}{
		{"no token", func(c *Config) { c.PushURL = "http://127.0.0.1:1/push" }},
		{"not http", func(c *Config) { c.PushURL = "ftp://host/push"; c.PushToken = "t" }},
		{"no host", func(c *Config) { c.PushURL = "http:///push"; c.PushToken = "t" }},
		{"unparsable", func(c *Config) { c.PushURL = "http://[::1"; c.PushToken = "t" }},
		{"bad drop rate", func(c *Config) { c.Faults.PushDropRate = -0.1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AppID: testAppID, Secret: testSecret}
			tt.mod(&cfg)
			if s, err := New(cfg); err == nil {
				s.Close()
				t.Fatal("New accepted it")
			}
		})
	}
	// Without PushURL nothing is pushed, FlushPushes and Close return at once.
	s, err := New(Config{AppID: testAppID, Secret: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FlushPushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
}

func TestFaultsJSONPushDropRate(t *testing.T) {
	in := Faults{PushDropRate: 0.25, SystemBusy: 0.1, Seed: 3}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Faults
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out != in || !bytes.Contains(b, []byte(`"push_drop_rate":0.25`)) {
		t.Fatalf("round trip %s: %+v", b, out)
	}
}
