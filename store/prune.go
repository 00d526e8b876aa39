package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// PruneOptions says what Prune deletes.
type PruneOptions struct {
	// Before: history older than this goes (send log, delivery events,
	// subscription events and request ids, used-up and revoked grants,
	// finished runs, ended pauses). Required.
	Before time.Time
	// CapsBefore: a send's cap take (its send_log row, when a limit counts
	// it) goes only when older than this. It must be older than the start
	// of the longest limit window in use; zero means Before.
	CapsBefore time.Time
	// Batch is the number of rows one transaction deletes; default 1000.
	Batch int
	// Pause is the wait between two transactions, which lets the sends
	// take the write lock (SQLite has one writer); default none.
	Pause time.Duration
}

// PruneReport counts the rows Prune deleted, per table.
type PruneReport struct {
	SendLog              int64 `json:"send_log"`
	Deliveries           int64 `json:"deliveries"`
	SubscriptionEvents   int64 `json:"subscription_events"`
	SubscriptionRequests int64 `json:"subscription_requests"`
	Grants               int64 `json:"grants"`
	Runs                 int64 `json:"runs"`
	Pauses               int64 `json:"pauses"`
	PopupEvents          int64 `json:"popup_events"`
	Holdouts             int64 `json:"holdouts"`
}

// Total is the number of rows deleted.
func (r PruneReport) Total() int64 {
	return r.SendLog + r.Deliveries + r.SubscriptionEvents + r.SubscriptionRequests + r.Grants + r.Runs + r.Pauses +
		r.PopupEvents + r.Holdouts
}

// String lists the counts, table by table.
func (r PruneReport) String() string {
	return fmt.Sprintf("send_log %d, deliveries %d, subscription_events %d, subscription_requests %d, grants %d, runs %d, pauses %d, popup_events %d, holdouts %d",
		r.SendLog, r.Deliveries, r.SubscriptionEvents, r.SubscriptionRequests, r.Grants, r.Runs, r.Pauses, r.PopupEvents, r.Holdouts)
}

// Prune deletes history older than opt.Before that nothing needs any more,
// in small transactions (opt.Batch rows each) so that it never holds up
// sending for long. It keeps everything a run or a limit can still read:
//   - a send_log row in flight or not finished, and, for a grant still
//     active (long-term), the latest sent or unknown row per campaign,
//     which "repeat: once" reads;
//   - active grants and grants with a send in flight;
//   - a send_log row counted by a limit (its scopes: the send's cap take)
//     newer than opt.CapsBefore (an open window);
//   - the latest run of each campaign (the misfire policy reads it) and
//     runs not done;
//   - deliveries of an openid and template with a send in flight;
//   - the latest popup event of each openid and template (a ban stays a
//     ban in the balances and offers).
//
// Rows are found in primary key order, which follows time; a row written
// out of order is pruned by a later call. On error the report counts what
// was deleted so far.
func (db *DB) Prune(ctx context.Context, opt PruneOptions) (PruneReport, error) {
	var rep PruneReport
	if opt.Before.IsZero() {
		return rep, errors.New("store: prune: no cut-off time")
	}
	if opt.CapsBefore.IsZero() {
		opt.CapsBefore = opt.Before
	}
	if opt.Batch <= 0 {
		opt.Batch = 1000
	}
	p := &pruner{db: db, opt: opt}
	steps := []struct {
		name string
		n    *int64
		fn   func(context.Context) (int64, error)
	}{
		{"send_log", &rep.SendLog, p.sendLog},
		{"grants", &rep.Grants, p.grants},
		{"subscription_events", &rep.SubscriptionEvents, p.subscriptions},
		{"deliveries", &rep.Deliveries, p.deliveries},
		{"runs", &rep.Runs, p.runs},
		{"pauses", &rep.Pauses, p.pauses},
		{"popup_events", &rep.PopupEvents, p.popupEvents},
		{"holdouts", &rep.Holdouts, p.holdouts},
	}
	for _, s := range steps {
		n, err := s.fn(ctx)
		*s.n = n
		rep.SubscriptionRequests = p.requests
		if err != nil {
			return rep, fmt.Errorf("store: prune %s: %w", s.name, err)
		}
	}
	return rep, nil
}

