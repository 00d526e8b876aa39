package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// grantOf records one subscription of openid to tpl at at and returns the
// grant's id.
func grantOf(t *testing.T, db *store.DB, req, openid, tpl string, at time.Time, kind wxcampaign.Kind) int64 {
	t.Helper()
	ctx := context.Background()
	r := sub(req, openid, tpl)
	if kind == wxcampaign.LongTerm {
		r.LongTermTemplateIDs = []string{tpl}
	}
	if _, err := db.RecordSubscription(ctx, r, at); err != nil {
		t.Fatal(err)
	}
	gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, tpl, 0, 1000, at))
	for i := len(gs) - 1; i >= 0; i-- { // the newest: the user may have others
		if g := gs[i]; g.OpenID == openid {
			return g.ID
		}
	}
	t.Fatalf("no grant for %s", req)
	return 0
}

// send records one send of grant id in (campaign, occ) at at: begun, then
// finished with outcome (not finished when outcome is "").
func send(t *testing.T, db *store.DB, campaign string, occ time.Time, id int64, openid, tpl string, at time.Time, outcome wxcampaign.Outcome, consume bool) {
	t.Helper()
	ctx := context.Background()
	if got := begin(t, db, at, []store.Attempt{{Campaign: campaign, Occurrence: occ, GrantID: id, OpenID: openid, TemplateID: tpl, Holder: "h"}}); len(got) != 1 {
		t.Fatalf("begin send of %d in %s: %v", id, occ, got)
	}
	if outcome == "" {
		return
	}
	if err := finishSends(ctx, db, at, []store.Result{{Campaign: campaign, Occurrence: occ, GrantID: id, Holder: "h", Outcome: outcome,
		Reason: wxcampaign.Reason(outcome), MsgID: id, Consume: consume, Retain: true}}); err != nil {
		t.Fatal(err)
	}
}

