package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// Example: record a subscription, then take the credit the way a run does:
// reserve, begin the send, finish it (consuming the credit).
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wxc-example")
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, store.Config{Driver: "sqlite", DSN: filepath.Join(dir, "ledger.db")})
	if err != nil {
		panic(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		panic(err)
	}
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	res, _ := db.RecordSubscription(ctx, wxcampaign.SubscriptionResult{
		OpenID: "oUser1", Scene: "cart", BusNo: "sku-42",
		ExtraVariableMap: map[string]any{"price": 99.0},
		AgreeTemplateIDs: []string{"TMPL_PRICE"}, RequestID: "req-1",
	}, now)
	fmt.Printf("credits %d\n", res.Credits)

	grants, _ := db.ListAvailable(ctx, "TMPL_PRICE", 0, 100, now)
	g := grants[0]
	taken, _ := db.Reserve(ctx, "worker-1", []int64{g.ID}, now, now.Add(time.Minute))
	begun, _ := db.BeginSends(ctx, now, []store.Attempt{{Campaign: "price-drop", Occurrence: now, GrantID: taken[0], OpenID: g.OpenID, TemplateID: g.TemplateID, Holder: "worker-1"}})
	// ... send the message for every id in begun ...
	_ = db.FinishSends(ctx, now, []store.Result{{Campaign: "price-drop", Occurrence: now, GrantID: begun[0], Holder: "worker-1",
		Outcome: wxcampaign.Sent, Reason: "sent", MsgID: 123, Consume: true, Retain: true}})
	left, _ := db.CountAvailable(ctx, "TMPL_PRICE", now)
	counts, _ := db.OutcomeCounts(ctx, "price-drop")
	fmt.Printf("saw %v, left %d, log %v\n", g.Vars["price"], left, counts)
	// Output:
	// credits 1
	// saw 99, left 0, log map[sent:1]
}

// ExampleDB_Import: bulk JSON Lines with a bad line.
func ExampleDB_Import() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wxc-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(ctx, store.Config{DSN: filepath.Join(dir, "ledger.db")})
	defer db.Close()
	_, _ = db.Migrate(ctx)
	in := `{"openId":"o1","agreeTemplateIds":["T"],"requestId":"r1"}
{"openId":"o2","agreeTemplateIds":["T"],"requestId":"r2","oops":1}
{"openId":"o3","agreeTemplateIds":["T","T"],"requestId":"r3"}
`
	// Line 3 repeats T: one popup answers an id once, so it is one credit.
	rep, err := db.Import(ctx, strings.NewReader(in), store.ImportOptions{})
	fmt.Println(rep.Lines, rep.Imported, rep.Credits, rep.Bad, err)
	// Output:
	// 3 2 2 [{2 invalid JSON: json: unknown field "oops"}] <nil>
}

// ExampleDB_TakeCaps: at most one message per user and template a day.
func ExampleDB_TakeCaps() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wxc-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(ctx, store.Config{DSN: filepath.Join(dir, "ledger.db")})
	defer db.Close()
	_, _ = db.Migrate(ctx)
	daily := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: 24 * time.Hour}}
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	got, _ := db.TakeCaps(ctx, now, []store.CapRequest{
		{Ref: "c|1|g1", OpenID: "o1", TemplateID: "T", Limits: daily},
		{Ref: "c|1|g2", OpenID: "o1", TemplateID: "T", Limits: daily},
	})
	fmt.Printf("%q\n", got)
	// Output:
	// ["" "capped: user_template 1/24h"]
}

// ExampleDB_AcquireRun: one campaign tick runs once across replicas.
func ExampleDB_AcquireRun() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wxc-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(ctx, store.Config{DSN: filepath.Join(dir, "ledger.db")})
	defer db.Close()
	_, _ = db.Migrate(ctx)
	tick := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	_, a, _ := db.AcquireRun(ctx, "price-drop", tick, "replica-a", tick, tick.Add(time.Minute))
	_, b, _ := db.AcquireRun(ctx, "price-drop", tick, "replica-b", tick, tick.Add(time.Minute))
	_ = db.Checkpoint(ctx, "price-drop", tick, "replica-a", 500)
	_ = db.FinishRun(ctx, "price-drop", tick, "replica-a", "sent 1")
	fmt.Println(a, b)
	// Output:
	// true false
}

// ExampleDB_MatchDelivery: a process died between BeginSends and
// FinishSends; WeChat's delivery event tells that the message arrived, and
// the stale attempt is settled as sent with its msgid.
func ExampleDB_MatchDelivery() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "wxc-example")
	defer os.RemoveAll(dir)
	db, _ := store.Open(ctx, store.Config{DSN: filepath.Join(dir, "ledger.db")})
	defer db.Close()
	_, _ = db.Migrate(ctx)
	now := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	_, _ = db.RecordSubscription(ctx, wxcampaign.SubscriptionResult{OpenID: "o1", AgreeTemplateIDs: []string{"T"}, RequestID: "r1"}, now)
	g, _ := db.ListAvailable(ctx, "T", 0, 1, now)
	_, _ = db.Reserve(ctx, "dead-worker", []int64{g[0].ID}, now, now.Add(time.Minute))
	_, _ = db.BeginSends(ctx, now, []store.Attempt{{Campaign: "c", Occurrence: now, GrantID: g[0].ID, OpenID: "o1", TemplateID: "T", Holder: "dead-worker"}})
	// ... the worker dies; WeChat pushes subscribe_msg_sent_event ...
	n, _ := db.RecordDeliveries(ctx, now.Add(2*time.Second), []store.Delivery{{MsgID: 7001, OpenID: "o1", TemplateID: "T", Status: "success", SentAt: now.Add(time.Second)}})

	later := now.Add(2 * time.Minute) // the lease has expired
	stale, _ := db.StaleInflight(ctx, later, 100)
	a := stale[0]
	msgid, _ := db.MatchDelivery(ctx, a.OpenID, a.TemplateID, a.StartedAt.Add(-5*time.Second))
	_ = db.FinishSends(ctx, later, []store.Result{{Campaign: a.Campaign, Occurrence: a.Occurrence, GrantID: a.GrantID, Holder: a.Holder,
		Outcome: wxcampaign.Sent, Reason: "sent (delivery event)", MsgID: msgid, Consume: a.Kind == wxcampaign.OneTime, Retain: true}})
	st, _ := db.GetGrant(ctx, a.GrantID)
	again, _ := db.MatchDelivery(ctx, "o1", "T", now)
	fmt.Println(n, a.Kind, msgid, st.Status, again)
	// Output:
	// 1 one_time 7001 consumed 0
}
