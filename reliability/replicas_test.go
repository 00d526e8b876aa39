package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestReplicas runs three daemons on one MariaDB with the same campaign
// ticking every second: each tick runs once between them, grants are
// shared, and every eligible grant is delivered exactly once. It also
// scrapes /metrics and reads every log line for secrets.
func TestReplicas(t *testing.T) {
	n := 6000
	if testing.Short() {
		n = 2000
	}
	// 20 ms per send makes a run outlast a tick, so runs of different
	// replicas overlap and compete for the same grants.
	w := newWorld(t, worldOpts{grants: n, users: 1500, batch: 100, logLevel: "info",
		sim: func(c *wxsim.Config) { c.Faults.Latency = 20 * time.Millisecond }})
	type replica struct {
		cmd  *exec.Cmd
		out  *bytes.Buffer
		mu   *sync.Mutex
		base string
		done chan error
	}
	var reps []*replica
	for range 3 {
		c, out := w.cmd("run", "run", "--config", w.cfgPath, "--listen", "127.0.0.1:0")
		var mu sync.Mutex
		lw := &lockedWriter{w: out, mu: &mu}
		c.Stdout, c.Stderr = lw, lw
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		r := &replica{cmd: c, out: out, mu: &mu, done: make(chan error, 1)}
		go func() { r.done <- c.Wait() }()
		reps = append(reps, r)
	}
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for _, r := range reps {
		for deadline := time.Now().Add(20 * time.Second); r.base == ""; time.Sleep(20 * time.Millisecond) {
			r.mu.Lock()
			m := re.FindStringSubmatch(r.out.String())
			r.mu.Unlock()
			if m != nil {
				r.base = m[1]
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica did not start:\n%s", r.out)
			}
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	for len(w.sim.Messages()) < n && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	// Participation is judged over the whole life of the daemons: each must
	// have held the lease of some tick (sending or not). On a loaded
	// machine one replica may start late and find every grant sent: the
	// campaign ticks every second, so a few more ticks give it its turn.
	held := func(r *replica) (held, sending int) {
		r.mu.Lock()
		s := r.out.String()
		r.mu.Unlock()
		return runsHeld(s)
	}
	for extra := time.Now().Add(30 * time.Second); time.Now().Before(extra); time.Sleep(200 * time.Millisecond) {
		all := true
		for _, r := range reps {
			if h, _ := held(r); h == 0 {
				all = false
			}
		}
		if all {
			break
		}
	}
	// Metrics and health of every replica, then a graceful stop.
	var metrics strings.Builder
	for _, r := range reps {
		for _, path := range []string{"/metrics", "/healthz"} {
			resp, err := http.Get(r.base + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s%s: %d %s", r.base, path, resp.StatusCode, b)
			}
			metrics.Write(b)
		}
	}
	for _, r := range reps {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
	}
	var logs strings.Builder
	ran, sent := 0, 0
	for i, r := range reps {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("replica %d exit: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("replica %d did not drain on SIGTERM", i)
		}
		r.mu.Lock()
		s := r.out.String()
		r.mu.Unlock()
		logs.WriteString(s)
		h, sending := runsHeld(s)
		if h > 0 {
			ran++
		}
		if sending > 0 {
			sent++
		}
		t.Logf("replica %d: held %d ticks, %d of them sent messages", i, h, sending)
		if testing.Verbose() {
			for _, l := range strings.Split(s, "\n") {
				if strings.Contains(l, "run finished") || strings.Contains(l, "error") {
					t.Log(l)
				}
			}
		}
	}
	if ran < 3 {
		t.Errorf("only %d of 3 replicas held a tick over the whole run: not a test of replicas", ran)
	}
	if sent < 2 {
		t.Errorf("only %d of 3 replicas sent messages: the grants were not shared", sent)
	}
	if !strings.Contains(metrics.String(), `wxcampaign_grants_total{campaign="reliable-drop",dry_run="false",outcome="sent",reason="ok"}`) {
		t.Errorf("metrics lack the sent counter")
	}
	var token string
	if err := w.db.SQLX().GetContext(context.Background(), &token, `SELECT token FROM tokens LIMIT 1`); err != nil || len(token) < 16 {
		t.Fatalf("shared token: %q %v", token, err)
	}
	for name, secret := range map[string]string{"app secret": appSecret, "access token": token, "api token": "reliability-api-token"} {
		if strings.Contains(logs.String(), secret) || strings.Contains(metrics.String(), secret) {
			t.Errorf("the %s appears in the logs or metrics", name)
		}
	}
	delivered, dups := w.verify()
	t.Logf("replicas: 3 daemons, %d ran ticks, %d eligible, %d delivered, %d duplicates", ran, len(w.eligible), delivered, dups)
}

// runsHeld counts, in a daemon's JSON log, the runs it held the lease of
// (every "run finished" but "already run") and those that sent messages.
func runsHeld(log string) (held, sending int) {
	for _, line := range strings.Split(log, "\n") {
		var e struct {
			Msg    string `json:"msg"`
			Status string `json:"status"`
			Sent   int    `json:"sent"`
		}
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Msg != "run finished" || e.Status == "already run" {
			continue
		}
		held++
		if e.Sent > 0 {
			sending++
		}
	}
	return held, sending
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
