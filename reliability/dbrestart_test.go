package reliability

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestDatabaseRestart restarts MariaDB in the middle of a send run: the
// engine waits and retries, then finishes with nothing lost or doubled. It
// stops the machine's MariaDB server, so it runs only when asked:
// WXC_RESTART_DB=1 (as root, with MariaDB started by start-stop-daemon).
func TestDatabaseRestart(t *testing.T) {
	if os.Getenv("WXC_RESTART_DB") != "1" {
		t.Skip("restarts the machine's MariaDB: set WXC_RESTART_DB=1 to run")
	}
	n := 8000
	w := newWorld(t, worldOpts{grants: n, batch: 200, lease: "30s",
		sim: func(c *wxsim.Config) { c.Faults.Latency = 5 * time.Millisecond }})
	c, out := w.cmd("send", "send", "--config", w.cfgPath, "--format", "json", "--at", "2026-11-22T10:00:00+08:00", w.campaign)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	time.Sleep(1500 * time.Millisecond)
	before := len(w.sim.Messages())
	if before == 0 || before >= n {
		t.Fatalf("restart should land mid-run: %d of %d delivered", before, n)
	}
	stop := exec.Command("start-stop-daemon", "--stop", "--exec", "/usr/sbin/mariadbd", "--retry", "30")
	if b, err := stop.CombinedOutput(); err != nil {
		t.Fatalf("stop mariadb: %v %s", err, b)
	}
	down := time.Now()
	time.Sleep(3 * time.Second)
	start := exec.Command("start-stop-daemon", "--start", "--oknodo", "--background", "--exec", "/usr/sbin/mariadbd")
	if b, err := start.CombinedOutput(); err != nil {
		t.Fatalf("start mariadb: %v %s", err, b)
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:3306"); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("MariaDB did not come back")
		}
	}
	t.Logf("MariaDB was down for %s with %d of %d messages delivered", time.Since(down).Round(time.Millisecond), before, n)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("send failed across the restart: %v\n%s", err, out)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("send did not finish after the restart")
	}
	delivered, dups := w.verify()
	t.Logf("db restart: %d eligible, %d delivered, %d duplicates", len(w.eligible), delivered, dups)
}
