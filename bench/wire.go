package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat"
)

// wireRun measures the wire ceiling of a send phase: a fresh simulator
// with the same latency, loaded by a Go client (wechat.Client, as the
// engine uses) with the same concurrency, no database and no engine. It
// sends up to count messages to distinct openids, for at most
// Config.Wire.
func (r *runner) wireRun(ctx context.Context, n int, lat time.Duration, count int) (Row, error) {
	conc := r.concurrency(lat)
	r.logf("wire ceiling at latency %v, concurrency %d, up to %d messages or %v", lat, conc, count, r.cfg.Wire)
	s, err := r.startSim(ctx, lat)
	if err != nil {
		return Row{}, err
	}
	client, err := wechat.New(wechat.Config{BaseURL: s.base, AppID: appID, Secret: appSecret, Timeout: 10 * time.Second})
	if err != nil {
		_, _ = s.stop()
		return Row{}, fmt.Errorf("bench: wire: %w", err)
	}
	// Fetch the token before measuring, as the engine's run does.
	if _, err := client.Send(ctx, wireMessage(r.camp.Template.ID, -1)); err != nil {
		_, _ = s.stop()
		return Row{}, fmt.Errorf("bench: wire: first send: %w", err)
	}
	deadline := time.Now().Add(r.cfg.Wire)
	var next, sent, failed atomic.Int64
	lats := make([][]time.Duration, conc)
	cpu0, sim0 := selfCPU(), serverCPU(s.cmd.Process.Pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				t0 := time.Now()
				_, err := client.Send(ctx, wireMessage(r.camp.Template.ID, int(i)))
				lats[w] = append(lats[w], time.Since(t0))
				if err != nil {
					failed.Add(1)
					continue
				}
				sent.Add(1)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	m := measure{Wall: wall, CPU: selfCPU() - cpu0}
	simCPU := serverCPU(s.cmd.Process.Pid) - sim0
	if _, err := s.stop(); err != nil {
		return Row{}, err
	}
	all := slices.Concat(lats...)
	slices.Sort(all)
	row := Row{Phase: "wire", N: n, Latency: lat, Concurrency: conc, Count: int(sent.Load()), Unit: "msgs/s", SimCPU: simCPU,
		Note: fmt.Sprintf("Go client and simulator only; %d failed", failed.Load())}
	if len(all) > 0 {
		row.P50, row.P99 = all[(len(all)-1)/2], all[(len(all)*99+99)/100-1]
	}
	r.check(fmt.Sprintf("wire %d @%v", n, lat), failed.Load() == 0 && sent.Load() > 0, "%d sent, %d failed", sent.Load(), failed.Load())
	return r.add(row, m), nil
}

// wireMessage is a message of the benchmark's template to a distinct user
// (i < 0: the warm-up user), with the data the campaign renders.
func wireMessage(templateID string, i int) wechat.Message {
	return wechat.Message{ToUser: fmt.Sprintf("oWire%09d", i+1), TemplateID: templateID, Page: "pages/goods/detail?id=p000001",
		Data:  map[string]string{"thing1": "云南小粒咖啡豆 1号", "amount2": "¥16.72", "amount3": "¥20.90", "thing4": "降价了，快来看看"},
		State: "formal", Lang: "zh_CN"}
}
