package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

const pushToken = "push-token-XYZ"

// fakeDeliveries is an in-memory Deliveries, idempotent by msgid.
type fakeDeliveries struct {
	mu   sync.Mutex
	got  map[int64]store.Delivery
	at   []time.Time
	err  error // returned by every call when set
	errs map[int64]error
}

func (f *fakeDeliveries) RecordDeliveries(ctx context.Context, at time.Time, ds []store.Delivery) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	for _, d := range ds {
		if err := f.errs[d.MsgID]; err != nil {
			return 0, err
		}
	}
	if f.got == nil {
		f.got = make(map[int64]store.Delivery)
	}
	n := 0
	for _, d := range ds {
		if _, ok := f.got[d.MsgID]; !ok {
			f.got[d.MsgID] = d
			n++
		}
	}
	f.at = append(f.at, at)
	return n, nil
}

func (f *fakeDeliveries) all() map[int64]store.Delivery {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[int64]store.Delivery, len(f.got))
	for k, v := range f.got {
		out[k] = v
	}
	return out
}

type pushEnv struct {
	*env
	del    *fakeDeliveries
	server *api.Server
	reg    *prometheus.Registry
}

// setupPush serves the API with the message push enabled.
func setupPush(t testing.TB, opts ...option) *pushEnv {
	t.Helper()
	logger, hook := logtest.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	p := &pushEnv{del: &fakeDeliveries{}, reg: prometheus.NewRegistry()}
	subs := &fakeSubs{}
	cfg := api.Config{Tokens: []string{token}, Now: func() time.Time { return fixedNow }, PushToken: pushToken}
	deps := api.Deps{Subs: subs, Catalog: catalog, Logger: logger, Deliveries: p.del, Registerer: p.reg}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	s, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	p.server = s
	p.env = &env{srv: srv, subs: subs, logs: hook}
	return p
}

// signedQuery returns a push query signed with token at time at.
func signedQuery(token string, at time.Time, nonce string) url.Values {
	ts := strconv.FormatInt(at.Unix(), 10)
	return url.Values{"signature": {wechat.SignPush(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
}

type textReply struct {
	status int
	ctype  string
	body   string
}

func (e *env) raw(t testing.TB, method, target, body string) textReply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+target, rd)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return textReply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), body: string(b)}
}

// pushURL is PushPath with q.
func pushURL(q url.Values) string { return api.PushPath + "?" + q.Encode() }

func TestPushVerify(t *testing.T) {
	e := setupPush(t)
	good := func() url.Values {
		q := signedQuery(pushToken, fixedNow, "n1")
		q.Set("echostr", "8187411539287382371")
		return q
	}
	tests := []struct {
		name   string
		q      func() url.Values
		status int
		body   string // exact text body, or a substring of the JSON error
	}{
		{"good", good, 200, "8187411539287382371"},
		{"upper-case hex signature", func() url.Values { q := good(); q.Set("signature", strings.ToUpper(q.Get("signature"))); return q }, 200, "8187411539287382371"},
		{"wrong token", func() url.Values {
			q := signedQuery("other-token", fixedNow, "n1")
			q.Set("echostr", "1")
			return q
		}, 401, "invalid push signature"},
		{"tampered nonce", func() url.Values { q := good(); q.Set("nonce", "n2"); return q }, 401, "invalid push signature"},
		{"no query", func() url.Values { return url.Values{} }, 401, "invalid push signature"},
		{"stale by 6 minutes", func() url.Values {
			q := signedQuery(pushToken, fixedNow.Add(-6*time.Minute), "n1")
			q.Set("echostr", "1")
			return q
		}, 401, "off the server clock"},
		{"6 minutes in the future", func() url.Values {
			q := signedQuery(pushToken, fixedNow.Add(6*time.Minute), "n1")
			q.Set("echostr", "1")
			return q
		}, 401, "off the server clock"},
		{"4 minutes old is fine", func() url.Values {
			q := signedQuery(pushToken, fixedNow.Add(-4*time.Minute), "n1")
			q.Set("echostr", "abc")
			return q
		}, 200, "abc"},
		{"signed non-numeric timestamp", func() url.Values {
			return url.Values{"signature": {wechat.SignPush(pushToken, "yesterday", "n")}, "timestamp": {"yesterday"}, "nonce": {"n"}, "echostr": {"1"}}
		}, 401, "not a unix time"},
		{"no echostr", func() url.Values { q := good(); q.Del("echostr"); return q }, 400, "echostr is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.raw(t, "GET", pushURL(tt.q()), "")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if r.body != tt.body || !strings.HasPrefix(r.ctype, "text/plain") {
					t.Fatalf("body %q (%s), want %q as text/plain", r.body, r.ctype, tt.body)
				}
				return
			}
			if !strings.HasPrefix(r.ctype, "application/json") || !strings.Contains(r.body, tt.body) || !strings.Contains(r.body, `"error":{"code":`) {
				t.Fatalf("body %q (%s), want a JSON error containing %q", r.body, r.ctype, tt.body)
			}
		})
	}
	st := e.server.PushStats()
	if st.Verified != 3 || st.Unauthorized != 6 || st.Invalid != 1 {
		t.Errorf("stats %+v, want 3 verified, 6 unauthorized, 1 invalid", st)
	}
}