// sendCapped sends grant id of u-cap for template A at at under limit l
// and records it sent: its send_log row is the cap take.
func sendCapped(t *testing.T, db *store.DB, occ time.Time, id int64, at time.Time, l store.Limit) {
	t.Helper()
	if got := begin(t, db, at, []store.Attempt{{Campaign: "cap", Occurrence: occ, GrantID: id, OpenID: "u-cap", TemplateID: "A", Holder: "h", Limits: []store.Limit{l}}}); len(got) != 1 {
		t.Fatalf("begin capped send of %d: %v", id, got)
	}
	if err := finishSends(context.Background(), db, at, []store.Result{{Campaign: "cap", Occurrence: occ, GrantID: id, Holder: "h", Outcome: wxcampaign.Sent,
		Reason: wxcampaign.ReasonOK, MsgID: id, Consume: true, Retain: true}}); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, db *store.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.SQLX().GetContext(context.Background(), &n, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestPrune: a prune deletes old history and nothing that an open cap
// window, a future run, a send in flight or "repeat: once" still reads.
func TestPrune(t *testing.T) {
	const day = 24 * time.Hour
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := t0.Add(100 * day)
		// Grants, all made 100 days ago.
		gOld := grantOf(t, db, "r-old", "u-old", "A", t0, wxcampaign.OneTime)
		gRecent := grantOf(t, db, "r-recent", "u-recent", "A", t0, wxcampaign.OneTime)
		gIdle := grantOf(t, db, "r-idle", "u-idle", "A", t0, wxcampaign.OneTime)
		gFlight := grantOf(t, db, "r-flight", "u-flight", "A", t0, wxcampaign.OneTime)
		gFailed := grantOf(t, db, "r-failed", "u-failed", "A", t0, wxcampaign.OneTime)
		gLong := grantOf(t, db, "r-long", "u-long", "L", t0, wxcampaign.LongTerm)
		gGone := grantOf(t, db, "r-gone", "u-gone", "L", t0, wxcampaign.LongTerm)

		occ1, occ2, occRecent := t0, t0.Add(day), now.Add(-day)
		send(t, db, "c", occ1, gOld, "u-old", "A", t0, wxcampaign.Sent, true)
		send(t, db, "c", occ1, gFailed, "u-failed", "A", t0, wxcampaign.Failed, false)
		send(t, db, "c", occ1, gFlight, "u-flight", "A", t0, "", false)
		send(t, db, "c", occ1, gLong, "u-long", "L", t0, wxcampaign.Sent, false)
		send(t, db, "c", occ2, gLong, "u-long", "L", t0.Add(day), wxcampaign.Sent, false)
		send(t, db, "c", occ1, gGone, "u-gone", "L", t0, wxcampaign.Failed, true) // 43101: revoked
		send(t, db, "c", occRecent, gRecent, "u-recent", "A", occRecent, wxcampaign.Sent, true)
		grantOf(t, db, "r-new", "u-new", "A", now.Add(-day), wxcampaign.OneTime)
		for req, at := range map[string]time.Time{"r-rej-old": t0, "r-rej-new": now.Add(-day)} {
			if _, err := db.RecordSubscription(ctx, wxcampaign.SubscriptionResult{OpenID: "u-rej", RejectTemplateIDs: []string{"A"}, RequestID: req}, at); err != nil {
				t.Fatal(err)
			}
		}

		// Cap takes (a capped send's send_log row): one 100 days old, one
		// 10 days old inside a 30-day window.
		win := store.Limit{Scope: store.ScopeUserTemplate, Max: 1, Window: 30 * day}
		capReq := store.CapRequest{OpenID: "u-cap", TemplateID: "A", Limits: []store.Limit{win}}
		gCapOld := grantOf(t, db, "r-cap-old", "u-cap", "A", t0, wxcampaign.OneTime)
		gCapOpen := grantOf(t, db, "r-cap-open", "u-cap", "A", t0, wxcampaign.OneTime)
		sendCapped(t, db, occ1, gCapOld, t0, win)
		sendCapped(t, db, now.Add(-10*day), gCapOpen, now.Add(-10*day), win)

		// Runs: c has three done runs, d one old done run, e one old run
		// not done.
		for _, r := range []struct {
			campaign string
			occ      time.Time
			done     bool
		}{{"c", occ1, true}, {"c", occ2, true}, {"c", occRecent, true}, {"d", occ1, true}, {"e", occ1, false}} {
			if _, ok := must2(t)(db.AcquireRun(ctx, r.campaign, r.occ, "h", r.occ, r.occ.Add(time.Minute))); !ok {
				t.Fatalf("acquire %s %s", r.campaign, r.occ)
			}
			if r.done {
				if err := db.FinishRun(ctx, r.campaign, r.occ, "h", "done"); err != nil {
					t.Fatal(err)
				}
			}
		}

		// Deliveries: old, old but of a send in flight, recent.
		if _, err := db.RecordDeliveries(ctx, t0, []store.Delivery{{MsgID: 1, OpenID: "u-old", TemplateID: "A", SentAt: t0},
			{MsgID: 2, OpenID: "u-flight", TemplateID: "A", SentAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RecordDeliveries(ctx, occRecent, []store.Delivery{{MsgID: 3, OpenID: "u-recent", TemplateID: "A", SentAt: occRecent}}); err != nil {
			t.Fatal(err)
		}
		// Pauses: one ended long ago, one still on.
		must0(t, db.SetPause(ctx, "quota:old", t0.Add(time.Hour), "45009"))
		must0(t, db.SetPause(ctx, "quota:now", now.Add(time.Hour), "45009"))

		// Popup events: u-ban was banned 100 days ago after an earlier
		// accept (the ban is the latest: it stays); u-pop's recent one
		// stays. Held-out records: one old, one recent.
		must[int](t)(db.RecordPopups(ctx, t0, []wxcampaign.PopupEvent{
			{OpenID: "u-ban", TemplateID: "A", Status: "accept", At: t0},
			{OpenID: "u-ban", TemplateID: "A", Status: "ban", At: t0.Add(time.Hour)},
		}))
		must[int](t)(db.RecordPopups(ctx, now, []wxcampaign.PopupEvent{{OpenID: "u-pop", TemplateID: "A", Status: "accept", At: now.Add(-day)}}))
		must0(t, db.RecordHoldouts(ctx, t0, []store.Holdout{{Campaign: "c", OpenID: "u-held", Occurrence: t0, TemplateID: "A"}}))
		must0(t, db.RecordHoldouts(ctx, now.Add(-day), []store.Holdout{{Campaign: "c", OpenID: "u-held", Occurrence: now.Add(-day), TemplateID: "A"}}))

		opt := store.PruneOptions{Before: now.Add(-7 * day), CapsBefore: now.Add(-30 * day), Batch: 2}
		rep, err := db.Prune(ctx, opt)
		if err != nil {
			t.Fatal(err)
		}
		// send_log: gOld's, gFailed's, gGone's and gCapOld's rows and
		// gLong's older sent row (gCapOpen's stays: its cap window is
		// open); grants: gOld, gGone and both used-up capped grants, with
		// their request ids and the old reject's; runs: c's two old ones.
		want := store.PruneReport{SendLog: 5, Grants: 4, SubscriptionEvents: 1, SubscriptionRequests: 5, Deliveries: 1, Runs: 2, Pauses: 1,
			PopupEvents: 1, Holdouts: 1}
		if rep != want {
			t.Errorf("prune report\n got  %+v\n want %+v", rep, want)
		}

		// Still there: what runs and limits read.
		avail := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "A", 0, 100, now))
		var ids []int64
		for _, g := range avail {
			ids = append(ids, g.ID)
		}
		for _, id := range []int64{gIdle, gFailed} {
			if !slices.Contains(ids, id) {
				t.Errorf("grant %d no longer available: %v", id, ids)
			}
		}
		for _, id := range []int64{gFlight, gRecent, gLong} {
			if _, err := db.GetGrant(ctx, id); err != nil {
				t.Errorf("grant %d: %v", id, err)
			}
		}
		for _, id := range []int64{gOld, gGone} {
			if _, err := db.GetGrant(ctx, id); err == nil {
				t.Errorf("grant %d (used up or revoked 100 days ago) kept", id)
			}
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM popup_events WHERE openid = 'u-ban' AND status = 'ban'"); n != 1 {
			t.Errorf("the latest popup event (a ban) was pruned")
		}
		if m := must[map[int64]bool](t)(db.SentBefore(ctx, "c", []int64{gLong})); !m[gLong] {
			t.Errorf("repeat once: the long-term grant's sent row is gone")
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM send_log WHERE grant_id = ?", gLong); n != 1 {
			t.Errorf("long-term grant: %d send_log rows, want the latest only", n)
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM send_log WHERE status = 'inflight'"); n != 1 {
			t.Errorf("in-flight rows = %d, want 1", n)
		}
		if _, usage, err := db.CheckCaps(ctx, now, []store.CapRequest{capReq}); err != nil || len(usage) != 1 || len(usage[0]) != 1 || usage[0][0].Used != 1 {
			t.Errorf("the open window lost its take: %+v %v", usage, err)
		}
		occs := func(campaign string) (out []string) {
			for _, r := range must[[]store.Run](t)(db.ListRuns(ctx, campaign, 10)) {
				out = append(out, r.Occurrence.Format(time.DateOnly)+" "+r.Status)
			}
			return out
		}
		for c, w := range map[string][]string{
			"c": {occRecent.Format(time.DateOnly) + " done"},
			"d": {occ1.Format(time.DateOnly) + " done"}, // the latest run stays
			"e": {occ1.Format(time.DateOnly) + " running"},
		} {
			if got := occs(c); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("runs of %s = %v, want %v", c, got, w)
			}
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM deliveries"); n != 2 {
			t.Errorf("deliveries = %d, want 2 (the one of the send in flight and the recent one)", n)
		}
		for _, req := range []string{"r-new", "r-idle", "r-rej-new"} {
			if r := must[store.RecordResult](t)(db.RecordSubscription(ctx, sub(req, "u-new", "A"), now)); !r.Duplicate {
				t.Errorf("request id %s was forgotten", req)
			}
		}
		if n := countRows(t, db, "SELECT COUNT(*) FROM subscription_events"); n != 1 {
			t.Errorf("subscription events = %d, want the recent reject", n)
		}
		ps := must[[]store.Pause](t)(db.ListPauses(ctx))
		if len(ps) != 1 || ps[0].Key != "quota:now" {
			t.Errorf("pauses = %+v", ps)
		}
		// A second prune finds nothing.
		if rep, err := db.Prune(ctx, opt); err != nil || rep.Total() != 0 {
			t.Errorf("second prune: %+v %v", rep, err)
		}
	})
}

