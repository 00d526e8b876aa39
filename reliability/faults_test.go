package reliability

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestFaults injects every fault of WeChat at once while two engine
// processes send to the same users: -1 and 503 (retried), replies withheld
// after delivery (the message arrived: consumed as unknown, never resent),
// tokens expiring, 43108 on overlapping sends, and 45009 after a number of
// sends. After the quota resets, every eligible grant has been delivered
// exactly once.
func TestFaults(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1000
	}
	faults := wxsim.Faults{SystemBusy: 0.10, HTTP503: 0.05, WithholdAfterDeliver: 0.02, WithholdFor: 1500 * time.Millisecond,
		ExpireTokenEvery: 400, QuotaAfter: n * 6 / 10, Seed: 11}
	w := newWorld(t, worldOpts{grants: n, users: 200, batch: 100, sim: func(c *wxsim.Config) { c.Faults = faults }})
	ctx := context.Background()

	// Two processes, two occurrences, the same users: their sends overlap.
	var wg sync.WaitGroup
	for i, at := range []string{"2026-11-22T10:00:00+08:00", "2026-11-22T10:00:01+08:00"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum, out, err := w.send(at)
			if err != nil {
				t.Errorf("send %d: %v\n%s", i, err, out)
			}
			t.Logf("first round, process %d: %v", i, sum["status"])
		}()
	}
	wg.Wait()
	var paused int
	if err := w.db.SQLX().GetContext(ctx, &paused, `SELECT COUNT(*) FROM pauses WHERE until > UTC_TIMESTAMP(6)`); err != nil || paused != 1 {
		t.Fatalf("after 45009 the quota pause is stored: %d (%v)", paused, err)
	}
	// Within the pause nothing is sent.
	before := len(w.sim.Messages())
	if sum, out, err := w.send("2026-11-22T10:05:00+08:00"); err != nil || len(w.sim.Messages()) != before {
		t.Fatalf("a run within the pause sent %d messages (%v, %v)\n%s", len(w.sim.Messages())-before, sum, err, out)
	}
	// The quota resets (WeChat's midnight): the engine picks up the rest.
	for round := 0; ; round++ {
		w.sim.ResetQuota()
		if _, err := w.db.SQLX().ExecContext(ctx, `UPDATE pauses SET until = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND`); err != nil {
			t.Fatal(err)
		}
		_, out, err := w.send(fmt.Sprintf("2026-11-23T10:%02d:00+08:00", round))
		if err != nil {
			t.Fatalf("round %d: %v\n%s", round, err, out)
		}
		var left int
		if err := w.db.SQLX().GetContext(ctx, &left, `SELECT COUNT(*) FROM grants WHERE status = 'active' AND vars LIKE '%20.00%'`); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if round == 10 {
			t.Fatalf("%d eligible grants still available after %d rounds", left, round)
		}
	}
	st := w.sim.Stats()
	t.Logf("faults: %d requests, %d delivered, errors %v, http %v, %d overlaps (43108), %d withheld",
		st.Requests, st.Sends, st.Errors, st.HTTP, st.Overlaps, st.Withheld)
	if st.Errors[-1] == 0 || st.HTTP[503] == 0 || st.Withheld == 0 || st.Errors[45009] == 0 || st.Errors[42001]+st.Errors[40001] == 0 {
		t.Errorf("not every fault was exercised: %+v", st)
	}
	var unknown int
	if err := w.db.SQLX().GetContext(ctx, &unknown, `SELECT COUNT(*) FROM send_log WHERE status = 'unknown'`); err != nil {
		t.Fatal(err)
	}
	if int64(unknown) != st.Withheld {
		t.Errorf("%d sends recorded unknown, the simulator withheld %d replies", unknown, st.Withheld)
	}
	delivered, dups := w.verify()
	t.Logf("faults: %d eligible, %d delivered, %d duplicates, %d unknown (delivered, consumed, not resent)", len(w.eligible), delivered, dups, unknown)
}