type pruner struct {
	db       *DB
	opt      PruneOptions
	requests int64 // subscription request ids deleted
}

// del runs one delete transaction and waits opt.Pause after it.
func (p *pruner) del(ctx context.Context, name string, fn func(tx *sqlx.Tx) (int64, error)) (int64, error) {
	var n int64
	err := p.db.tx(ctx, name, func(tx *sqlx.Tx) error {
		var err error
		n, err = fn(tx)
		return err
	})
	if err != nil {
		return 0, err
	}
	if p.opt.Pause > 0 {
		select {
		case <-ctx.Done():
			return n, ctx.Err()
		case <-time.After(p.opt.Pause):
		}
	}
	return n, nil
}

// sendLog deletes finished send_log rows started before Before.
func (p *pruner) sendLog(ctx context.Context) (int64, error) {
	db, before := p.db, p.opt.Before
	var total, after int64
	for {
		var rows []struct {
			ID       int64  `db:"id"`
			Campaign string `db:"campaign"`
			GrantID  int64  `db:"grant_id"`
			Status   string `db:"status"`
			Started  dbTime `db:"started_at"`
			Finished dbTime `db:"finished_at"`
			Grant    string `db:"gstatus"`
			Scopes   int    `db:"scopes"`
		}
		if err := db.retry(ctx, "prune send log: scan", func() error {
			rows = rows[:0]
			return db.r.SelectContext(ctx, &rows, `SELECT s.id, s.campaign, s.grant_id, s.status, s.started_at, s.finished_at, COALESCE(g.status, '') AS gstatus, s.scopes
FROM send_log s LEFT JOIN grants g ON g.id = s.grant_id WHERE s.id > ? ORDER BY s.id LIMIT ?`, after, p.opt.Batch)
		}); err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		after = rows[len(rows)-1].ID
		var del []int64
		check := map[string]map[int64][]int64{} // campaign -> active grant -> row ids
		old := false
		for _, r := range rows {
			if !r.Started.Before(before) {
				continue
			}
			old = true
			if r.Finished.IsZero() || r.Status == StatusInflight {
				continue
			}
			if r.Scopes != 0 && !r.Started.Before(p.opt.CapsBefore) {
				continue // the send's cap take, inside an open limit window
			}
			if r.Grant == StatusActive && (r.Status == "sent" || r.Status == "unknown") {
				if check[r.Campaign] == nil {
					check[r.Campaign] = map[int64][]int64{}
				}
				check[r.Campaign][r.GrantID] = append(check[r.Campaign][r.GrantID], r.ID)
				continue
			}
			del = append(del, r.ID)
		}
		// An active grant's latest sent row per campaign stays: the
		// older ones go.
		for campaign, grants := range check {
			ids := make([]int64, 0, len(grants))
			for g := range grants {
				ids = append(ids, g)
			}
			var latest []struct {
				GrantID int64 `db:"grant_id"`
				ID      int64 `db:"id"`
			}
			args := append([]any{campaign}, int64Args(ids)...)
			if err := db.retry(ctx, "prune send log: latest", func() error {
				latest = latest[:0]
				return db.r.SelectContext(ctx, &latest, "SELECT grant_id, MAX(id) AS id FROM send_log WHERE campaign = ? AND grant_id IN "+in(len(ids))+
					" AND status IN ('sent', 'unknown', 'inflight') GROUP BY grant_id", args...)
			}); err != nil {
				return total, err
			}
			for _, l := range latest {
				for _, id := range grants[l.GrantID] {
					if id < l.ID {
						del = append(del, id)
					}
				}
			}
		}
		if len(del) > 0 {
			n, err := p.del(ctx, "prune send log", func(tx *sqlx.Tx) (int64, error) {
				return execN(ctx, tx, "DELETE FROM send_log WHERE id IN "+in(len(del))+" AND status <> 'inflight' AND finished_at IS NOT NULL", int64Args(del)...)
			})
			total += n
			if err != nil {
				return total, err
			}
		}
		if !old {
			return total, nil // the batch is past the cut-off
		}
	}
}

