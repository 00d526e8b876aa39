package api_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
)

// batchSubs is a fakeSubs that also records batches, slowly, like a
// database whose commit takes a while.
type batchSubs struct {
	fakeSubs
	delay   time.Duration
	calls   atomic.Int64
	maxSize atomic.Int64
	inMu    sync.Mutex
	in, max int // batches in flight
}

func (b *batchSubs) RecordSubscriptions(ctx context.Context, rs []wxcampaign.SubscriptionResult, at time.Time) ([]wxcampaign.RecordResult, error) {
	b.inMu.Lock()
	b.in++
	b.max = max(b.max, b.in)
	b.inMu.Unlock()
	defer func() { b.inMu.Lock(); b.in--; b.inMu.Unlock() }()
	b.calls.Add(1)
	if n := int64(len(rs)); n > b.maxSize.Load() {
		b.maxSize.Store(n)
	}
	time.Sleep(b.delay)
	for _, r := range rs {
		if r.OpenID == "fails-the-batch" {
			return nil, errors.New("store: record subscriptions: constraint violated")
		}
	}
	out := make([]wxcampaign.RecordResult, len(rs))
	for i, r := range rs {
		var err error
		if out[i], err = b.fakeSubs.RecordSubscription(ctx, r, at); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RecordSubscription refuses the result that fails batches, as a store
// would refuse it alone.
func (b *batchSubs) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (wxcampaign.RecordResult, error) {
	if r.OpenID == "fails-the-batch" {
		return wxcampaign.RecordResult{}, wxcampaign.Errorf(wxcampaign.ECONFLICT, "constraint violated")
	}
	return b.fakeSubs.RecordSubscription(ctx, r, at)
}

func TestGroupCommit(t *testing.T) {
	subs := &batchSubs{delay: 20 * time.Millisecond}
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Subs = subs })
	const n = 300
	statuses := make([]int, n)
	bodies := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("gc-%d", i)
			openID := "o"
			switch {
			case i%10 == 9: // a concurrent repeat of the previous request
				id = fmt.Sprintf("gc-%d", i-1)
			case i == 150:
				openID = "fails-the-batch"
			}
			body := fmt.Sprintf(`{"openId":%q,"requestId":%q,"agreeTemplateIds":["T-price","T-long"]}`, openID, id)
			r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(body))
			statuses[i], bodies[i] = r.status, r.raw
		}()
	}
	wg.Wait()

	for i := 0; i < n; i++ {
		switch {
		case i == 150:
			if statuses[i] != 409 {
				t.Errorf("the result that fails its batch: %d %s, want 409", statuses[i], bodies[i])
			}
		case i%10 == 8 || i%10 == 9: // an original and its repeat: one created, one duplicate
			a, b := statuses[i-i%10+8], statuses[i-i%10+9]
			if !(a == 201 && b == 200 || a == 200 && b == 201) {
				t.Errorf("request %d and its repeat: %d and %d, want one 201 and one 200", i-i%10+8, a, b)
			}
		default:
			if statuses[i] != 201 || !strings.Contains(bodies[i], `"credits":1,"longTerm":1`) {
				t.Errorf("request %d: %d %s", i, statuses[i], bodies[i])
			}
		}
	}
	if got, want := len(subs.seen), n-n/10-1; got != want {
		t.Errorf("%d results stored, want %d", got, want)
	}
	calls := subs.calls.Load()
	t.Logf("%d requests in %d batches, largest %d, at most %d in flight", n, calls, subs.maxSize.Load(), subs.max)
	if calls >= n/2 || subs.maxSize.Load() < 2 {
		t.Errorf("%d batches for %d concurrent requests (largest %d): not grouped", calls, n, subs.maxSize.Load())
	}
	if subs.max > 4 {
		t.Errorf("%d batches in flight, want at most 4", subs.max)
	}
}

func TestGroupCommitPanic(t *testing.T) {
	subs := &batchSubs{}
	subs.hook = func(r wxcampaign.SubscriptionResult) {
		if r.RequestID == "boom" {
			panic("store exploded")
		}
	}
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Subs = subs })
	r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(`{"openId":"o","requestId":"boom","agreeTemplateIds":["T"]}`))
	if r.status != 500 {
		t.Fatalf("got %d %s, want 500", r.status, r.raw)
	}
	// The writer slot was given back: later requests are served.
	for i := 0; i < 10; i++ {
		r := e.do(t, "POST", "/v1/subscriptions", bearer(token), strings.NewReader(fmt.Sprintf(`{"openId":"o","requestId":"after-%d","agreeTemplateIds":["T"]}`, i)))
		if r.status != 201 {
			t.Fatalf("after the panic: %d %s", r.status, r.raw)
		}
	}
}