func TestPushDisabled(t *testing.T) {
	e := setup(t)
	for _, m := range []string{"GET", "POST"} {
		q := signedQuery("", fixedNow, "n")
		q.Set("echostr", "1")
		if r := e.raw(t, m, pushURL(q), `{}`); r.status != 404 {
			t.Errorf("%s without PushToken: %d %s, want 404", m, r.status, r.body)
		}
	}
	if _, err := api.New(api.Config{Tokens: []string{token}, PushToken: "x"}, api.Deps{Subs: &fakeSubs{}, Catalog: catalog}); err == nil || !strings.Contains(err.Error(), "Deliveries") {
		t.Errorf("New with PushToken and no Deliveries: %v, want an error naming Deliveries", err)
	}
}

const (
	sentOne = `{"ToUserName":"gh_1","FromUserName":"o-alice","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_sent_event",
 "List":{"TemplateId":"T-price","MsgID":"1700000001","ErrorCode":"0","ErrorStatus":"success"}}`
	sentMany = `{"ToUserName":"gh_1","FromUserName":"o-bob","CreateTime":"1740830401","MsgType":"event","Event":"subscribe_msg_sent_event",
 "List":[{"TemplateId":"T-price","MsgID":1700000002,"ErrorCode":0,"ErrorStatus":"success"},
         {"TemplateId":"T-stock","MsgID":"1700000003","ErrorCode":"20001","ErrorStatus":"fail_user_block"}]}`
	sentXML = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-carol]]></FromUserName>