// grants deletes used-up and revoked grants (by the time they were used
// up, or granted when that is unknown) without a send in flight, and the
// request ids that recorded them.
func (p *pruner) grants(ctx context.Context) (int64, error) {
	db, before := p.db, p.opt.Before
	var total, after int64
	for {
		var rows []struct {
			ID       int64  `db:"id"`
			Status   string `db:"status"`
			Request  string `db:"request_id"`
			Granted  dbTime `db:"granted_at"`
			Consumed dbTime `db:"consumed_at"`
		}
		if err := db.retry(ctx, "prune grants: scan", func() error {
			rows = rows[:0]
			return db.r.SelectContext(ctx, &rows, "SELECT id, status, request_id, granted_at, consumed_at FROM grants WHERE id > ? ORDER BY id LIMIT ?", after, p.opt.Batch)
		}); err != nil {
			return total, err
		}
		request := make(map[int64]string, len(rows))
		for _, r := range rows {
			request[r.ID] = r.Request
		}
		if len(rows) == 0 {
			return total, nil
		}
		after = rows[len(rows)-1].ID
		var cand []int64
		old := false
		for _, r := range rows {
			if !r.Granted.Before(before) {
				continue
			}
			old = true
			used := r.Consumed.Time
			if used.IsZero() {
				used = r.Granted.Time
			}
			if (r.Status == StatusConsumed || r.Status == StatusRevoked) && used.Before(before) {
				cand = append(cand, r.ID)
			}
		}
		if len(cand) > 0 {
			var busy []int64
			if err := db.retry(ctx, "prune grants: in flight", func() error {
				busy = busy[:0]
				return db.r.SelectContext(ctx, &busy, "SELECT inflight_grant FROM send_log WHERE inflight_grant IN "+in(len(cand)), int64Args(cand)...)
			}); err != nil {
				return total, err
			}
			del := without(cand, busy)
			if len(del) > 0 {
				var reqs []any
				seen := map[string]bool{}
				for _, id := range del {
					if r := request[id]; !seen[r] {
						seen[r] = true
						reqs = append(reqs, r)
					}
				}
				var nr int64
				n, err := p.del(ctx, "prune grants", func(tx *sqlx.Tx) (int64, error) {
					n, err := execN(ctx, tx, "DELETE FROM grants WHERE id IN "+in(len(del))+" AND status IN ('consumed', 'revoked')", int64Args(del)...)
					if err != nil {
						return 0, err
					}
					nr, err = execN(ctx, tx, "DELETE FROM subscription_requests WHERE request_id IN "+in(len(reqs)), reqs...)
					return n, err
				})
				total += n
				p.requests += nr
				if err != nil {
					return total, err
				}
			}
		}
		if !old {
			return total, nil
		}
	}
}

func without(ids, drop []int64) []int64 {
	if len(drop) == 0 {
		return ids
	}
	skip := make(map[int64]bool, len(drop))
	for _, id := range drop {
		skip[id] = true
	}
	out := ids[:0:0]
	for _, id := range ids {
		if !skip[id] {
			out = append(out, id)
		}
	}
	return out
}

