package store_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// sendBatch is the engine's batch size; markGroup the sends marked in
// flight together (the engine's group commit at concurrency 64, 0 ms).
const (
	sendBatch = 500
	markGroup = 64
)

// sendSteps name the store calls of one batch, reported as <call>-ms/op.
var sendSteps = []string{"list", "mark", "finish"}

// BenchmarkSendPath runs the engine's store calls for one batch of 500
// one-time grants per op, the way a run does: ListAvailable, BeginSends
// in groups of 64 (the marks, which take the caps: caps = a user_template
// and a user limit, every user new; nocaps: no limits) and FinishSends
// with the checkpoint (sent, distinct msgids, consumed). It reports
// grants/s, the mean time of each call per batch, row operations per
// message (rowops/msg: MariaDB's Handler_write + Handler_update +
// Handler_delete of the benchmark's connection; SQLite's total_changes())
// and, on MariaDB, statements per message (stmts/msg, the connection's
// Questions) and srv-µs/grant, the CPU of the server thread of the
// connection per grant. The store runs on one connection so that the
// counters are the benchmark's own. The grants are imported before the
// timer starts.
//
//	go test -run XXX -bench BenchmarkSendPath -benchtime 100x ./store/
func BenchmarkSendPath(b *testing.B) {
	for _, nc := range storetest.Drivers(b) {
		for _, caps := range []bool{false, true} {
			name := nc.Name + "/nocaps"
			if caps {
				name = nc.Name + "/caps"
			}
			b.Run(name, func(b *testing.B) {
				// A fresh database per run of this function (b.N grows),
				// on one connection.
				cfg := storetest.NamedConfig{Name: nc.Name}.Setup(b)
				cfg.MaxOpenConns = 1
				benchSendPath(b, storetest.Open(b, cfg), caps)
			})
		}
	}
}

