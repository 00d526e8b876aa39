package api

import (
	"context"
	"sync"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// BatchSubscriptions is an optional extension of Subscriptions: a store
// that records many results in one transaction. When Deps.Subs implements
// it, concurrent POST /v1/subscriptions requests are grouped into one
// call (group commit), which is what lets a database that commits a few
// hundred transactions a second take thousands of results a second.
type BatchSubscriptions interface {
	// RecordSubscriptions records rs in order in one transaction and
	// returns one result per element. A requestId already stored, or
	// repeated earlier in rs, is reported with Duplicate set. On error
	// nothing is recorded.
	RecordSubscriptions(ctx context.Context, rs []wxcampaign.SubscriptionResult, at time.Time, kindOf func(string) wxcampaign.Kind) ([]store.RecordResult, error)
}

// Group-commit bounds.
const (
	maxBatch       = 256              // results per transaction
	maxWriters     = 4                // transactions in flight at once
	batchTxTimeout = 30 * time.Second // one batch; independent of any one request
)

// batcher groups concurrent results into batches without a background
// goroutine: a request that finds fewer than maxWriters writers at work
// becomes one, and writes queued batches until the queue is empty.
type batcher struct {
	one    Subscriptions
	many   BatchSubscriptions
	kindOf func(string) wxcampaign.Kind

	mu      sync.Mutex
	queue   []*pending
	writers int
}

type pending struct {
	r    wxcampaign.SubscriptionResult
	at   time.Time
	res  store.RecordResult
	err  error
	done chan struct{}
}

// record queues r and waits for its result or for ctx. When ctx ends first
// the result may still be recorded: a retry with the same requestId then
// reports it as a duplicate.
func (b *batcher) record(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (store.RecordResult, error) {
	p := &pending{r: r, at: at, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, p)
	lead := b.writers < maxWriters
	if lead {
		b.writers++
	}
	b.mu.Unlock()
	if lead {
		b.drain(ctx)
	}
	select {
	case <-p.done:
		return p.res, p.err
	case <-ctx.Done():
		return store.RecordResult{}, ctx.Err()
	}
}

// drain writes queued batches until the queue is empty.
func (b *batcher) drain(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	defer func() {
		b.mu.Lock()
		b.writers--
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.mu.Unlock()
			return
		}
		batch := make([]*pending, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		b.write(ctx, batch)
	}
}

func (b *batcher) write(ctx context.Context, batch []*pending) {
	defer func() {
		// Every waiter gets an answer, also when the store panics (the
		// panic goes on to the leader's handler and becomes its 500).
		v := recover()
		for _, p := range batch {
			if v != nil && p.err == nil {
				p.err = wxcampaign.Errorf(wxcampaign.EINTERNAL, "store panicked")
			}
			close(p.done)
		}
		if v != nil {
			panic(v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, batchTxTimeout)
	defer cancel()
	rs := make([]wxcampaign.SubscriptionResult, len(batch))
	for i, p := range batch {
		rs[i] = p.r
	}
	// One clock reading per batch: the results arrived within milliseconds.
	out, err := b.many.RecordSubscriptions(ctx, rs, batch[0].at, b.kindOf)
	if err == nil && len(out) == len(batch) {
		for i, p := range batch {
			p.res = out[i]
		}
		return
	}
	// The batch failed as a whole (nothing was recorded): record one by one
	// so that only the result at fault fails.
	for _, p := range batch {
		p.res, p.err = b.one.RecordSubscription(ctx, p.r, p.at, b.kindOf)
	}
}
