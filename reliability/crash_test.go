package reliability

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCrashRecovery SIGKILLs a send run at random moments, restarts it each
// time, and checks that every eligible grant was delivered exactly once and
// the ledger agrees: every grant consumed or available, none stuck.
func TestCrashRecovery(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 4000
	}
	if v, _ := strconv.Atoi(os.Getenv("WXC_CRASH_GRANTS")); v > 0 {
		n = v
	}
	kills := 5
	if v, _ := strconv.Atoi(os.Getenv("WXC_CRASH_KILLS")); v > 0 {
		kills = v
	}
	w := newWorld(t, worldOpts{grants: n, lease: "1s", batch: 200, push: true,
		wechat: "ambiguous: reconcile, reconcile_grace: 2s"})
	at := "2026-11-22T10:00:00+08:00"
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	killed := 0
	for attempt := 0; killed < kills && attempt < kills*4; attempt++ {
		c, out := w.cmd("send", "send", "--config", w.cfgPath, "--format", "json", "--at", at, w.campaign)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		delay := time.Duration(400+rng.IntN(2000)) * time.Millisecond
		select {
		case err := <-done:
			// Finished before the kill (or could not take the lease yet).
			t.Logf("run %d ended by itself after < %s: %v", attempt, delay, err)
			if err != nil {
				t.Logf("%s", out)
			}
		case <-time.After(delay):
			_ = c.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
			t.Logf("kill %d after %s, %d messages delivered so far", killed, delay, len(w.sim.Messages()))
		}
		// Let the dead run's lease and reservations expire.
		time.Sleep(1200 * time.Millisecond)
	}
	if killed < kills {
		t.Fatalf("only %d kills landed: the run is too fast for this size", killed)
	}
	// Restart until the occurrence completes.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		sum, out, err := w.send(at)
		if err != nil {
			t.Fatalf("final run: %v\n%s", err, out)
		}
		if sum != nil && sum["status"] == "done" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the occurrence never completed; last output:\n%s", out)
		}
		time.Sleep(1200 * time.Millisecond)
	}
	// A later occurrence settles what the killed runs left in flight (from
	// the delivery events) and sends whatever is still available.
	if err := w.sim.FlushPushes(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if _, out, err := w.send("2026-11-22T10:10:00+08:00"); err != nil {
		t.Fatalf("catch-up run: %v\n%s", err, out)
	}
	delivered, dups := w.verify()
	t.Logf("crash: %d eligible grants, %d kills, %d delivered, %d duplicates", len(w.eligible), killed, delivered, dups)
}