func benchSendPath(b *testing.B, db *store.DB, caps bool) {
	ctx := context.Background()
	now := time.Now().UTC()
	occ := now.Truncate(time.Minute)
	var limits []store.Limit
	if caps {
		limits = []store.Limit{{Scope: store.ScopeUserTemplate, Max: 1, Window: 24 * time.Hour}, {Scope: store.ScopeUser, Max: 3, Window: 24 * time.Hour}}
	}
	const tmpl, campaign, holder = "tmpl-price", "price-drop", "bench"
	if _, ok, err := db.AcquireRun(ctx, campaign, occ, holder, now, now.Add(time.Hour)); err != nil || !ok {
		b.Fatalf("acquire run: %v %v", ok, err)
	}
	n := b.N * sendBatch
	for lo := 0; lo < n; lo += 20000 {
		var buf bytes.Buffer
		for i := lo; i < min(lo+20000, n); i++ {
			s := strconv.Itoa(i)
			buf.WriteString(`{"openId":"oUpF8uMuAJO_M2pxb1Q9zNjW` + s + `","scene":"cart","busNo":"sku-` + s +
				`","extraVariableMap":{"price":100.5,"title":"Spring sale"},"agreeTemplateIds":["` + tmpl + `"],"requestId":"bench-` + s + "\"}\n")
		}
		rep, err := db.Import(ctx, &buf, store.ImportOptions{BatchSize: 20000, Now: func() time.Time { return now }})
		if err != nil || rep.Credits != min(20000, n-lo) {
			b.Fatalf("seed: %+v %v", rep, err)
		}
	}
	spent := make([]time.Duration, len(sendSteps))
	run := func() error {
		var after, msgid int64
		for range b.N {
			mark := time.Now()
			step := func(k int) {
				t := time.Now()
				spent[k] += t.Sub(mark)
				mark = t
			}
			grants, err := db.ListAvailable(ctx, tmpl, after, sendBatch, now)
			if err != nil || len(grants) != sendBatch {
				return fmt.Errorf("list: %d %v", len(grants), err)
			}
			step(0)
			after = grants[len(grants)-1].ID
			atts := make([]store.Attempt, len(grants))
			for j, g := range grants {
				atts[j] = store.Attempt{Campaign: campaign, Occurrence: occ, GrantID: g.ID, OpenID: g.OpenID, TemplateID: g.TemplateID, Holder: holder, Limits: limits}
			}
			for lo := 0; lo < len(atts); lo += markGroup {
				part := atts[lo:min(lo+markGroup, len(atts))]
				bs, err := db.BeginSends(ctx, store.Mark{At: now, Attempts: part})
				if err != nil {
					return fmt.Errorf("mark: %v", err)
				}
				for _, m := range bs {
					if !m.Marked {
						return fmt.Errorf("mark: %+v", m)
					}
				}
			}
			step(1)
			res := make([]store.Result, len(grants))
			for j, g := range grants {
				msgid++
				res[j] = store.Result{Campaign: campaign, Occurrence: occ, GrantID: g.ID, Holder: holder, Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK,
					MsgID: msgid, Consume: true, Retain: true}
			}
			if _, err := db.FinishSends(ctx, store.Finish{At: now, Results: res,
				Checkpoint: &store.Checkpoint{Campaign: campaign, Occurrence: occ, Holder: holder, LastGrantID: after}}); err != nil {
				return err
			}
			step(2)
		}
		return nil
	}
	c0, err := counters(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := serverThreadsCPU()
	b.ResetTimer()
	err = run()
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	msgs := float64(sendBatch * b.N)
	if db.Driver() == store.MySQL && cpu0 != nil {
		if d, ok := connectionsCPU(ctx, db, cpu0); ok {
			b.ReportMetric(float64(d.Microseconds())/msgs, "srv-µs/grant")
		}
	}
	c1, err := counters(ctx, db)
	if err != nil {
		b.Fatal(err)
	}
	// Between the two snapshots: the workload and one reading query.
	b.ReportMetric(float64(c1.rowOps-c0.rowOps-c0.selfOps)/msgs, "rowops/msg")
	if db.Driver() == store.MySQL {
		b.ReportMetric(float64(c1.stmts-c0.stmts-c0.selfStmts)/msgs, "stmts/msg")
	}
	for k, name := range sendSteps {
		b.ReportMetric(float64(spent[k].Microseconds())/1000/float64(b.N), name+"-ms/op")
	}
	b.ReportMetric(msgs/b.Elapsed().Seconds(), "grants/s")
}

// sendCounters are the write counters of the store's only connection, and
// what reading them costs.
type sendCounters struct{ rowOps, stmts, selfOps, selfStmts int64 }

// counters reads them: on MariaDB the session's Handler_write, _update and
// _delete and Questions, read twice to know what one reading costs (its
// temporary table's writes); on SQLite total_changes().
func counters(ctx context.Context, db *store.DB) (sendCounters, error) {
	if db.Driver() != store.MySQL {
		var n int64
		err := db.SQLX().GetContext(ctx, &n, "SELECT total_changes()")
		return sendCounters{rowOps: n}, err
	}
	read := func() (sendCounters, error) {
		var rows []struct {
			Name  string `db:"Variable_name"`
			Value int64  `db:"Value"`
		}
		if err := db.SQLX().SelectContext(ctx, &rows, "SHOW SESSION STATUS WHERE Variable_name IN ('Handler_write', 'Handler_update', 'Handler_delete', 'Questions')"); err != nil {
			return sendCounters{}, err
		}
		var c sendCounters
		for _, r := range rows {
			if r.Name == "Questions" {
				c.stmts = r.Value
			} else {
				c.rowOps += r.Value
			}
		}
		return c, nil
	}
	a, err := read()
	if err != nil {
		return a, err
	}
	b, err := read()
	if err != nil {
		return b, err
	}
	b.selfOps, b.selfStmts = b.rowOps-a.rowOps, b.stmts-a.stmts
	return b, nil
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
