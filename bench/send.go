package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// send resets the store, starts a simulator with latency, runs `send` as a
// child process and checks what the simulator received.
func (r *runner) send(ctx context.Context, n int, lat time.Duration, want int, wireRate float64) error {
	conc := r.concurrency(lat)
	r.logf("send %d grants at latency %v, concurrency %d", n, lat, conc)
	if err := r.reset(ctx); err != nil {
		return err
	}
	s, err := r.startSim(ctx, lat)
	if err != nil {
		return err
	}
	if err := r.writeConfig(conc, s.base); err != nil {
		_, _ = s.stop()
		return err
	}
	args := append(r.profileArgs(fmt.Sprintf("send-%d-%s", n, lat)), "send", "--config", r.cfgPath(conc), "--at", r.at, "--format", "json", r.campaignFile())
	out, m, err := r.child(ctx, s.cmd.Process.Pid, args...)
	if err != nil {
		_, _ = s.stop()
		return err
	}
	sum, perr := parseSendSummary(out)
	sent := sum.Counts["sent"]
	r.check(fmt.Sprintf("send %d @%v", n, lat), perr == nil && sent == want && sum.Status == "done",
		"status %q, sent %d, want %d; outcomes %v (%v)", sum.Status, sent, want, sum.Counts, perr)
	delivered, distinct, st, verr := verifySim(ctx, s.base)
	r.check(fmt.Sprintf("simulator %d @%v", n, lat), verr == nil && st.Sends == int64(want) && delivered == want && distinct == want && st.Overlaps == 0 && st.Dropped == 0,
		"delivered %d to %d distinct users (stats: %d sends, %d requests, %d overlaps, errors %v), want %d, no duplicates (%v)",
		delivered, distinct, st.Sends, st.Requests, st.Overlaps, st.Errors, want, verr)
	var consumed int
	cerr := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM grants WHERE status = 'consumed'").Scan(&consumed)
	r.check(fmt.Sprintf("ledger %d @%v", n, lat), cerr == nil && consumed == want, "%d grants consumed, want %d (%v)", consumed, want, cerr)
	if _, err := s.stop(); err != nil {
		return err
	}
	batches := (n + r.camp.BatchSize - 1) / max(1, r.camp.BatchSize)
	r.add(Row{Phase: "send", N: n, Latency: lat, Concurrency: conc, Count: sent, Unit: "msgs/s", P50: sum.SendP50, P99: sum.SendP99,
		SimCPU: m.SimCPU, Batches: batches, WireRate: wireRate,
		Note: fmt.Sprintf("engine run %s, %.0f msgs/s", sum.Duration.Round(time.Millisecond), sum.PerSecond)}, m)
	return nil
}

// verifySim reads the simulator's counters and streams its delivered
// messages, counting them and their distinct recipients.
func verifySim(ctx context.Context, base string) (delivered, distinct int, st wxsim.Stats, err error) {
	if err = getJSON(ctx, base+"/admin/stats", func(dec *json.Decoder) error { return dec.Decode(&st) }); err != nil {
		return 0, 0, st, err
	}
	seen := map[string]struct{}{}
	err = getJSON(ctx, base+"/admin/messages", func(dec *json.Decoder) error {
		for _, want := range []any{json.Delim('{'), "messages", json.Delim('[')} {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			if tok != want {
				return fmt.Errorf("admin/messages: unexpected %v", tok)
			}
		}
		for dec.More() {
			var m struct {
				ToUser string `json:"touser"`
			}
			if err := dec.Decode(&m); err != nil {
				return err
			}
			delivered++
			seen[m.ToUser] = struct{}{}
		}
		return nil
	})
	return delivered, len(seen), st, err
}

func getJSON(ctx context.Context, url string, fn func(*json.Decoder) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bench: simulator: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("bench: simulator: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: simulator: %s: HTTP %d", url, resp.StatusCode)
	}
	if err := fn(json.NewDecoder(bufio.NewReaderSize(resp.Body, 64<<10))); err != nil {
		return fmt.Errorf("bench: simulator: %w", err)
	}
	return nil
}

// parseSendSummary decodes the last line of `send --format json`.
func parseSendSummary(out []byte) (engine.Summary, error) {
	out = bytes.TrimSpace(out)
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	var v struct {
		Summary *engine.Summary `json:"summary"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return engine.Summary{}, fmt.Errorf("bench: send summary: %w", err)
	}
	if v.Summary == nil {
		return engine.Summary{}, errors.New("bench: send summary: no summary line")
	}
	return *v.Summary, nil
}

// preview is what parsePreview reads from `preview --format table`.
type preview struct {
	Looked   int
	Duration string
	Counts   map[string]int
}

var (
	statusLine   = regexp.MustCompile(`grants looked at (\d+)\s+duration (\S+)`)
	outcomeEntry = regexp.MustCompile(`^([a-z]+) (\d+)$`)
)

// parsePreview reads the summary of `preview --format table`: the
// "grants looked at N  duration D" and "outcomes: sent N, skipped M" lines.
func parsePreview(out []byte) (preview, error) {
	p := preview{Counts: map[string]int{}}
	var gotStatus, gotOutcomes bool
	for _, line := range strings.Split(string(out), "\n") {
		if m := statusLine.FindStringSubmatch(line); m != nil && !gotStatus {
			n, err := strconv.Atoi(m[1])
			if err != nil {
				return p, fmt.Errorf("bench: preview: %q: %w", line, err)
			}
			p.Looked, p.Duration, gotStatus = n, m[2], true
			continue
		}
		rest, ok := strings.CutPrefix(line, "outcomes:")
		if !ok || gotOutcomes {
			continue
		}
		gotOutcomes = true
		rest = strings.TrimSpace(rest)
		if rest == "" {
			continue
		}
		for _, part := range strings.Split(rest, ",") {
			m := outcomeEntry.FindStringSubmatch(strings.TrimSpace(part))
			if m == nil {
				return p, fmt.Errorf("bench: preview: outcome %q", part)
			}
			n, err := strconv.Atoi(m[2])
			if err != nil {
				return p, fmt.Errorf("bench: preview: outcome %q: %w", part, err)
			}
			p.Counts[m[1]] += n
		}
	}
	if !gotStatus || !gotOutcomes {
		return p, errors.New("bench: preview: no summary in the output")
	}
	return p, nil
}