// subscriptions deletes subscription events (rejects, bans, filters) older
// than Before and the request ids they recorded (one call writes all rows of
// a request at once). A request id forgotten this way is accepted again.
func (p *pruner) subscriptions(ctx context.Context) (events int64, err error) {
	db, before := p.db, p.opt.Before
	var after int64
	for {
		var rows []struct {
			ID      int64  `db:"id"`
			Request string `db:"request_id"`
			At      dbTime `db:"at"`
		}
		if err := db.retry(ctx, "prune subscriptions: scan", func() error {
			rows = rows[:0]
			return db.r.SelectContext(ctx, &rows, "SELECT id, request_id, at FROM subscription_events WHERE id > ? ORDER BY id LIMIT ?", after, p.opt.Batch)
		}); err != nil {
			return events, err
		}
		if len(rows) == 0 {
			return events, nil
		}
		after = rows[len(rows)-1].ID
		var ids []int64
		var reqs []any
		seen := map[string]bool{}
		for _, r := range rows {
			if !r.At.Before(before) {
				continue
			}
			ids = append(ids, r.ID)
			if !seen[r.Request] {
				seen[r.Request] = true
				reqs = append(reqs, r.Request)
			}
		}
		if len(ids) == 0 {
			return events, nil
		}
		var nr int64
		ne, err := p.del(ctx, "prune subscriptions", func(tx *sqlx.Tx) (int64, error) {
			n, err := execN(ctx, tx, "DELETE FROM subscription_events WHERE id IN "+in(len(ids)), int64Args(ids)...)
			if err != nil {
				return 0, err
			}
			nr, err = execN(ctx, tx, "DELETE FROM subscription_requests WHERE request_id IN "+in(len(reqs)), reqs...)
			return n, err
		})
		events += ne
		p.requests += nr
		if err != nil {
			return events, err
		}
	}
}

// deliveries deletes delivery events received before Before, except those
// of an openid and template with a send in flight (reconcile may need
// them). msgids are not in time order: this step reads the whole table.
func (p *pruner) deliveries(ctx context.Context) (int64, error) {
	db, before := p.db, p.opt.Before
	var busy []struct {
		OpenID   string `db:"openid"`
		Template string `db:"template_id"`
	}
	if err := db.retry(ctx, "prune deliveries: in flight", func() error {
		busy = busy[:0]
		return db.r.SelectContext(ctx, &busy, "SELECT DISTINCT openid, template_id FROM send_log WHERE inflight_grant IS NOT NULL")
	}); err != nil {
		return 0, err
	}
	inflight := make(map[[2]string]bool, len(busy))
	for _, b := range busy {
		inflight[[2]string{b.OpenID, b.Template}] = true
	}
	var total int64
	after := int64(-1 << 63)
	for {
		var rows []struct {
			MsgID    int64  `db:"msgid"`
			OpenID   string `db:"openid"`
			Template string `db:"template_id"`
			Received dbTime `db:"received_at"`
		}
		if err := db.retry(ctx, "prune deliveries: scan", func() error {
			rows = rows[:0]
			return db.r.SelectContext(ctx, &rows, "SELECT msgid, openid, template_id, received_at FROM deliveries WHERE msgid > ? ORDER BY msgid LIMIT ?", after, p.opt.Batch)
		}); err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		after = rows[len(rows)-1].MsgID
		var del []int64
		for _, r := range rows {
			if r.Received.Before(before) && !inflight[[2]string{r.OpenID, r.Template}] {
				del = append(del, r.MsgID)
			}
		}
		if len(del) > 0 {
			n, err := p.del(ctx, "prune deliveries", func(tx *sqlx.Tx) (int64, error) {
				return execN(ctx, tx, "DELETE FROM deliveries WHERE msgid IN "+in(len(del)), int64Args(del)...)
			})
			total += n
			if err != nil {
				return total, err
			}
		}
	}
}

