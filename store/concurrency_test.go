package store_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// Environment of a child process of TestConcurrentConsume.
const (
	envChildDSN    = "WXC_STORE_CHILD_DSN"
	envChildHolder = "WXC_STORE_CHILD_HOLDER"
)

// consumeAll begins (the send_log row is the claim), sends (pretends) and
// finishes grants of template until none is available, the way the engine
// does, and returns the ids it consumed.
func consumeAll(ctx context.Context, db *store.DB, holder, template string, occ time.Time) ([]int64, error) {
	var mine []int64
	after := int64(rand.IntN(20000)) // start somewhere: more contention
	for {
		now := time.Now()
		page, err := db.ListAvailable(ctx, template, after, 250, now)
		if err != nil {
			return mine, err
		}
		if len(page) == 0 {
			if after == 0 {
				return mine, nil
			}
			after = 0
			continue
		}
		after = page[len(page)-1].ID
		ids := make([]int64, len(page))
		for i, g := range page {
			ids[i] = g.ID
		}
		atts := make([]store.Attempt, len(ids))
		for i, id := range ids {
			atts[i] = store.Attempt{Campaign: "conc", Occurrence: occ, GrantID: id, OpenID: "u", TemplateID: template, Holder: holder}
		}
		bs, err := db.BeginSends(ctx, store.Mark{At: now, Attempts: atts})
		if err != nil {
			return mine, err
		}
		var begun []int64
		for i, b := range bs {
			if b.Marked {
				begun = append(begun, atts[i].GrantID)
			}
		}
		if len(begun) == 0 {
			continue
		}
		res := make([]store.Result, len(begun))
		for i, id := range begun {
			res[i] = store.Result{Campaign: "conc", Occurrence: occ, GrantID: id, Holder: holder, Outcome: wxcampaign.Sent, Reason: wxcampaign.ReasonOK, MsgID: id, Consume: true, Retain: true}
		}
		if _, err := db.FinishSends(ctx, store.Finish{At: time.Now(), Results: res}); err != nil {
			return mine, err
		}
		mine = append(mine, begun...)
	}
}

var concOcc = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// TestConcurrentConsume: 8 goroutines and 2 OS processes claim and
// consume the same 20,000 grants on MariaDB; every grant ends consumed
// exactly once, the send log has no duplicate, no deadlock leaks out.
func TestConcurrentConsume(t *testing.T) {
	ctx := context.Background()
	if dsn := os.Getenv(envChildDSN); dsn != "" { // child process
		db, err := store.Open(ctx, store.Config{Driver: store.MySQL, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ids, err := consumeAll(ctx, db, os.Getenv(envChildHolder), "A", concOcc)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for _, id := range ids {
			fmt.Fprintf(&b, "CONSUMED %d\n", id)
		}
		fmt.Print(b.String())
		return
	}
	n := 20000
	if testing.Short() {
		n = 4000
	}
	cfg := storetest.MySQL(t)
	db := storetest.Open(t, cfg)
	seed(t, db, "A", n)

	var mu sync.Mutex
	counts := map[int64]int{}
	add := func(ids []int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			counts[id]++
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for p := range 2 {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestConcurrentConsume$", "-test.v")
			cmd.Env = append(os.Environ(), envChildDSN+"="+cfg.DSN, envChildHolder+"=proc"+strconv.Itoa(p))
			out, err := cmd.Output()
			if err != nil {
				errs <- fmt.Errorf("process %d: %v\n%s", p, err, out)
				return
			}
			var ids []int64
			sc := bufio.NewScanner(strings.NewReader(string(out)))
			for sc.Scan() {
				if v, ok := strings.CutPrefix(sc.Text(), "CONSUMED "); ok {
					id, _ := strconv.ParseInt(v, 10, 64)
					ids = append(ids, id)
				}
			}
			t.Logf("process %d consumed %d", p, len(ids))
			add(ids)
		})
	}
	for g := range 8 {
		wg.Go(func() {
			ids, err := consumeAll(ctx, db, "goroutine"+strconv.Itoa(g), "A", concOcc)
			if err != nil {
				errs <- fmt.Errorf("goroutine %d: %w", g, err)
			}
			add(ids)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err) // a deadlock or lock wait error leaking out lands here
	}
	if len(counts) != n {
		t.Errorf("%d distinct grants consumed, want %d", len(counts), n)
	}
	for id, c := range counts {
		if c != 1 {
			t.Errorf("grant %d consumed %d times", id, c)
		}
	}
	x := db.SQLX()
	var consumed, rows, distinct, reserved int
	for q, dst := range map[string]*int{
		"SELECT COUNT(*) FROM grants WHERE status = 'consumed'":                                                                       &consumed,
		"SELECT COUNT(*) FROM send_log WHERE campaign = 'conc' AND status = 'sent'":                                                   &rows,
		"SELECT COUNT(DISTINCT grant_id) FROM send_log WHERE campaign = 'conc'":                                                       &distinct,
		"SELECT (SELECT COUNT(*) FROM grants WHERE status <> 'consumed') + (SELECT COUNT(*) FROM send_log WHERE status = 'inflight')": &reserved,
	} {
		if err := x.GetContext(ctx, dst, q); err != nil {
			t.Fatal(err)
		}
	}
	if consumed != n || rows != n || distinct != n || reserved != 0 {
		t.Errorf("consumed %d, send_log rows %d (distinct grants %d), left over %d; want %d, %d, %d, 0", consumed, rows, distinct, reserved, n, n, n)
	}
}