func must0(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func must2(t *testing.T) func(store.Run, bool, error) (store.Run, bool) {
	return func(r store.Run, ok bool, err error) (store.Run, bool) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return r, ok
	}
}

// TestPruneDoesNotBlockSending: a prune of 20,000 sends (send_log rows,
// grants, request ids) in transactions of 500 lets the sends of a run go on
// (SQLite has one writer) between its transactions.
func TestPruneDoesNotBlockSending(t *testing.T) {
	ctx := context.Background()
	db := storetest.Open(t, storetest.SQLite(t))
	const n = 20000
	old := seed(t, db, "A", n)
	for _, c := range chunk(old, 2000) {
		var atts []store.Attempt
		var res []store.Result
		for _, id := range c {
			atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"})
			res = append(res, store.Result{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h", Outcome: wxcampaign.Sent, Consume: true, Retain: true})
		}
		begin(t, db, t0, atts)
		must0(t, finishSends(ctx, db, t0, res))
	}
	later := t0.Add(48 * time.Hour)
	ids := seed(t, db, "B", 300)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var sends atomic.Int64
	var worst atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load() && i < len(ids); i++ {
			start := time.Now()
			begin(t, db, later, []store.Attempt{{Campaign: "c", Occurrence: later, GrantID: ids[i], OpenID: "u", TemplateID: "B", Holder: "h"}})
			must0(t, finishSends(ctx, db, later, []store.Result{{Campaign: "c", Occurrence: later, GrantID: ids[i], Holder: "h", Outcome: wxcampaign.Sent, Consume: true, Retain: true}}))
			if d := time.Since(start); d.Nanoseconds() > worst.Load() {
				worst.Store(d.Nanoseconds())
			}
			sends.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	start := time.Now()
	rep, err := db.Prune(ctx, store.PruneOptions{Before: t0.Add(time.Hour), Batch: 500})
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if rep.SendLog != n || rep.Grants != n || rep.SubscriptionRequests != n {
		t.Errorf("pruned %+v, want %d sends, grants and request ids", rep, n)
	}
	t.Logf("prune of %d rows took %v; %d sends meanwhile, the slowest %v", rep.Total(), took, sends.Load(), time.Duration(worst.Load()))
	// Sends go on between the prune's transactions: one transaction
	// holding the writer for the whole prune would let at most the sends
	// before it through. (Wait times are logged, not asserted: they depend
	// on the machine's load, the race detector and the disk.)
	if got := sends.Load(); got < 10 {
		t.Errorf("%d sends completed during the prune, want sending to go on between its transactions", got)
	}
}

func chunk(ids []int64, size int) [][]int64 {
	var out [][]int64
	for len(ids) > 0 {
		k := min(size, len(ids))
		out = append(out, ids[:k])
		ids = ids[k:]
	}
	return out
}

// TestPausesListClear: the quota pause after 45009 can be listed and
// cleared, one appid or all.
func TestPausesListClear(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		must0(t, db.SetPause(ctx, "quota:wxA", t0.Add(time.Hour), "45009: daily quota"))
		must0(t, db.SetPause(ctx, "quota:wxB", t0.Add(2*time.Hour), "45009"))
		ps := must[[]store.Pause](t)(db.ListPauses(ctx))
		if len(ps) != 2 || ps[0].Key != "quota:wxA" || !ps[0].Until.Equal(t0.Add(time.Hour)) || ps[0].Reason != "45009: daily quota" {
			t.Fatalf("list = %+v", ps)
		}
		if gone := must[[]string](t)(db.ClearPauses(ctx, "quota:wxA", "quota:none")); fmt.Sprint(gone) != "[quota:wxA]" {
			t.Errorf("clear wxA = %v", gone)
		}
		if u, _, _ := db.PausedUntil(ctx, "quota:wxA", t0); !u.IsZero() {
			t.Errorf("wxA still paused until %v", u)
		}
		if u, _, _ := db.PausedUntil(ctx, "quota:wxB", t0); u.IsZero() {
			t.Errorf("wxB no longer paused")
		}
		if gone := must[[]string](t)(db.ClearPauses(ctx)); fmt.Sprint(gone) != "[quota:wxB]" {
			t.Errorf("clear all = %v", gone)
		}
		if ps := must[[]store.Pause](t)(db.ListPauses(ctx)); len(ps) != 0 {
			t.Errorf("after clear: %+v", ps)
		}
	})
}

// TestBackupRestoreWhileSending: a backup taken while a writer records
// sends is a consistent store (every consumed grant has its sent row);
// restoring it is refused while the store is open, and works once it is
// closed: the store then holds exactly the backup's sends, and sending
// resumes on it.
func TestBackupRestoreWhileSending(t *testing.T) {
	ctx := context.Background()
	cfg := storetest.SQLite(t)
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	ids := seed(t, db, "A", 3000)
	var sent atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < len(ids); i += 10 {
			part := ids[i:min(i+10, len(ids))]
			var atts []store.Attempt
			var res []store.Result
			for _, id := range part {
				atts = append(atts, store.Attempt{Campaign: "c", Occurrence: t0, GrantID: id, OpenID: "u", TemplateID: "A", Holder: "h"})
				res = append(res, store.Result{Campaign: "c", Occurrence: t0, GrantID: id, Holder: "h", Outcome: wxcampaign.Sent, MsgID: id, Consume: true, Retain: true})
			}
			begin(t, db, t0, atts)
			must0(t, finishSends(ctx, db, t0, res))
			sent.Add(int64(len(part)))
		}
	}()
	for sent.Load() < 500 {
		time.Sleep(time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "backup.db")
	if err := db.Backup(ctx, file); err != nil {
		t.Fatal(err)
	}
	atBackup := sent.Load()
	<-done
	if err := db.Backup(ctx, file); err == nil {
		t.Errorf("backup over an existing file succeeded")
	}
	if _, err := store.CheckBackup(ctx, file); err != nil {
		t.Fatal(err)
	}
	// The backup is one snapshot: consumed grants and sent rows agree.
	bk := storetest.Open(t, store.Config{Driver: store.SQLite, DSN: copyFile(t, file)})
	consumed := countRows(t, bk, "SELECT COUNT(*) FROM grants WHERE status = 'consumed'")
	rows := countRows(t, bk, "SELECT COUNT(*) FROM send_log WHERE status = 'sent'")
	if consumed != rows || consumed == 0 || consumed >= len(ids) {
		t.Fatalf("backup: %d consumed grants, %d sent rows (of %d, about %d at the backup)", consumed, rows, len(ids), atBackup)
	}

	// Restore refuses while the store is open.
	if err := store.Restore(ctx, cfg, file); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("restore while open: %v", err)
	}
	db.Close()
	if err := store.Restore(ctx, cfg, file); err != nil {
		t.Fatal(err)
	}
	back, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if got := countRows(t, back, "SELECT COUNT(*) FROM grants WHERE status = 'consumed'"); got != consumed {
		t.Errorf("restored store: %d consumed, want the backup's %d", got, consumed)
	}
	// Sending resumes: the grants the backup holds as available are sent.
	avail := must[int](t)(back.CountAvailable(ctx, "A", t0.Add(2*time.Minute)))
	if avail != len(ids)-consumed {
		t.Errorf("restored store: %d available, want %d", avail, len(ids)-consumed)
	}
	// The backup may hold the marks of a group of sends in flight: those
	// grants wait for the ambiguous policy; any other one is sent.
	inflight := countRows(t, back, "SELECT COUNT(*) FROM send_log WHERE status = 'inflight'")
	rest := must[[]wxcampaign.Grant](t)(back.ListAvailable(ctx, "A", 0, inflight+1, t0.Add(2*time.Minute)))
	occ := t0.Add(time.Hour)
	marked := 0
	for _, g := range rest {
		marked += len(begin(t, back, t0, []store.Attempt{{Campaign: "c", Occurrence: occ, GrantID: g.ID, OpenID: "u", TemplateID: "A", Holder: "h2"}}))
	}
	if marked < len(rest)-inflight || marked == 0 {
		t.Fatalf("after restore: %d of %d available grants could be sent (%d in flight in the backup)", marked, len(rest), inflight)
	}
	if _, err := store.CheckBackup(ctx, filepath.Join(t.TempDir(), "missing.db")); err == nil {
		t.Errorf("a missing backup passed the check")
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	must0(t, os.WriteFile(junk, []byte("not a database"), 0o644))
	if err := store.Restore(ctx, cfg, junk); err == nil {
		t.Errorf("restored a junk file")
	}
}

func copyFile(t *testing.T, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy.db")
	must0(t, os.WriteFile(dst, b, 0o644))
	return dst
}

func TestBackupMySQLRefused(t *testing.T) {
	for _, nc := range storetest.Drivers(t) {
		if nc.Name != store.MySQL {
			continue
		}
		db := storetest.Open(t, nc.Config)
		if err := db.Backup(context.Background(), filepath.Join(t.TempDir(), "b.db")); err != store.ErrBackupMySQL {
			t.Errorf("mysql backup: %v", err)
		}
	}
}
