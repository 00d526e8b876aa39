package api_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// Compile-time check: the store records delivery events, as the daemon
// wires it.
var _ api.Deliveries = (*store.DB)(nil)

type deliveryRow struct {
	MsgID      int64  `db:"msgid"`
	OpenID     string `db:"openid"`
	TemplateID string `db:"template_id"`
	ErrCode    int    `db:"errcode"`
	Status     string `db:"status"`
}

// TestPushStore pushes sent and change events to the API over the real
// store on every driver.
func TestPushStore(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		e := setupPush(t, func(_ *api.Config, deps *api.Deps) { deps.Subs = db; deps.Deliveries = db })
		ctx := context.Background()
		push := func(body string) {
			t.Helper()
			r := e.raw(t, "POST", pushURL(signedQuery(pushToken, fixedNow, "n")), body)
			if r.status != 200 || r.body != "success" {
				t.Fatalf("push: %d %q", r.status, r.body)
			}
		}
		for range 2 { // a repeated push stores nothing new
			push(sentOne)
			push(sentMany)
			push(sentXML)
		}
		var rows []deliveryRow
		if err := db.SQLX().Select(&rows, "SELECT msgid, openid, template_id, errcode, status FROM deliveries ORDER BY msgid"); err != nil {
			t.Fatal(err)
		}
		want := []deliveryRow{
			{1700000001, "o-alice", "T-price", 0, "success"},
			{1700000002, "o-bob", "T-price", 0, "success"},
			{1700000003, "o-bob", "T-stock", 20001, "fail_user_block"},
			{1700000004, "o-carol", "T-act", 0, "success"},
		}
		if len(rows) != len(want) {
			t.Fatalf("deliveries %+v, want %+v", rows, want)
		}
		for i := range want {
			if rows[i] != want[i] {
				t.Errorf("delivery %d: %+v, want %+v", i, rows[i], want[i])
			}
		}
		// SentAt is the event's CreateTime: the engine's reconcile
		// policy finds the delivery from the send's start on.
		for _, c := range []struct {
			openid, tmpl string
			since        time.Time
			want         int64
		}{
			{"o-alice", "T-price", ct(1740830400), 1700000001},
			{"o-alice", "T-price", ct(1740830401), 0},
			{"o-bob", "T-stock", ct(1740830000), 0}, // failed deliveries never match
			{"o-carol", "T-act", ct(1740830000), 1700000004},
		} {
			got, err := db.MatchDelivery(ctx, c.openid, c.tmpl, c.since)
			if err != nil || got != c.want {
				t.Errorf("MatchDelivery(%s, %s, %v) = %d, %v; want %d", c.openid, c.tmpl, c.since, got, err, c.want)
			}
		}

		// A change event rejects a long-term template: the user's
		// long-term grant is revoked, once.
		r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(
			`{"openId":"o-dave","agreeTemplateIds":["T-long","T-price"],"requestId":"r-dave"}`))
		if r.status != 201 || r.body["longTerm"] != 1.0 || r.body["credits"] != 1.0 {
			t.Fatalf("subscription: %d %s", r.status, r.raw)
		}
		for range 2 {
			push(changeReject)
		}
		type grant struct {
			TemplateID string `db:"template_id"`
			Status     string `db:"status"`
		}
		var gs []grant
		if err := db.SQLX().Select(&gs, "SELECT template_id, status FROM grants WHERE openid = 'o-dave' ORDER BY template_id"); err != nil {
			t.Fatal(err)
		}
		if len(gs) != 2 || gs[0] != (grant{"T-long", store.StatusRevoked}) || gs[1] != (grant{"T-price", store.StatusActive}) {
			t.Errorf("grants of o-dave after the change event: %+v, want T-long revoked, T-price active", gs)
		}
		var n int
		if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM subscription_events WHERE openid = 'o-dave' AND template_id = 'T-long' AND result = ?", store.EventReject); err != nil || n != 1 {
			t.Errorf("reject events of o-dave: %d (%v), want 1", n, err)
		}
		if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM subscription_requests WHERE request_id = 'push:change:o-dave:T-long:1740830403'"); err != nil || n != 1 {
			t.Errorf("requests for the change event: %d (%v), want 1", n, err)
		}

		// A popup event records nothing.
		var before int
		_ = db.SQLX().Get(&before, "SELECT COUNT(*) FROM grants")
		push(popup)
		if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM grants"); err != nil || n != before {
			t.Errorf("grants after a popup push: %d (%v), want %d", n, err, before)
		}
		if st := e.server.PushStats(); st.Delivered != 4 || st.DuplicateSent != 4 || st.Rejects != 1 || st.DuplicateRejects != 1 || st.Popups != 2 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestPushEndToEnd sends a message through the WeChat client to the
