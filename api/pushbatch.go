package api

import (
	"context"
	"sync"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

// Group-commit bounds of delivery events.
const maxDeliveryBatch = 500 // deliveries per transaction

// deliveryBatcher groups the deliveries of concurrent pushes into one
// RecordDeliveries call, as batcher does for subscriptions: WeChat pushes
// one event per delivered message, so a campaign sending a thousand
// messages a second gets a thousand pushes a second. A request that finds
// fewer than maxWriters writers at work becomes one and writes queued
// batches until the queue is empty; there is no background goroutine.
type deliveryBatcher struct {
	d Deliveries

	mu      sync.Mutex
	queue   []*pendingDeliveries
	writers int
}

type pendingDeliveries struct {
	ds   []store.Delivery
	at   time.Time
	n    int // new deliveries among ds
	err  error
	done chan struct{}
}

// record queues ds and waits for them to be stored or for ctx. When ctx
// ends first they may still be stored: a repeated push is a no-op.
func (b *deliveryBatcher) record(ctx context.Context, at time.Time, ds []store.Delivery) (int, error) {
	p := &pendingDeliveries{ds: ds, at: at, done: make(chan struct{})}
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
		return p.n, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// drain writes queued batches until the queue is empty.
func (b *deliveryBatcher) drain(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	defer func() {
		b.mu.Lock()
		b.writers--
		b.mu.Unlock()
	}()
	for {
		b.mu.Lock()
		n, size := 0, 0
		for n < len(b.queue) && (n == 0 || size+len(b.queue[n].ds) <= maxDeliveryBatch) {
			size += len(b.queue[n].ds)
			n++
		}
		if n == 0 {
			b.mu.Unlock()
			return
		}
		batch := make([]*pendingDeliveries, n)
		copy(batch, b.queue)
		b.queue = append(b.queue[:0], b.queue[n:]...)
		b.mu.Unlock()
		b.write(ctx, batch, size)
	}
}

func (b *deliveryBatcher) write(ctx context.Context, batch []*pendingDeliveries, size int) {
	defer func() {
		// Every waiter gets an answer, also when the store panics.
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
	if len(batch) == 1 {
		p := batch[0]
		p.n, p.err = b.d.RecordDeliveries(ctx, p.at, p.ds)
		return
	}
	all := make([]store.Delivery, 0, size)
	for _, p := range batch {
		all = append(all, p.ds...)
	}
	// The deliveries of one batch arrived within milliseconds: one stamp.
	n, err := b.d.RecordDeliveries(ctx, batch[0].at, all)
	if err == nil {
		// The store counts new rows for the whole batch only: credit them
		// to the pushes in order (the split feeds statistics, nothing else).
		for _, p := range batch {
			p.n = min(n, len(p.ds))
			n -= p.n
		}
		return
	}
	// The batch failed as a whole (nothing was stored): store push by push
	// so that only the one at fault fails. Idempotent by msgid.
	for _, p := range batch {
		p.n, p.err = b.d.RecordDeliveries(ctx, p.at, p.ds)
	}
}
