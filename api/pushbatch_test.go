package api

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
)

// callLog is a Deliveries that records the size of every call and fails
// any call holding a cursed msgid.
type callLog struct {
	mu     sync.Mutex
	calls  []int
	seen   map[int64]bool
	cursed int64
}

func (c *callLog) RecordDeliveries(_ context.Context, _ time.Time, ds []store.Delivery) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, len(ds))
	for _, d := range ds {
		if d.MsgID == c.cursed {
			return 0, errors.New("cursed")
		}
	}
	n := 0
	for _, d := range ds {
		if !c.seen[d.MsgID] {
			c.seen[d.MsgID] = true
			n++
		}
	}
	return n, nil
}

// TestDeliveryBatcher queues pushes while every writer is busy, then lets
// one writer drain them: they go in one call, each push gets its answer,
// and a failing batch is retried push by push so only the bad one fails.
func TestDeliveryBatcher(t *testing.T) {
	for _, tt := range []struct {
		name      string
		cursed    int64
		wantCalls []int
	}{
		{"one batch", 0, []int{12}},
		{"a failing batch falls back to one call per push", 3, []int{12, 2, 2, 2, 2, 2, 2}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			log := &callLog{seen: map[int64]bool{}, cursed: tt.cursed}
			b := newDeliveryBatcher(log)
			b.writers = maxWriters // every writer busy: requests queue
			const pushes = 6
			type result struct {
				n   int
				err error
			}
			out := make([]result, pushes)
			var wg sync.WaitGroup
			for i := range pushes {
				wg.Go(func() {
					ds := []store.Delivery{{MsgID: int64(2*i + 1)}, {MsgID: int64(2*i + 2)}}
					if i == 5 {
						ds[1].MsgID = 1 // a repeat of push 0's first msgid
					}
					n, err := b.record(context.Background(), push{ds: ds})
					out[i] = result{n, err}
				})
			}
			for deadline := time.Now().Add(5 * time.Second); ; {
				b.mu.Lock()
				queued := len(b.queue)
				b.mu.Unlock()
				if queued == pushes {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d pushes queued, want %d", queued, pushes)
				}
				time.Sleep(time.Millisecond)
			}
			b.drain(context.Background()) // as a writer finishing its batch would
			wg.Wait()
			if b.writers != maxWriters-1 || len(b.queue) != 0 {
				t.Errorf("writers %d, queue %d after drain", b.writers, len(b.queue))
			}
			if len(log.calls) != len(tt.wantCalls) {
				t.Fatalf("calls %v, want %v", log.calls, tt.wantCalls)
			}
			for i := range log.calls {
				if log.calls[i] != tt.wantCalls[i] {
					t.Fatalf("calls %v, want %v", log.calls, tt.wantCalls)
				}
			}
			total := 0
			for i, r := range out {
				bad := tt.cursed != 0 && (int64(2*i+1) == tt.cursed || int64(2*i+2) == tt.cursed)
				if (r.err != nil) != bad {
					t.Errorf("push %d: err %v, want failure %v", i, r.err, bad)
				}
				total += r.n
			}
			want := 11 // 12 msgids, one repeated
			if tt.cursed != 0 {
				want = 9 // push 1 (msgids 3, 4) failed
			}
			if total != want || len(log.seen) != want {
				t.Errorf("%d new reported, %d stored, want %d", total, len(log.seen), want)
			}
		})
	}
}