<CreateTime>1740830402</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_sent_event]]></Event>
<SubscribeMsgSentEvent><List><TemplateId><![CDATA[T-act]]></TemplateId><MsgID>1700000004</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List></SubscribeMsgSentEvent></xml>`
	changeReject = `{"ToUserName":"gh_1","FromUserName":"o-dave","CreateTime":1740830403,"MsgType":"event","Event":"subscribe_msg_change_event",
 "List":[{"TemplateId":"T-long","SubscribeStatusString":"reject"},{"TemplateId":"T-price","SubscribeStatusString":"accept"}]}`
	popup = `{"ToUserName":"gh_1","FromUserName":"o-erin","CreateTime":1740830404,"MsgType":"event","Event":"subscribe_msg_popup_event",
 "List":[{"TemplateId":"T-price","SubscribeStatusString":"accept","PopupScene":"0"},{"TemplateId":"T-stock","SubscribeStatusString":"reject","PopupScene":"0"}]}`
)

func ct(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func TestPushSent(t *testing.T) {
	e := setupPush(t)
	tests := []struct {
		name string
		body string
		want []store.Delivery
	}{
		{"JSON, List an object", sentOne, []store.Delivery{
			{MsgID: 1700000001, OpenID: "o-alice", TemplateID: "T-price", ErrCode: 0, Status: "success", SentAt: ct(1740830400)}}},
		{"JSON, List an array", sentMany, []store.Delivery{
			{MsgID: 1700000002, OpenID: "o-bob", TemplateID: "T-price", ErrCode: 0, Status: "success", SentAt: ct(1740830401)},
			{MsgID: 1700000003, OpenID: "o-bob", TemplateID: "T-stock", ErrCode: 20001, Status: "fail_user_block", SentAt: ct(1740830401)}}},
		{"XML", sentXML, []store.Delivery{
			{MsgID: 1700000004, OpenID: "o-carol", TemplateID: "T-act", ErrCode: 0, Status: "success", SentAt: ct(1740830402)}}},
	}
	total := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range 2 { // the second push is a repeat: stored once
				r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, fmt.Sprint("n", i))), tt.body)
				if r.status != 200 || r.body != "success" || !strings.HasPrefix(r.ctype, "text/plain") {
					t.Fatalf("push %d: %d %q (%s), want 200 success as text/plain", i, r.status, r.body, r.ctype)
				}
			}
			got := e.del.all()
			for _, w := range tt.want {
				if g, ok := got[w.MsgID]; !ok || g != w {
					t.Errorf("delivery %d: got %+v, want %+v", w.MsgID, g, w)
				}
			}
		})
		total += len(tt.want)
	}
	if n := len(e.del.all()); n != total {
		t.Errorf("%d deliveries stored, want %d", n, total)
	}
	for _, at := range e.del.at {
		if !at.Equal(fixedNow) {
			t.Errorf("receivedAt %v, want the injected clock", at)
		}
	}
	st := e.server.PushStats()
	if st.Accepted != 6 || st.Delivered != int64(total) || st.DuplicateSent != int64(total) {
		t.Errorf("stats %+v, want 6 accepted, %d delivered, %d duplicates", st, total, total)
	}
	if len(e.subs.seen) != 0 {
		t.Errorf("sent events recorded subscriptions: %v", e.subs.seen)
	}
}

func TestPushChangeAndPopup(t *testing.T) {
	e := setupPush(t)
	for i := range 2 {
		r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, fmt.Sprint("c", i))), changeReject)
		if r.status != 200 || r.body != "success" {
			t.Fatalf("change push %d: %d %q", i, r.status, r.body)
		}
	}
	const id = "push:change:o-dave:T-long:1740830403"
	res, ok := e.subs.get(id)
	if !ok || res.OpenID != "o-dave" || len(res.RejectTemplateIDs) != 1 || res.RejectTemplateIDs[0] != "T-long" || len(res.AgreeTemplateIDs) != 0 {
		t.Fatalf("recorded %v %+v, want a reject of T-long by o-dave under requestId %s", ok, res, id)
	}
	if len(e.subs.seen) != 1 {
		t.Errorf("%d subscription results recorded, want 1 (the accept of a change event is ignored): %v", len(e.subs.seen), e.subs.seen)
	}

	r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "p")), popup)
	if r.status != 200 || r.body != "success" {
		t.Fatalf("popup push: %d %q", r.status, r.body)
	}
	if len(e.subs.seen) != 1 || len(e.del.all()) != 0 {
		t.Errorf("the popup event recorded something: %d results, %d deliveries", len(e.subs.seen), len(e.del.all()))
	}
	st := e.server.PushStats()
	want := api.PushStats{Accepted: 3, Rejects: 1, DuplicateRejects: 1, ChangeIgnored: 2, Popups: 2}
	if st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
	// The counters are on the registry.
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			found[key] = m.GetCounter().GetValue()
		}
	}
	if found["wxcampaign_push_items_total,event=popup,outcome=ignored"] != 2 || found["wxcampaign_push_requests_total,result=accepted"] != 3 ||
		found["wxcampaign_push_items_total,event=change,outcome=recorded"] != 1 {
		t.Errorf("metrics %v", found)
	}
}

func TestPushRequests(t *testing.T) {
	e := setupPush(t)
	signed := func() url.Values { return signedQuery(pushToken, fixedNow, "n") }
	big := `{"FromUserName":"o","CreateTime":1,"MsgType":"event","Event":"x","Pad":"` + strings.Repeat("a", api.DefaultMaxBody) + `"}`
	tests := []struct {
		name   string
		method string
		q      url.Values
		body   string
		status int
		want   string // the text body, or a substring of the JSON error
	}{
		{"unknown event", "POST", signed(), `{"FromUserName":"o","CreateTime":1740830400,"MsgType":"event","Event":"user_enter_tempsession"}`, 200, "success"},
		{"customer message", "POST", signed(), `<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>hi</Content></xml>`, 200, "success"},
		{"bad signature", "POST", signedQuery("nope", fixedNow, "n"), sentOne, 401, "invalid push signature"},
		{"bearer token is not enough", "POST", url.Values{}, sentOne, 401, "invalid push signature"},
		{"replayed: 10 minutes old", "POST", signedQuery(pushToken, fixedNow.Add(-10*time.Minute), "n"), sentOne, 401, "replayed"},
		{"safe mode query", "POST", func() url.Values { q := signed(); q.Set("encrypt_type", "aes"); q.Set("msg_signature", "x"); return q }(), sentOne, 400, "safe mode not supported: use plaintext"},
		{"safe mode JSON body", "POST", signed(), `{"ToUserName":"gh_1","Encrypt":"abcdef=="}`, 400, "safe mode not supported: use plaintext"},
		{"safe mode XML body", "POST", signed(), `<xml><ToUserName>gh_1</ToUserName><Encrypt><![CDATA[abc]]></Encrypt></xml>`, 400, "safe mode not supported: use plaintext"},
		{"empty body", "POST", signed(), ``, 400, "invalid push: empty body"},
		{"not JSON nor XML", "POST", signed(), `hello`, 400, "neither JSON nor XML"},
		{"truncated JSON", "POST", signed(), sentOne[:40], 400, "invalid push"},
		{"two XML roots", "POST", signed(), sentXML + sentXML, 400, "more than one root"},
		{"no FromUserName", "POST", signed(), `{"CreateTime":1,"MsgType":"event","Event":"subscribe_msg_sent_event"}`, 400, "FromUserName missing"},
		{"sent without List", "POST", signed(), `{"FromUserName":"o","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_sent_event"}`, 400, "without a List entry"},
		{"MsgID zero", "POST", signed(), strings.Replace(sentOne, "1700000001", "0", 1), 400, "MsgID must be positive"},
		{"MsgID not a number", "POST", signed(), strings.Replace(sentOne, "1700000001", "abc", 1), 400, "not an integer"},
		{"CreateTime before 2000", "POST", signed(), strings.Replace(sentOne, "1740830400", "5", 1), 400, "out of range"},
		{"CreateTime past year 9999", "POST", signed(), strings.Replace(sentOne, "1740830400", "999999999999", 1), 400, "out of range"},
		{"openid too long", "POST", signed(), strings.Replace(sentOne, "o-alice", strings.Repeat("o", 129), 1), 400, "FromUserName must be"},
		{"template id too long", "POST", signed(), strings.Replace(sentOne, `"T-price"`, `"`+strings.Repeat("T", 129)+`"`, 1), 400, "TemplateId must be"},
		{"change without status", "POST", signed(), strings.Replace(changeReject, `"SubscribeStatusString":"reject"`, `"X":1`, 1), 400, "SubscribeStatusString missing"},
		{"too large", "POST", signed(), big, 413, "larger than"},
		{"PUT", "PUT", signed(), sentOne, 405, "not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.raw(t, tt.method, pushURL(tt.q), tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				if r.body != tt.want {
					t.Fatalf("body %q, want %q", r.body, tt.want)
				}
				return
			}
			if !strings.HasPrefix(r.ctype, "application/json") || !strings.Contains(r.body, tt.want) {
				t.Fatalf("body %q (%s), want a JSON error containing %q", r.body, r.ctype, tt.want)
			}
		})
	}
	if n := len(e.del.all()); n != 0 {
		t.Errorf("%d deliveries stored from refused or ignored pushes", n)
	}
	if st := e.server.PushStats(); st.OtherEvents != 2 || st.Accepted != 2 || st.Unauthorized != 3 || st.Invalid != 17 {
		t.Errorf("stats %+v", st)
	}
}

func TestPushStoreErrors(t *testing.T) {
	e := setupPush(t)
	e.del.err = errors.New("store: record deliveries: dial tcp 10.0.0.5:3306: connection refused")
	r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "n")), sentOne)
	if r.status != 500 || !strings.Contains(r.body, `"message":"internal error"`) || strings.Contains(r.body, "10.0.0.5") {
		t.Fatalf("store down: %d %s, want 500 internal error without detail (WeChat retries)", r.status, r.body)
	}
	e.subs.err = errors.New("store: record subscription: deadlock")
	if r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "n")), changeReject); r.status != 500 {
		t.Fatalf("change event with the store down: %d %s, want 500", r.status, r.body)
	}
	e.del.err = wxcampaign.Errorf(wxcampaign.EINVALID, "delivery 0: bad")
	if r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "n")), sentOne); r.status != 400 {
		t.Fatalf("store refusing the delivery: %d %s, want 400 (a retry cannot help)", r.status, r.body)
	}
	if st := e.server.PushStats(); st.Failed != 2 || st.Invalid != 1 || st.Accepted != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestPushConcurrent pushes many events at once: every one is stored once,
// whatever the grouping into transactions, and a failing one fails alone.
func TestPushConcurrent(t *testing.T) {
	e := setupPush(t)
	e.del.errs = map[int64]error{13: errors.New("store: row 13 is cursed")}
	const n = 64
	var wg sync.WaitGroup
	status := make([]int, n)
	for i := range n {
		wg.Go(func() {
			body := strings.Replace(sentOne, "1700000001", strconv.Itoa(i+1), 1)
			status[i] = e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, fmt.Sprint(i))), body).status
		})
	}
	wg.Wait()
	got := e.del.all()
	for i := range n {
		want := 200
		if i+1 == 13 {
			want = 500
		}
		if status[i] != want {
			t.Errorf("push of msgid %d: %d, want %d", i+1, status[i], want)
		}
		if _, ok := got[int64(i+1)]; ok != (want == 200) {
			t.Errorf("msgid %d stored: %v", i+1, ok)
		}
	}
	if st := e.server.PushStats(); st.Delivered != n-1 || st.DuplicateSent != 0 {
		t.Errorf("stats %+v, want %d delivered", st, n-1)
	}
}

// TestPushChangeLongIDs: a change event whose readable requestId would be
// over 128 bytes gets a hashed one, still the same on a repeated push.
func TestPushChangeLongIDs(t *testing.T) {
	e := setupPush(t)
	body := strings.NewReplacer("o-dave", strings.Repeat("o", 100), `"T-long"`, `"`+strings.Repeat("T", 100)+`"`).Replace(changeReject)
	for i := range 2 {
		if r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, fmt.Sprint(i))), body); r.status != 200 {
			t.Fatalf("push %d: %d %s", i, r.status, r.body)
		}
	}
	if len(e.subs.seen) != 1 {
		t.Fatalf("%d results recorded, want 1", len(e.subs.seen))
	}
	for id := range e.subs.seen {
		if !strings.HasPrefix(id, "push:change:sha256:") || len(id) > 128 {
			t.Errorf("requestId %q, want a push:change:sha256: id of at most 128 bytes", id)
		}
	}
	if st := e.server.PushStats(); st.Rejects != 1 || st.DuplicateRejects != 1 {
		t.Errorf("stats %+v", st)
	}
}
