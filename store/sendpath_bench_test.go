package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// sendBatch is the engine's batch size.
const sendBatch = 500

// sendSteps name the store calls of one batch, reported as <call>-ms/op.
// (finish includes the checkpoint: FinishSendsAndCheckpoint).
var sendSteps = []string{"list", "reserve", "caps", "begin", "finish"}

// BenchmarkSendPath runs the engine's store calls for one batch of 500
// one-time grants per op, the way a run does: ListAvailable, Reserve,
// TakeCaps (caps: a user_template and a user limit, every user new;
// nocaps: no call), BeginSends and FinishSendsAndCheckpoint (sent,
// distinct msgids, consumed). It reports grants/s and the mean time of each
// call per batch, and (MariaDB on this host) srv-µs/grant, the CPU of the
// server threads of the benchmark's connections per grant. inflight=2 (MySQL) runs two such loops at once on two
// templates, as a pipelined engine keeps several batches in flight. The
// grants are imported before the timer starts.
//
//	go test -run XXX -bench BenchmarkSendPath -benchtime 100x ./store/
func BenchmarkSendPath(b *testing.B) {
	for _, nc := range storetest.Drivers(b) {
		for _, caps := range []bool{false, true} {
			for _, inflight := range []int{1, 2} {
				if inflight > 1 && nc.Name == store.SQLite {
					continue // one writer: nothing to overlap
				}
				name := nc.Name + "/nocaps"
				if caps {
					name = nc.Name + "/caps"
				}
				if inflight > 1 {
					name += "/inflight=" + strconv.Itoa(inflight)
				}
				b.Run(name, func(b *testing.B) {
					// A fresh database per run of this function (b.N grows).
					fresh := storetest.NamedConfig{Name: nc.Name}
					benchSendPath(b, fresh.Open(b), caps, inflight)
				})
			}
		}
	}
}

