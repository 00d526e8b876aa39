package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// sendBatch is the engine's batch size.
const sendBatch = 500

// BenchmarkSendPath runs the engine's store calls for one batch of 500
// one-time grants per op, the way a run does: ListAvailable, Reserve,
// TakeCaps (caps: a user_template and a user limit; nocaps: none),
// BeginSends, FinishSends (sent, distinct msgids, consumed) and Checkpoint.
// It reports grants/s. Grants are imported ahead, 20,000 at a time, outside
// the timer.
//
//	go test -run XXX -bench BenchmarkSendPath -benchtime 40x ./store/
func BenchmarkSendPath(b *testing.B) {
	for _, nc := range storetest.Drivers(b) {
		for _, caps := range []bool{false, true} {
			name := nc.Name + "/nocaps"
			if caps {
				name = nc.Name + "/caps"
			}
			b.Run(name, func(b *testing.B) {
				// A fresh database per run of this function (b.N grows).
				fresh := storetest.NamedConfig{Name: nc.Name}
				benchSendPath(b, fresh.Open(b), caps)
			})
		}
	}
}

func benchSendPath(b *testing.B, db *store.DB, caps bool) {
	ctx := context.Background()
	const tmpl, campaign, holder = "tmpl-price", "price-drop", "bench-1"
	now := time.Now().UTC()
	occ := now.Truncate(time.Minute)
	if _, ok, err := db.AcquireRun(ctx, campaign, occ, holder, now, now.Add(time.Hour)); err != nil || !ok {
		b.Fatalf("acquire run: %v %v", ok, err)
	}
	limits := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: 24 * time.Hour}, {Scope: store.ScopeUser, Max: 3, Window: 24 * time.Hour}}
	seeded, used := 0, 0
	seed := func(n int) {
		var buf bytes.Buffer
		for i := seeded; i < seeded+n; i++ {
			s := strconv.Itoa(i)
			buf.WriteString(`{"openId":"oUpF8uMuAJO_M2pxb1Q9zNjW` + s + `","scene":"cart","busNo":"sku-` + s +
				`","extraVariableMap":{"price":100.5,"title":"Spring sale"},"agreeTemplateIds":["` + tmpl + `"],"requestId":"bench-` + s + "\"}\n")
		}
		rep, err := db.Import(ctx, &buf, store.ImportOptions{BatchSize: 20000, Now: func() time.Time { return now }})
		if err != nil || rep.Credits != n {
			b.Fatalf("seed: %+v %v", rep, err)
		}
		seeded += n
	}
	var after, msgid int64
	// Time per call, reported as <call>-ms/op.
	steps := []string{"list", "reserve", "caps", "begin", "finish", "checkpoint"}
	spent := make([]time.Duration, len(steps))
	mark := time.Now()
	step := func(k int) {
		t := time.Now()
		spent[k] += t.Sub(mark)
		mark = t
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if used+sendBatch > seeded {
			b.StopTimer()
			seed(20000)
			b.StartTimer()
		}
		mark = time.Now()
		grants, err := db.ListAvailable(ctx, tmpl, after, sendBatch, now)
		if err != nil || len(grants) != sendBatch {
			b.Fatalf("list: %d %v", len(grants), err)
		}
		step(0)
		used += len(grants)
		after = grants[len(grants)-1].ID
		ids := make([]int64, len(grants))
		for j, g := range grants {
			ids[j] = g.ID
		}
		taken, err := db.Reserve(ctx, holder, ids, now, now.Add(time.Minute))
		if err != nil || len(taken) != len(ids) {
			b.Fatalf("reserve: %d %v", len(taken), err)
		}
		step(1)
		if caps {
			reqs := make([]store.CapRequest, len(grants))
			for j, g := range grants {
				reqs[j] = store.CapRequest{Ref: fmt.Sprint(campaign, "|", g.ID), OpenID: g.OpenID, TemplateID: g.TemplateID, Limits: limits}
			}
			res, err := db.TakeCaps(ctx, now, reqs)
			if err != nil || len(res) != len(reqs) || res[0] != "" || res[len(res)-1] != "" {
				b.Fatalf("take caps: %v %v", res, err)
			}
		}
		step(2)
		atts := make([]store.Attempt, len(grants))
		for j, g := range grants {
			atts[j] = store.Attempt{Campaign: campaign, Occurrence: occ, GrantID: g.ID, OpenID: g.OpenID, TemplateID: g.TemplateID, Holder: holder}
		}
		begun, err := db.BeginSends(ctx, now, atts)
		if err != nil || len(begun) != len(atts) {
			b.Fatalf("begin: %d %v", len(begun), err)
		}
		step(3)
		res := make([]store.Result, len(grants))
		for j, g := range grants {
			msgid++
			res[j] = store.Result{Campaign: campaign, Occurrence: occ, GrantID: g.ID, Holder: holder, Outcome: wxcampaign.Sent, Reason: "sent",
				MsgID: msgid, Consume: true, Retain: true}
		}
		mark = time.Now()
		if err := db.FinishSends(ctx, now, res); err != nil {
			b.Fatal(err)
		}
		step(4)
		if err := db.Checkpoint(ctx, campaign, occ, holder, after); err != nil {
			b.Fatal(err)
		}
		step(5)
	}
	for k, name := range steps {
		if spent[k] > 0 {
			b.ReportMetric(float64(spent[k].Microseconds())/1000/float64(b.N), name+"-ms/op")
		}
	}
	b.ReportMetric(float64(sendBatch*b.N)/b.Elapsed().Seconds(), "grants/s")
}
