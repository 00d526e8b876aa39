package api

import (
	"context"
	"sync"
	"time"

	"github.com/wxcampaign/wxcampaign"
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
	RecordSubscriptions(ctx context.Context, rs []wxcampaign.SubscriptionResult, at time.Time) ([]wxcampaign.RecordResult, error)
}

// Group-commit bounds.
const (
	maxBatch         = 256              // subscription results per transaction
	maxDeliveryBatch = 500              // delivery events per transaction
	maxWriters       = 4                // transactions in flight at once, per kind
	batchTxTimeout   = 30 * time.Second // one batch; independent of any one request
)

// groupCommit groups the writes of concurrent requests into batches,
// without a background goroutine: a request that finds fewer than
// maxWriters writers at work becomes one, and writes queued batches until
// the queue is empty. A batch that fails as a whole (nothing written) is
// written again item by item, so that only the item at fault fails.
type groupCommit[T, R any] struct {
	max    int         // weight of a batch
	weight func(T) int // an item's weight; nil: 1
	many   func(ctx context.Context, batch []T) ([]R, error)
	one    func(ctx context.Context, item T) (R, error)

	mu      sync.Mutex
	queue   []*waiter[T, R]
	writers int
}

type waiter[T, R any] struct {
	in   T
	out  R
	err  error
	done chan struct{}
}

func (g *groupCommit[T, R]) weigh(in T) int {
	if g.weight == nil {
		return 1
	}
	return g.weight(in)
}

// record queues in and waits for its result or for ctx. When ctx ends
// first the item may still be written: the writes are idempotent (a
// repeated requestId or msgid is a no-op).
func (g *groupCommit[T, R]) record(ctx context.Context, in T) (R, error) {
	w := &waiter[T, R]{in: in, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	lead := g.writers < maxWriters
	if lead {
		g.writers++
	}
	g.mu.Unlock()
	if lead {
		g.drain(ctx)
	}
	select {
	case <-w.done:
		return w.out, w.err
	case <-ctx.Done():
		var zero R
		return zero, ctx.Err()
	}
}

// drain writes queued batches until the queue is empty.
func (g *groupCommit[T, R]) drain(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	defer func() {
		g.mu.Lock()
		g.writers--
		g.mu.Unlock()
	}()
	for {
		g.mu.Lock()
		n, size := 0, 0
		for n < len(g.queue) && (n == 0 || size+g.weigh(g.queue[n].in) <= g.max) {
			size += g.weigh(g.queue[n].in)
			n++
		}
		if n == 0 {
			g.mu.Unlock()
			return
		}
		batch := make([]*waiter[T, R], n)
		copy(batch, g.queue)
		g.queue = append(g.queue[:0], g.queue[n:]...)
		g.mu.Unlock()
		g.write(ctx, batch)
	}
}

func (g *groupCommit[T, R]) write(ctx context.Context, batch []*waiter[T, R]) {
	defer func() {
		// Every waiter gets an answer, also when the store panics (the
		// panic goes on to the leader's handler and becomes its 500).
		v := recover()
		for _, w := range batch {
			if v != nil && w.err == nil {
				w.err = wxcampaign.Errorf(wxcampaign.EINTERNAL, "store panicked")
			}
			close(w.done)
		}
		if v != nil {
			panic(v)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, batchTxTimeout)
	defer cancel()
	in := make([]T, len(batch))
	for i, w := range batch {
		in[i] = w.in
	}
	out, err := g.many(ctx, in)
	if err == nil && len(out) == len(batch) {
		for i, w := range batch {
			w.out = out[i]
		}
		return
	}
	for _, w := range batch {
		w.out, w.err = g.one(ctx, w.in)
	}
}

// subscription is one POST /v1/subscriptions result and its arrival time.
type subscription struct {
	r  wxcampaign.SubscriptionResult
	at time.Time
}

func newSubscriptionBatcher(one Subscriptions, many BatchSubscriptions) *groupCommit[subscription, wxcampaign.RecordResult] {
	return &groupCommit[subscription, wxcampaign.RecordResult]{
		max: maxBatch,
		many: func(ctx context.Context, batch []subscription) ([]wxcampaign.RecordResult, error) {
			rs := make([]wxcampaign.SubscriptionResult, len(batch))
			for i, s := range batch {
				rs[i] = s.r
			}
			// One clock reading per batch: the results arrived within milliseconds.
			return many.RecordSubscriptions(ctx, rs, batch[0].at)
		},
		one: func(ctx context.Context, s subscription) (wxcampaign.RecordResult, error) {
			return one.RecordSubscription(ctx, s.r, s.at)
		},
	}
}

// push is the delivery events of one message push and its arrival time.
type push struct {
	ds []wxcampaign.Delivery
	at time.Time
}

// newDeliveryBatcher groups the deliveries of concurrent pushes into one
// RecordDeliveries call: WeChat pushes one event per delivered message, so
// a campaign sending a thousand messages a second gets a thousand pushes a
// second.
func newDeliveryBatcher(d Deliveries) *groupCommit[push, int] {
	return &groupCommit[push, int]{
		max:    maxDeliveryBatch,
		weight: func(p push) int { return len(p.ds) },
		many: func(ctx context.Context, batch []push) ([]int, error) {
			var all []wxcampaign.Delivery
			for _, p := range batch {
				all = append(all, p.ds...)
			}
			// The deliveries of one batch arrived within milliseconds: one stamp.
			n, err := d.RecordDeliveries(ctx, batch[0].at, all)
			if err != nil {
				return nil, err
			}
			// The store counts new rows for the whole batch only: credit them
			// to the pushes in order (the split feeds statistics, nothing else).
			out := make([]int, len(batch))
			for i, p := range batch {
				out[i] = min(n, len(p.ds))
				n -= out[i]
			}
			return out, nil
		},
		one: func(ctx context.Context, p push) (int, error) {
			return d.RecordDeliveries(ctx, p.at, p.ds)
		},
	}
}