// simulator, which pushes subscribe_msg_sent_event to the API's push URL;
// the store then holds the delivery under the msgid the send returned.
func TestPushEndToEnd(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e := setupPush(t, func(c *api.Config, deps *api.Deps) {
			c.Now = time.Now // the simulator signs with the real clock
			deps.Subs = db
			deps.Deliveries = db
		})
		newSim := func(token string) (*wxsim.Server, *wechat.Client) {
			sim, err := wxsim.New(wxsim.Config{AppID: "wx-e2e", Secret: "e2e-secret", LooseCredits: true,
				Templates: []wxsim.TemplateDef{{ID: "T-price", Keys: []string{"thing1"}}},
				PushURL:   e.srv.URL + api.PushPath, PushToken: token, PushRetries: -1})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sim.Close() })
			ws := httptest.NewServer(sim.Handler())
			t.Cleanup(ws.Close)
			c, err := wechat.New(wechat.Config{BaseURL: ws.URL, AppID: "wx-e2e", Secret: "e2e-secret"})
			if err != nil {
				t.Fatal(err)
			}
			return sim, c
		}

		sim, client := newSim(pushToken)
		start := time.Now()
		msgid, err := client.Send(ctx, wechat.Message{ToUser: "o-e2e", TemplateID: "T-price", Data: map[string]string{"thing1": "降价了"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := sim.FlushPushes(ctx); err != nil {
			t.Fatal(err)
		}
		if st := sim.Stats(); st.Pushed != 1 || st.PushFailed != 0 {
			t.Fatalf("simulator pushes: %+v", st)
		}
		var row deliveryRow
		if err := db.SQLX().Get(&row, "SELECT msgid, openid, template_id, errcode, status FROM deliveries"); err != nil {
			t.Fatal(err)
		}
		if want := (deliveryRow{msgid, "o-e2e", "T-price", 0, "success"}); row != want {
			t.Errorf("stored %+v, want %+v", row, want)
		}
		got, err := db.MatchDelivery(ctx, "o-e2e", "T-price", start.Add(-5*time.Second))
		if err != nil || got != msgid {
			t.Errorf("MatchDelivery = %d, %v; want the send's msgid %d", got, err, msgid)
		}

		// A simulator with the wrong token: its push is refused (401)
		// and nothing is stored.
		bad, badClient := newSim("wrong-token")
		if _, err := badClient.Send(ctx, wechat.Message{ToUser: "o-e2e-2", TemplateID: "T-price", Data: map[string]string{"thing1": "x"}}); err != nil {
			t.Fatal(err)
		}
		if err := bad.FlushPushes(ctx); err != nil {
			t.Fatal(err)
		}
		if st := bad.Stats(); st.Pushed != 0 || st.PushFailed != 1 {
			t.Errorf("pushes signed with the wrong token: %+v, want 1 failed", st)
		}
		var n int
		if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM deliveries"); err != nil || n != 1 {
			t.Errorf("%d deliveries (%v), want 1", n, err)
		}
		if st := e.server.PushStats(); st.Delivered != 1 || st.Unauthorized != 1 {
			t.Errorf("API push stats %+v", st)
		}
	})
}
