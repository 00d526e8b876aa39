package engine

import (
	"context"
	"sync"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
)

// markLinger is how long the marker waits for more sends to join a group
// before it commits: the sends starting within it share one statement and
// one commit.
const markLinger = time.Millisecond

// marker marks a run's sends in flight just before their requests are
// written, group committed: a worker about to send asks for its mark and
// waits; the sends asked for while a commit is under way (or within
// markLinger of the first) are marked together by one store.BeginSends,
// which also takes their caps. After a crash only marked sends can be in
// doubt, and at most one per worker was marked and not yet answered.
type marker struct {
	r      *run
	ctx    context.Context
	limits []store.Limit
	max    int
	reqs   chan markReq
	done   chan struct{}
}

type markReq struct {
	it  *item
	out chan markRes
}

type markRes struct {
	b   store.Begun
	err error
}

func (r *run) newMarker(ctx context.Context) *marker {
	m := &marker{r: r, ctx: context.WithoutCancel(ctx), limits: r.limits(), max: r.e.cfg.Concurrency,
		reqs: make(chan markReq, r.e.cfg.Concurrency), done: make(chan struct{})}
	go m.loop()
	return m
}

// mark marks it in flight (or tells why it must not be sent). The mark is
// committed when it returns.
func (m *marker) mark(it *item) (store.Begun, error) {
	out := make(chan markRes, 1)
	m.reqs <- markReq{it: it, out: out}
	res := <-out
	return res.b, res.err
}

// close stops the marker once every worker is done.
func (m *marker) close() {
	close(m.reqs)
	<-m.done
}

func (m *marker) loop() {
	defer close(m.done)
	var t *time.Timer
	for q := range m.reqs {
		group := []markReq{q}
		if t == nil {
			t = time.NewTimer(markLinger)
		} else {
			t.Reset(markLinger)
		}
	collect:
		for len(group) < m.max {
			select {
			case q, ok := <-m.reqs:
				if !ok {
					break collect
				}
				group = append(group, q)
			case <-t.C:
				break collect
			}
		}
		t.Stop()
		m.commit(group)
	}
}

// commit marks one group. The store call is not cancelled by the run's
// context: a mark whose commit was cut short could be written and never
// sent, and it would then count as a send in doubt.
func (m *marker) commit(group []markReq) {
	r, e := m.r, m.r.e
	atts := make([]store.Attempt, len(group))
	for i, q := range group {
		atts[i] = store.Attempt{Campaign: r.c.Name, Occurrence: r.occ, GrantID: q.it.g.ID, OpenID: q.it.g.OpenID,
			TemplateID: r.c.Template.ID, Holder: r.holder, Limits: m.limits}
	}
	var got []store.Begun
	// One token for every try: a retry after an error that left the
	// commit unknown recognises the rows the first try wrote.
	mk := store.Mark{At: e.cfg.Now(), Token: store.NewMarkToken(), Attempts: atts}
	r.capMu.Lock()
	err := e.retry(m.ctx, "mark sends", func() error {
		var err error
		got, err = e.store.BeginSends(m.ctx, mk)
		return err
	})
	for _, q := range group {
		r.unpend(q.it)
	}
	r.capMu.Unlock()
	for i, q := range group {
		if err != nil {
			q.out <- markRes{err: err}
			continue
		}
		q.out <- markRes{b: got[i]}
	}
}

// holds keeps, per openid, until when no send may go to it: its last send
// may have arrived and WeChat may still be processing it.
type holds struct {
	mu    sync.Mutex
	until map[string]time.Time
}

func (h *holds) set(openid string, until time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.until == nil {
		h.until = map[string]time.Time{}
	}
	h.until[openid] = until
}

// held reports whether openid is held at now, and until when.
func (h *holds) held(openid string, now time.Time) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	until, ok := h.until[openid]
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(until) {
		delete(h.until, openid)
		return time.Time{}, false
	}
	return until, true
}