// runs deletes done runs of occurrences before Before, keeping each
// campaign's latest run.
func (p *pruner) runs(ctx context.Context) (int64, error) {
	db, before := p.db, p.opt.Before
	var latest []struct {
		Campaign string `db:"campaign"`
		Occ      dbTime `db:"occ"`
	}
	if err := db.retry(ctx, "prune runs: latest", func() error {
		latest = latest[:0]
		return db.r.SelectContext(ctx, &latest, "SELECT campaign, MAX(occurrence) AS occ FROM runs GROUP BY campaign")
	}); err != nil {
		return 0, err
	}
	keep := make(map[string]time.Time, len(latest))
	for _, l := range latest {
		keep[l.Campaign] = l.Occ.Time
	}
	var total int64
	lastC, lastO := "", time.Time{}
	for {
		var rows []struct {
			Campaign string `db:"campaign"`
			Occ      dbTime `db:"occurrence"`
		}
		if err := db.retry(ctx, "prune runs: scan", func() error {
			rows = rows[:0]
			return db.r.SelectContext(ctx, &rows, `SELECT campaign, occurrence FROM runs
WHERE status = 'done' AND occurrence < ? AND (campaign > ? OR (campaign = ? AND occurrence > ?))
ORDER BY campaign, occurrence LIMIT ?`, db.tv(before), lastC, lastC, db.tv(lastO), p.opt.Batch)
		}); err != nil {
			return total, err
		}
		if len(rows) == 0 {
			return total, nil
		}
		lastC, lastO = rows[len(rows)-1].Campaign, rows[len(rows)-1].Occ.Time
		byCampaign := map[string][]any{}
		var order []string
		for _, r := range rows {
			if r.Occ.Equal(keep[r.Campaign]) {
				continue
			}
			if byCampaign[r.Campaign] == nil {
				order = append(order, r.Campaign)
			}
			byCampaign[r.Campaign] = append(byCampaign[r.Campaign], db.tv(r.Occ.Time))
		}
		if len(order) == 0 {
			continue
		}
		n, err := p.del(ctx, "prune runs", func(tx *sqlx.Tx) (int64, error) {
			var n int64
			for _, c := range order {
				occs := byCampaign[c]
				m, err := execN(ctx, tx, "DELETE FROM runs WHERE campaign = ? AND status = 'done' AND occurrence IN "+in(len(occs)), append([]any{c}, occs...)...)
				if err != nil {
					return 0, err
				}
				n += m
			}
			return n, nil
		})
		total += n
		if err != nil {
			return total, err
		}
	}
}

// pauses deletes pauses that ended before Before.
func (p *pruner) pauses(ctx context.Context) (int64, error) {
	return p.del(ctx, "prune pauses", func(tx *sqlx.Tx) (int64, error) {
		return execN(ctx, tx, "DELETE FROM pauses WHERE until < ?", p.db.tv(p.opt.Before))
	})
}

// popupEvents deletes popup events older than Before but the latest of
// each openid and template, which the balances and offers read.
func (p *pruner) popupEvents(ctx context.Context) (int64, error) {
	db, before := p.db, p.opt.Before
	var total int64
	for {
		var ids []int64
		if err := db.retry(ctx, "prune popup events: scan", func() error {
			ids = ids[:0]
			return db.r.SelectContext(ctx, &ids, `SELECT p.id FROM popup_events p WHERE p.at < ? AND EXISTS (SELECT 1 FROM popup_events l
  WHERE l.openid = p.openid AND l.template_id = p.template_id AND (l.at > p.at OR l.at = p.at AND l.id > p.id))
ORDER BY p.id LIMIT ?`, db.tv(before), p.opt.Batch)
		}); err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		n, err := p.del(ctx, "prune popup events", func(tx *sqlx.Tx) (int64, error) {
			return execN(ctx, tx, "DELETE FROM popup_events WHERE id IN "+in(len(ids)), int64Args(ids)...)
		})
		total += n
		if err != nil || n == 0 {
			return total, err
		}
	}
}

// holdouts deletes the held-out records older than Before (a lift report
// over that period has no control group any more).
func (p *pruner) holdouts(ctx context.Context) (int64, error) {
	return p.del(ctx, "prune holdouts", func(tx *sqlx.Tx) (int64, error) {
		return execN(ctx, tx, "DELETE FROM holdouts WHERE at < ?", p.db.tv(p.opt.Before))
	})
}
