package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
)

func TestRunRecords(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		// Three runs of two campaigns; ids number them in order.
		var ids []int64
		for i, c := range []string{"a", "b", "a"} {
			occ := t0.Add(time.Duration(i) * time.Hour)
			r, ok, err := db.AcquireRun(ctx, c, occ, "p1", occ, occ.Add(time.Minute))
			if err != nil || !ok || r.ID == 0 {
				t.Fatalf("acquire %s: %+v %v %v", c, r, ok, err)
			}
			ids = append(ids, r.ID)
		}
		if !(ids[0] < ids[1] && ids[1] < ids[2]) {
			t.Fatalf("ids not increasing: %v", ids)
		}
		occ := t0
		if err := db.Checkpoint(ctx, "a", occ, "p1", 42); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishRun(ctx, "a", occ, "p1", "stopped"); err != nil {
			t.Fatal(err)
		}
		attempt := store.RunReport{Status: "stopped", Looked: 10, Counts: map[string]int{"sent": 4, "skipped": 6},
			Reasons: map[string]int{"sent: ": 4, "skipped: rule false": 6}, Duration: 2 * time.Second,
			Replicas: []string{"host-1"}, Errors: []string{"fact product: no such table"}}
		if err := db.RecordRunReport(ctx, "a", occ, attempt, t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordRunReport(ctx, "nope", occ, attempt, t0); wxcampaign.ErrorCode(err) != wxcampaign.ENOTFOUND {
			t.Errorf("report of a missing run: %v", err)
		}

		// A finished run or one held by a live lease cannot be retried.
		if err := db.FinishRun(ctx, "b", t0.Add(time.Hour), "p1", "done"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []int64{ids[1], ids[2]} {
			if _, err := db.ReopenRun(ctx, id, t0.Add(time.Hour)); wxcampaign.ErrorCode(err) != wxcampaign.ECONFLICT {
				t.Errorf("reopen run %d: %v, want conflict", id, err)
			}
		}
		if _, err := db.ReopenRun(ctx, 9999, t0); wxcampaign.ErrorCode(err) != wxcampaign.ENOTFOUND {
			t.Errorf("reopen missing run: %v", err)
		}

		// The stopped run reopens; the next acquire resumes at its checkpoint.
		now := t0.Add(24 * time.Hour)
		r, err := db.ReopenRun(ctx, ids[0], now)
		if err != nil || r.Status != store.RunRunning {
			t.Fatalf("reopen: %+v %v", r, err)
		}
		r, ok, err := db.AcquireRun(ctx, "a", occ, "p2", now, now.Add(time.Minute))
		if err != nil || !ok || r.Checkpoint != 42 || r.ID != ids[0] {
			t.Fatalf("acquire after reopen: %+v %v %v", r, ok, err)
		}
		if err := db.FinishRun(ctx, "a", occ, "p2", "done"); err != nil {
			t.Fatal(err)
		}
		second := store.RunReport{Status: "done", Looked: 5, Counts: map[string]int{"sent": 5},
			Reasons: map[string]int{"sent: ": 5}, Duration: 3 * time.Second, Replicas: []string{"host-2"}}
		if err := db.RecordRunReport(ctx, "a", occ, second, now.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		got, err := db.GetRunByID(ctx, ids[0])
		if err != nil {
			t.Fatal(err)
		}
		rep := got.Report
		if rep == nil || rep.Attempts != 2 || rep.Status != "done" || rep.Looked != 15 || rep.Count("sent") != 9 ||
			rep.Reasons["skipped: rule false"] != 6 || rep.Duration != 5*time.Second || rep.Rate != 9.0/5 ||
			len(rep.Replicas) != 2 || len(rep.Errors) != 1 || !got.FinishedAt.Equal(now.Add(time.Second)) {
			t.Errorf("merged report = %+v (run %+v)", rep, got)
		}
		if ok, _ := got.Retryable(now); ok {
			t.Error("a done run is retryable")
		}

		// Pages: newest first, keyset by id, per campaign.
		page, err := db.RunsPage(ctx, store.RunFilter{Limit: 2})
		if err != nil || len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[1] {
			t.Fatalf("page 1 = %+v %v", page, err)
		}
		page, err = db.RunsPage(ctx, store.RunFilter{Limit: 2, BeforeID: page[1].ID})
		if err != nil || len(page) != 1 || page[0].ID != ids[0] {
			t.Fatalf("page 2 = %+v %v", page, err)
		}
		page, err = db.RunsPage(ctx, store.RunFilter{Campaign: "a"})
		if err != nil || len(page) != 2 || page[0].Campaign != "a" || page[1].Campaign != "a" {
			t.Fatalf("campaign page = %+v %v", page, err)
		}
		if _, err := db.GetRunByID(ctx, 9999); wxcampaign.ErrorCode(err) != wxcampaign.ENOTFOUND {
			t.Errorf("GetRunByID(missing) = %v", err)
		}
	})
}

func TestCampaignPausesAndAudit(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, ok, err := db.CampaignPaused(ctx, "a"); ok || err != nil {
			t.Fatalf("paused before pause: %v %v", ok, err)
		}
		for i, want := range []bool{true, false} {
			changed, err := db.PauseCampaign(ctx, "a", "alice", "promo over", t0.Add(time.Duration(i)*time.Minute))
			if err != nil || changed != want {
				t.Fatalf("pause %d = %v %v", i, changed, err)
			}
		}
		p, ok, err := db.CampaignPaused(ctx, "a")
		if err != nil || !ok || p.PausedBy != "alice" || !p.PausedAt.Equal(t0) || p.Reason != "promo over" {
			t.Fatalf("pause = %+v %v %v (the first pause is kept)", p, ok, err)
		}
		all, err := db.CampaignPauses(ctx)
		if err != nil || len(all) != 1 || all["a"].PausedBy != "alice" {
			t.Fatalf("pauses = %+v %v", all, err)
		}
		if changed, err := db.ResumeCampaign(ctx, "a", "bob", t0.Add(time.Hour)); err != nil || !changed {
			t.Fatalf("resume = %v %v", changed, err)
		}
		if _, ok, _ := db.CampaignPaused(ctx, "a"); ok {
			t.Fatal("still paused after resume")
		}
		if err := db.SetPause(ctx, "quota:wx1", t0.Add(48*time.Hour), "45009"); err != nil {
			t.Fatal(err)
		}
		if changed, err := db.ClearPause(ctx, "quota:wx1", "bob", t0.Add(2*time.Hour)); err != nil || !changed {
			t.Fatalf("clear pause = %v %v", changed, err)
		}
		if until, _, _ := db.PausedUntil(ctx, "quota:wx1", t0); !until.IsZero() {
			t.Fatal("quota pause not cleared")
		}
		entries, err := db.AuditPage(ctx, 0, 3)
		if err != nil || len(entries) != 3 {
			t.Fatalf("audit = %+v %v", entries, err)
		}
		want := []string{"bob clear_pause quota:wx1", "bob resume a", "alice pause a"}
		for i, e := range entries {
			if got := e.Actor + " " + e.Action + " " + e.Target; got != want[i] {
				t.Errorf("audit[%d] = %q, want %q", i, got, want[i])
			}
		}
		if entries[2].Detail != "already paused" || !entries[2].At.Equal(t0.Add(time.Minute)) {
			t.Errorf("second pause audited as %+v", entries[2])
		}
		rest, err := db.AuditPage(ctx, entries[2].ID, 10)
		if err != nil || len(rest) != 1 || rest[0].Detail != "promo over" || !rest[0].At.Equal(t0) {
			t.Fatalf("audit page 2 = %+v %v", rest, err)
		}
	})
}

