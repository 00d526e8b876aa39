package reliability

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDaemonKillLoop is TestKillLoop through the daemon: `wxcampaign run`
// with the campaign every second, SIGKILLed at random moments and started
// again, while grants keep arriving over the HTTP API (retried with their
// requestId when the daemon is down). The same checks, plus: every
// accepted subscription result is a grant.
func TestDaemonKillLoop(t *testing.T) {
	for _, s := range killSetups {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel() // mostly waiting on the simulator's latency and on commits
			daemonKillLoop(t, s)
		})
	}
}

// daemon is one `wxcampaign run` process.
type daemon struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	mu   sync.Mutex
	base string
	done chan error
}

func (w *world) startDaemon() *daemon {
	t := w.t
	t.Helper()
	c, out := w.cmd("run", "run", "--config", w.cfgPath, "--listen", "127.0.0.1:0")
	d := &daemon{cmd: c, out: out, done: make(chan error, 1)}
	lw := &lockedWriter{w: out, mu: &d.mu}
	c.Stdout, c.Stderr = lw, lw
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.done <- c.Wait() }()
	re := regexp.MustCompile(`listening on (http://\S+)`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		d.mu.Lock()
		m := re.FindStringSubmatch(d.out.String())
		d.mu.Unlock()
		if m != nil {
			d.base = m[1]
			return d
		}
		select {
		case err := <-d.done:
			t.Fatalf("daemon exited before listening: %v\n%s", err, d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon did not start:\n%s", d.output())
		}
	}
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// feeder posts subscription results to whichever daemon is up, each one
// until it is accepted (a retry reuses the requestId, so it is never
// counted twice).
type feeder struct {
	base     atomic.Pointer[string]
	accepted atomic.Int64
	retries  atomic.Int64
	done     chan struct{}
}

// feed posts m eligible results for m/4 new users (openid aNNNNN, each
// user's four spread over the whole feed) from 8 workers, each posting one
// result every gap.
func (f *feeder) feed(ctx context.Context, m int, gap time.Duration) {
	defer close(f.done)
	const workers = 8
	users := m / 4
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	for k := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := k; i < m; i += workers {
				body := fmt.Sprintf(`{"openId":"a%06d","scene":"add_to_cart","busNo":"p%03d","extraVariableMap":{"saved_price":"20.00"},"agreeTemplateIds":[%q],"rejectTemplateIds":[],"requestId":"api-%d"}`,
					i%users, i%100, templateID, i)
				for !f.post(ctx, client, body) {
					if ctx.Err() != nil {
						return
					}
					f.retries.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
				f.accepted.Add(1)
				time.Sleep(gap)
			}
		}()
	}
	wg.Wait()
}

func (f *feeder) post(ctx context.Context, client *http.Client, body string) bool {
	base := f.base.Load()
	if base == nil {
		return false
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, *base+"/v1/subscriptions", strings.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer reliability-api-token")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK
}

func daemonKillLoop(t *testing.T, s killSetup) {
	imported := 8000
	if testing.Short() {
		imported = 2000
	}
	if v, _ := strconv.Atoi(os.Getenv("WXC_KILL_DAEMON_GRANTS")); v > 0 {
		imported = v - v%4
	}
	viaAPI := imported / 4
	viaAPI -= viaAPI % 4
	_, kills, latency := killParams(imported+viaAPI, imported+viaAPI)
	start := time.Now()
	w := killWorld(t, s, imported, latency)
	setup := time.Since(start)
	start = time.Now()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &feeder{done: make(chan struct{})}
	// The results arrive over about the time of the kills.
	go f.feed(ctx, viaAPI, time.Duration(kills)*3*time.Second*8/time.Duration(viaAPI))

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 13))
	var perKill []string
	for k := 1; k <= kills; k++ {
		d := w.startDaemon()
		f.base.Store(&d.base)
		killed, after, err := w.killAtRandom(d.cmd.Process, d.done, rng)
		f.base.Store(nil)
		if !killed {
			t.Fatalf("daemon exited by itself: %v\n%s", err, d.output())
		}
		inflight, lost := w.inflightWithoutRequest(d.cmd.Process.Pid)
		perKill = append(perKill, fmt.Sprintf("%d/%d", lost, inflight))
		t.Logf("kill %d after %s: %d requests, %d results accepted so far; %d send-log rows in flight, %d of them never reached the simulator",
			k, after, w.reqs.count(), f.accepted.Load(), inflight, lost)
	}

	// The last daemon runs until every eligible grant is settled.
	d := w.startDaemon()
	f.base.Store(&d.base)
	select {
	case <-f.done:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the feed did not finish: %d of %d accepted", f.accepted.Load(), viaAPI)
	}
	// Done when no eligible grant is active and nothing is in flight; given
	// up when nothing has moved for 20 s (grants capped for good).
	last, moved := -1, time.Now()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(500 * time.Millisecond) {
		var open int
		if err := w.db.SQLX().GetContext(ctx, &open, `SELECT (SELECT COUNT(*) FROM grants WHERE status = 'active' AND vars LIKE '%20.00%')
			+ (SELECT COUNT(*) FROM send_log WHERE status = 'inflight')`); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if open != last {
			last, moved = open, time.Now()
		}
		if time.Now().After(deadline) || time.Since(moved) > 20*time.Second {
			t.Errorf("the daemon stopped making progress: %d eligible grants still active or sends in flight", open)
			break
		}
	}
	completed := time.Since(start)
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon exit on SIGTERM: %v\n%s", err, d.output())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not drain on SIGTERM")
	}

	// Every accepted result is a grant; all of them are eligible.
	var ids []int64
	if err := w.db.SQLX().SelectContext(ctx, &ids, `SELECT id FROM grants WHERE vars LIKE '%20.00%'`); err != nil {
		t.Fatal(err)
	}
	if len(ids) != imported+viaAPI || f.accepted.Load() != int64(viaAPI) {
		t.Errorf("grants: %d eligible, want %d imported + %d accepted over the API (%d accepted)", len(ids), imported, viaAPI, f.accepted.Load())
	}
	clear(w.eligible)
	for _, id := range ids {
		w.eligible[id] = true
	}
	r := w.checkKills(kills)
	t.Logf("daemon kill loop %s: %d eligible grants (%d imported, %d over the API while killed, %d retried posts; 4 per user), %d kills, latency %s; "+
		"per kill (in flight without request / in flight): %s; %d requests, %d delivered, %d duplicates, %d unknown (%d without request: %v per process), "+
		"%d caps without request; setup %s, kills and completion %s",
		s.name, len(w.eligible), imported, viaAPI, f.retries.Load(), kills, latency, strings.Join(perKill, " "),
		r.requests, r.delivered, r.dups, r.unknown, r.unknownNoReq, r.perProcess, r.capsNoReq,
		setup.Round(time.Second), completed.Round(time.Second))
}