func benchSendPath(b *testing.B, db *store.DB, caps bool, workers int) {
	ctx := context.Background()
	now := time.Now().UTC()
	occ := now.Truncate(time.Minute)
	limits := []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: 24 * time.Hour}, {Scope: store.ScopeUser, Max: 3, Window: 24 * time.Hour}}
	type worker struct {
		tmpl, campaign, holder string
		batches                int
		spent                  []time.Duration
	}
	ws := make([]*worker, workers)
	for w := range ws {
		ws[w] = &worker{tmpl: fmt.Sprint("tmpl-price-", w), campaign: fmt.Sprint("price-drop-", w), holder: fmt.Sprint("bench-", w),
			spent: make([]time.Duration, len(sendSteps))}
		for i := w; i < b.N; i += workers {
			ws[w].batches++
		}
		if _, ok, err := db.AcquireRun(ctx, ws[w].campaign, occ, ws[w].holder, now, now.Add(time.Hour)); err != nil || !ok {
			b.Fatalf("acquire run: %v %v", ok, err)
		}
		// Seed the worker's grants, users distinct across workers.
		n := ws[w].batches * sendBatch
		for lo := 0; lo < n; lo += 20000 {
			var buf bytes.Buffer
			for i := lo; i < min(lo+20000, n); i++ {
				s := strconv.Itoa(w) + "x" + strconv.Itoa(i)
				buf.WriteString(`{"openId":"oUpF8uMuAJO_M2pxb1Q9zNjW` + s + `","scene":"cart","busNo":"sku-` + s +
					`","extraVariableMap":{"price":100.5,"title":"Spring sale"},"agreeTemplateIds":["` + ws[w].tmpl + `"],"requestId":"bench-` + s + "\"}\n")
			}
			rep, err := db.Import(ctx, &buf, store.ImportOptions{BatchSize: 20000, Now: func() time.Time { return now }})
			if err != nil || rep.Credits != min(20000, n-lo) {
				b.Fatalf("seed: %+v %v", rep, err)
			}
		}
	}
	run := func(wk *worker, msgid int64) error {
		var after int64
		for range wk.batches {
			mark := time.Now()
			step := func(k int) {
				t := time.Now()
				wk.spent[k] += t.Sub(mark)
				mark = t
			}
			grants, err := db.ListAvailable(ctx, wk.tmpl, after, sendBatch, now)
			if err != nil || len(grants) != sendBatch {
				return fmt.Errorf("list: %d %v", len(grants), err)
			}
			step(0)
			after = grants[len(grants)-1].ID
			ids := make([]int64, len(grants))
			for j, g := range grants {
				ids[j] = g.ID
			}
			taken, err := db.Reserve(ctx, wk.holder, ids, now, now.Add(time.Minute))
			if err != nil || len(taken) != len(ids) {
				return fmt.Errorf("reserve: %d %v", len(taken), err)
			}
			step(1)
			if caps {
				reqs := make([]store.CapRequest, len(grants))
				for j, g := range grants {
					reqs[j] = store.CapRequest{Ref: fmt.Sprint(wk.campaign, "|", g.ID), OpenID: g.OpenID, TemplateID: g.TemplateID, Limits: limits}
				}
				res, err := db.TakeCaps(ctx, now, reqs)
				if err != nil || len(res) != len(reqs) || res[0] != nil || res[len(res)-1] != nil {
					return fmt.Errorf("take caps: %v %v", res, err)
				}
			}
			step(2)
			atts := make([]store.Attempt, len(grants))
			for j, g := range grants {
				atts[j] = store.Attempt{Campaign: wk.campaign, Occurrence: occ, GrantID: g.ID, OpenID: g.OpenID, TemplateID: g.TemplateID, Holder: wk.holder}
			}
			begun, err := db.BeginSends(ctx, now, atts)
			if err != nil || len(begun) != len(atts) {
				return fmt.Errorf("begin: %d %v", len(begun), err)
			}
			step(3)
			res := make([]store.Result, len(grants))
			for j, g := range grants {
				msgid++
				res[j] = store.Result{Campaign: wk.campaign, Occurrence: occ, GrantID: g.ID, Holder: wk.holder, Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK,
					MsgID: msgid, Consume: true, Retain: true}
			}
			if err := db.FinishSendsAndCheckpoint(ctx, now, res, wk.campaign, occ, wk.holder, after); err != nil {
				return err
			}
			step(4)
		}
		return nil
	}
	cpu0 := serverThreadsCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w, wk := range ws {
		wg.Go(func() { errs[w] = run(wk, int64(w)<<40) })
	}
	wg.Wait()
	b.StopTimer()
	if db.Driver() == store.MySQL && cpu0 != nil {
		if d, ok := connectionsCPU(ctx, db, cpu0); ok {
			b.ReportMetric(float64(d.Microseconds())/float64(sendBatch*b.N), "srv-µs/grant")
		}
	}
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	for k, name := range sendSteps {
		var sum time.Duration
		for _, wk := range ws {
			sum += wk.spent[k]
		}
		if sum > 0 && (k != 2 || caps) {
			b.ReportMetric(float64(sum.Microseconds())/1000/float64(b.N), name+"-ms/op")
		}
	}
	b.ReportMetric(float64(sendBatch*b.N)/b.Elapsed().Seconds(), "grants/s")
}

// serverThreadsCPU is the CPU time (user+system) of every thread of a local
// mariadbd or mysqld, by thread id, from /proc; nil when there is none.
func serverThreadsCPU() map[int]time.Duration {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil {
			continue
		}
		if c := strings.TrimSpace(string(comm)); c != "mariadbd" && c != "mysqld" {
			continue
		}
		tasks, err := os.ReadDir(filepath.Join("/proc", d.Name(), "task"))
		if err != nil {
			return nil
		}
		out := map[int]time.Duration{}
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "task", t.Name(), "stat"))
			if err != nil {
				continue
			}
			// After the parenthesised command, utime and stime are the
			// 12th and 13th fields, in clock ticks (100 Hz).
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) < 13 {
				continue
			}
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			out[tid] = time.Duration(ut+st) * 10 * time.Millisecond
		}
		return out
	}
	return nil
}

// connectionsCPU is the CPU the server threads of this benchmark's
// database's connections (information_schema.PROCESSLIST.TID, MariaDB)
// used since the snapshot before: the statements' own cost, without the
// InnoDB background threads and without other clients of the server.
func connectionsCPU(ctx context.Context, db *store.DB, before map[int]time.Duration) (time.Duration, bool) {
	var tids []int
	if err := db.SQLX().SelectContext(ctx, &tids, "SELECT TID FROM information_schema.PROCESSLIST WHERE DB = DATABASE()"); err != nil || len(tids) == 0 {
		return 0, false
	}
	after := serverThreadsCPU()
	var d time.Duration
	for _, tid := range tids {
		d += after[tid] - before[tid]
	}
	return d, true
}