// TestRunIDMigration: runs recorded before migration 00010 get ids, and
// runs inserted after it are numbered after them.
func TestRunIDMigration(t *testing.T) {
	testenv.EachConfig(t, func(t *testing.T, cfg store.Config) {
		ctx := context.Background()
		db, err := store.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		p := migrations(t, db)
		if _, err := p.UpTo(ctx, 9); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			occ := t0.Add(time.Duration(i) * time.Hour)
			ts := occ.Format("2006-01-02 15:04:05.000000")
			if _, err := db.SQLX().ExecContext(ctx, "INSERT INTO runs (campaign, occurrence, holder, lease_until, checkpoint, status) VALUES (?,?,'p',?,0,'running')",
				fmt.Sprint("c", i), ts, ts); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		r, _, err := db.AcquireRun(ctx, "new", t0, "p", t0, t0.Add(time.Minute))
		if err != nil || r.ID != 4 {
			t.Fatalf("new run after migration: %+v %v, want id 4", r, err)
		}
		page, err := db.RunsPage(ctx, store.RunFilter{})
		if err != nil || len(page) != 4 {
			t.Fatalf("runs = %+v %v", page, err)
		}
		seen := map[int64]bool{}
		for _, r := range page {
			seen[r.ID] = true
		}
		if len(seen) != 4 || seen[0] {
			t.Errorf("ids %v: want 4 distinct non-zero", seen)
		}
	})
}

func TestReceivedBy(t *testing.T) {
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.RecordDeliveries(ctx, t0, []store.Delivery{
			{MsgID: 11, OpenID: "u1", TemplateID: "T1", Status: "success", SentAt: t0.Add(-40 * 24 * time.Hour)},
			{MsgID: 12, OpenID: "u1", TemplateID: "T1", Status: "success", SentAt: t0.Add(-2 * time.Hour)},
			{MsgID: 13, OpenID: "u1", TemplateID: "T2", Status: "fail user refuse accept", ErrCode: 43101, SentAt: t0.Add(-time.Hour)},
			{MsgID: 14, OpenID: "u2", TemplateID: "T1", Status: "success", SentAt: t0.Add(-time.Hour)},
		}); err != nil {
			t.Fatal(err)
		}
		got, err := db.ReceivedBy(ctx, "u1", t0.Add(-30*24*time.Hour), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].MsgID != 13 || got[0].ErrCode != 43101 || got[1].MsgID != 12 || !got[1].SentAt.Equal(t0.Add(-2*time.Hour)) || got[1].Campaign != "" {
			t.Errorf("received = %+v", got)
		}
	})
}
