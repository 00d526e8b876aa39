package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// StatusInflight is the send_log status of a send marked and not yet
// finished: its request is about to be written or was written.
const StatusInflight = "inflight"

// Attempt is one send about to be made.
type Attempt struct {
	Campaign   string    `db:"campaign" json:"campaign"`
	Occurrence time.Time `db:"-" json:"occurrence"`
	GrantID    int64     `db:"grant_id" json:"grant_id"`
	OpenID     string    `db:"openid" json:"openid"`
	TemplateID string    `db:"template_id" json:"template_id"`
	Holder     string    `db:"holder" json:"holder"`
	// Limits are the frequency caps the send must fit (BeginSends takes
	// them atomically with the mark).
	Limits []Limit `db:"-" json:"-"`
	// StartedAt is when the send_log row was written (filled by
	// StaleInflight; BeginSends uses its at argument instead).
	StartedAt time.Time `db:"-" json:"started_at,omitzero"`
	// Kind is the grant's kind (filled by StaleInflight; BeginSends
	// ignores it).
	Kind wxcampaign.Kind `db:"kind" json:"kind,omitempty"`
}

// Mark is one group of sends to mark in flight at At. Token names the
// group's rows: pass the same token again when retrying a call whose
// outcome is unknown; empty means a fresh one.
type Mark struct {
	At       time.Time
	Token    string
	Attempts []Attempt
}

// NewMarkToken returns a fresh Mark.Token.
func NewMarkToken() string { return newToken() }

// Begun is BeginSends' answer for one attempt: Marked, or the reason it
// must not be sent.
type Begun struct {
	Marked bool
	Reason wxcampaign.Reason // capped_*, already_attempted or in_flight_elsewhere when not Marked
	Detail string
}

type sendKey struct {
	campaign string
	occ      time.Time
	grant    int64
}

// BeginSends marks the attempts in flight, just before their requests are
// written: one send_log row each with status "inflight", in one
// transaction, so that a group of sends starting together costs one
// commit. An attempt is marked only if
//
//   - its frequency caps (Attempt.Limits) hold at at, counting the send
//     log's takes in their windows and the earlier attempts of this call;
//     the row is the take (capped_<scope> otherwise);
//   - (campaign, occurrence, grant) was never attempted (the unique key
//     send_log_once; already_attempted otherwise);
//   - no other send of the grant is in flight (the unique inflight_grant)
//     and the grant is still active (in_flight_elsewhere otherwise).
//
// The caps' lock rows are locked in sorted order on MySQL (SQLite's write
// transaction is the lock), so the decision is atomic across processes.
// It returns one Begun per attempt, in input order. A call repeated with
// the same Mark.Token (after an error that left it unknown whether the
// first committed) gives the same answer: the rows the first wrote are
// recognised as its own and its takes are not counted twice.
func (db *DB) BeginSends(ctx context.Context, m Mark) ([]Begun, error) {
	at, attempts, token := m.At, m.Attempts, m.Token
	if len(attempts) == 0 {
		return nil, nil
	}
	if token == "" {
		token = newToken()
	}
	reqs := make([]CapRequest, len(attempts))
	for i, a := range attempts {
		reqs[i] = CapRequest{OpenID: a.OpenID, TemplateID: a.TemplateID, Limits: a.Limits}
	}
	if _, err := planCaps(reqs); err != nil {
		return nil, fmt.Errorf("store: begin sends: %w", err)
	}
	out := make([]Begun, len(attempts))
	err := db.tx(ctx, "begin sends", func(tx *sqlx.Tx) error {
		clear(out)
		p, _ := planCaps(reqs)
		if err := p.lock(ctx, db, tx); err != nil {
			return err
		}
		if err := p.load(ctx, db, tx, at); err != nil {
			return err
		}
		capped, _ := p.decide(reqs)
		var todo []int // indexes of the attempts to mark
		seen := map[sendKey]bool{}
		for i, a := range attempts {
			k := sendKey{a.Campaign, normTime(a.Occurrence), a.GrantID}
			switch {
			case capped[i] != nil:
				out[i] = Begun{Reason: capped[i].Reason(), Detail: capped[i].String()}
			case seen[k]:
				out[i] = Begun{Reason: wxcampaign.ReasonAlreadyAttempted}
			default:
				seen[k] = true
				todo = append(todo, i)
			}
		}
		// Rows in grant order: two groups marking overlapping grants lock
		// their unique entries in the same order (no deadlock).
		slices.SortFunc(todo, func(a, b int) int { return cmp.Compare(attempts[a].GrantID, attempts[b].GrantID) })
		inserted, err := insertRows(ctx, tx, db.insertIgnore()+" INTO send_log (campaign, occurrence, grant_id, openid, template_id, holder, status, token, started_at, scopes, inflight_grant)",
			"(?,?,?,?,?,?,'inflight',?,?,?,?)", "", len(todo), 500, func(args []any, j int) []any {
				i := todo[j]
				a := attempts[i]
				return append(args, a.Campaign, db.tv(a.Occurrence), a.GrantID, a.OpenID, a.TemplateID, a.Holder, token, db.tv(at), p.reqBits[i], a.GrantID)
			})
		if err != nil {
			return fmt.Errorf("mark sends: %w", err)
		}
		if int(inserted) == len(todo) && len(todo) == len(attempts) {
			for _, i := range todo {
				out[i].Marked = true
			}
		} else {
			// Some row was not written, or some attempt was refused by its
			// caps: read back which keys hold this token's rows (a repeated
			// call's own, whatever its caps say now) and why the others
			// were not written.
			all := make([]int, len(attempts))
			for i := range all {
				all[i] = i
			}
			if err := db.whyNotMarked(ctx, tx, token, attempts, all, out); err != nil {
				return err
			}
		}
		return db.dropInactive(ctx, tx, token, attempts, out)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// whyNotMarked reads back which of the attempts idx have a row written
// under token (this call's, or an earlier call's with the same token), and
// why the others were not written: the key was attempted before, or
// another send of the grant is in flight.
func (db *DB) whyNotMarked(ctx context.Context, tx *sqlx.Tx, token string, attempts []Attempt, idx []int, out []Begun) error {
	type group struct {
		campaign string
		occ      time.Time
	}
	groups := map[group][]int{}
	var order []group
	for _, i := range idx {
		g := group{attempts[i].Campaign, normTime(attempts[i].Occurrence)}
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		idx := groups[g]
		mine := map[int64]bool{}
		for _, c := range chunks(len(idx), maxIDsPerStatement) {
			part := idx[c[0]:c[1]]
			args := []any{g.campaign, db.tv(g.occ)}
			for _, i := range part {
				args = append(args, attempts[i].GrantID)
			}
			var rows []struct {
				GrantID int64  `db:"grant_id"`
				Token   string `db:"token"`
			}
			if err := tx.SelectContext(ctx, &rows, "SELECT grant_id, token FROM send_log WHERE campaign = ? AND occurrence = ? AND grant_id IN "+in(len(part)), args...); err != nil {
				return fmt.Errorf("read marks: %w", err)
			}
			tok := make(map[int64]string, len(rows))
			for _, r := range rows {
				tok[r.GrantID] = r.Token
			}
			for _, i := range part {
				id := attempts[i].GrantID
				t, ok := tok[id]
				switch {
				case ok && t == token && !mine[id]:
					mine[id] = true // the first attempt of the key in the call
					out[i] = Begun{Marked: true}
				case ok && t == token:
					out[i] = Begun{Reason: wxcampaign.ReasonAlreadyAttempted}
				case out[i].Reason != "": // capped, or a repeat within the call
				case ok:
					out[i] = Begun{Reason: wxcampaign.ReasonAlreadyAttempted}
				default:
					out[i] = Begun{Reason: wxcampaign.ReasonInFlightElsewhere, Detail: "another run is sending this grant"}
				}
			}
		}
	}
	return nil
}

// dropInactive removes the marks of grants that are no longer active (used
// up or revoked by another run since they were listed). On MySQL the grant
// rows are read with FOR UPDATE after the marks were written: a consume
// committing meanwhile is waited for and seen.
func (db *DB) dropInactive(ctx context.Context, tx *sqlx.Tx, token string, attempts []Attempt, out []Begun) error {
	var ids []int64
	for i, b := range out {
		if b.Marked {
			ids = append(ids, attempts[i].GrantID)
		}
	}
	ids = sortedUnique(ids)
	active := make(map[int64]bool, len(ids))
	for _, c := range chunks(len(ids), maxIDsPerStatement) {
		part := ids[c[0]:c[1]]
		var got []int64
		if err := tx.SelectContext(ctx, &got, "SELECT id FROM grants WHERE id IN "+in(len(part))+" AND status = 'active' ORDER BY id"+db.forUpdate(), int64Args(part)...); err != nil {
			return fmt.Errorf("check grants: %w", err)
		}
		for _, id := range got {
			active[id] = true
		}
	}
	if len(active) == len(ids) {
		return nil
	}
	var gone []int64
	for i, b := range out {
		if b.Marked && !active[attempts[i].GrantID] {
			gone = append(gone, attempts[i].GrantID)
			out[i] = Begun{Reason: wxcampaign.ReasonInFlightElsewhere, Detail: "the grant was used up by another run"}
		}
	}
	for _, c := range chunks(len(gone), maxIDsPerStatement) {
		part := gone[c[0]:c[1]]
		args := append([]any{token}, int64Args(part)...)
		if _, err := tx.ExecContext(ctx, "DELETE FROM send_log WHERE token = ? AND inflight_grant IN "+in(len(part)), args...); err != nil {
			return fmt.Errorf("drop marks: %w", err)
		}
	}
	return nil
}

// Result is the end of one attempt.
type Result struct {
	Campaign   string
	Occurrence time.Time
	GrantID    int64
	Holder     string
	Outcome    wxcampaign.Outcome
	Reason     wxcampaign.Reason
	Detail     string // free text beside the code: WeChat's errmsg, a rule's error
	MsgID      int64
	// Consume uses the grant up: a one-time grant becomes consumed, a
	// long-term grant (the engine sets Consume only when the grant is gone,
	// e.g. 43101) becomes revoked.
	Consume bool
	// Retain keeps the send_log row with the outcome; false deletes it (the
	// attempt proved nothing was sent: the grant stays available and its
	// cap take is given back).
	Retain bool
}

// Checkpoint moves a run's checkpoint past LastGrantID, for the run of
// (Campaign, Occurrence) held by Holder.
type Checkpoint struct {
	Campaign    string
	Occurrence  time.Time
	Holder      string
	LastGrantID int64
}

// Finish is what FinishSends records in one transaction.
type Finish struct {
	At      time.Time // finished_at and consumed_at
	Results []Result
	// Checkpoint, when set, is moved in the same transaction. The results
	// are recorded even when the run's lease is lost; the checkpoint then
	// does not move and FinishSends returns ErrLeaseLost.
	Checkpoint *Checkpoint
}

// FinishSends records f's results in one transaction: each inflight row
// gets its outcome, reason, detail and msgid and leaves flight (or is
// deleted when Retain is false); Consume consumes the grant. It returns how
// many in-flight rows it settled: it is idempotent, rows no longer inflight
// and grants no longer active are left as they are, so a row settled by two
// processes at once counts for one of them. A dead holder's rows are
// settled the same way.
//
// A batch costs a constant number of statements: one UPDATE consuming the
// grants and, per (campaign, occurrence), one DELETE and one UPDATE of the
// send_log rows; on MySQL the UPDATE joins a derived table of (grant id,
// status, reason, detail, msgid) on the unique key, on SQLite it is one
// prepared statement run per row inside the transaction. Row operations:
// one per grant consumed and one per row.
func (db *DB) FinishSends(ctx context.Context, f Finish) (int, error) {
	p := planFinish(f.Results)
	lost := false
	settled := 0
	err := db.tx(ctx, "finish sends", func(tx *sqlx.Tx) error {
		lost, settled = false, 0
		n, err := db.finishSends(ctx, tx, f.At, p)
		if err != nil {
			return err
		}
		settled = n
		cp := f.Checkpoint
		if cp == nil {
			return nil
		}
		m, err := execN(ctx, tx, "UPDATE runs SET checkpoint = CASE WHEN checkpoint < ? THEN ? ELSE checkpoint END WHERE campaign = ? AND occurrence = ? AND holder = ? AND status = 'running'",
			cp.LastGrantID, cp.LastGrantID, cp.Campaign, db.tv(cp.Occurrence), cp.Holder)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		lost = m == 0
		return nil
	})
	if err != nil {
		return 0, err
	}
	if lost {
		return settled, ErrLeaseLost
	}
	return settled, nil
}

type finishGroup struct {
	campaign string
	occ      time.Time
}

type finishRows struct{ keep, drop []Result }

// finishPlan is FinishSends' work, sorted for lock order.
type finishPlan struct {
	consume []int64
	order   []finishGroup
	groups  map[finishGroup]*finishRows
}

func planFinish(results []Result) finishPlan {
	rs := slices.Clone(results)
	slices.SortStableFunc(rs, func(a, b Result) int { return cmp.Compare(a.GrantID, b.GrantID) })
	p := finishPlan{groups: map[finishGroup]*finishRows{}}
	for _, r := range rs {
		if r.Consume {
			p.consume = append(p.consume, r.GrantID)
		}
		g := finishGroup{r.Campaign, normTime(r.Occurrence)}
		gr := p.groups[g]
		if gr == nil {
			gr = &finishRows{}
			p.groups[g] = gr
			p.order = append(p.order, g)
		}
		if r.Retain {
			gr.keep = append(gr.keep, r)
		} else {
			gr.drop = append(gr.drop, r)
		}
	}
	return p
}

// finishSends runs FinishSends' statements in tx and returns the number of
// send_log rows it took out of flight.
func (db *DB) finishSends(ctx context.Context, tx *sqlx.Tx, at time.Time, p finishPlan) (int, error) {
	for _, c := range chunks(len(p.consume), maxIDsPerStatement) {
		part := p.consume[c[0]:c[1]]
		args := append([]any{db.tv(at)}, int64Args(part)...)
		if _, err := tx.ExecContext(ctx, "UPDATE grants SET status = CASE WHEN kind = 'long_term' THEN 'revoked' ELSE 'consumed' END, consumed_at = ? WHERE id IN "+
			in(len(part))+" AND status = 'active'", args...); err != nil {
			return 0, fmt.Errorf("consume grants: %w", err)
		}
	}
	settled := 0
	for _, g := range p.order {
		gr := p.groups[g]
		for _, c := range chunks(len(gr.drop), rangeDiveKeys) {
			part := gr.drop[c[0]:c[1]]
			args := make([]any, 0, len(part)+2)
			args = append(args, g.campaign, db.tv(g.occ))
			for _, r := range part {
				args = append(args, r.GrantID)
			}
			n, err := execN(ctx, tx, "DELETE FROM send_log WHERE campaign = ? AND occurrence = ? AND status = 'inflight' AND grant_id IN "+in(len(part)), args...)
			if err != nil {
				return 0, fmt.Errorf("delete send log rows: %w", err)
			}
			settled += int(n)
		}
		n, err := db.setOutcomes(ctx, tx, g.campaign, g.occ, at, gr.keep)
		if err != nil {
			return 0, fmt.Errorf("update send log rows: %w", err)
		}
		settled += n
	}
	return settled, nil
}

// setOutcomes writes status, reason, detail, msgid and finished_at on the
// inflight send_log rows of (campaign, occ) named by rs, takes them out of
// flight and returns how many it changed.
func (db *DB) setOutcomes(ctx context.Context, tx *sqlx.Tx, campaign string, occ, at time.Time, rs []Result) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	n := 0
	// The rows sharing an outcome (status, reason, detail: nearly always
	// "sent" and no reason) take one UPDATE, their msgids by a CASE on
	// grant_id, found through send_log_once (campaign, grant_id,
	// occurrence). On MySQL a derived table of the outcomes (SELECT ...
	// UNION ALL) cost the server a query block per row, and JSON_TABLE is
	// not in TiDB (docs/scaling.md); on SQLite a statement per row cost
	// more than this one.
	type outcomeKey struct{ status, reason, detail string }
	var order []outcomeKey
	groups := map[outcomeKey][]Result{}
	for _, r := range rs {
		k := outcomeKey{string(r.Outcome), string(r.Reason), truncate(r.Detail, 255)}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	atv, occv := db.tv(at), db.tv(occ)
	for _, k := range order {
		g := groups[k]
		// rangeDiveKeys a statement: past eq_range_index_dive_limit a
		// grant_id IN list is estimated from statistics (store/caps.go).
		for _, c := range chunks(len(g), rangeDiveKeys) {
			part := g[c[0]:c[1]]
			var q strings.Builder
			q.Grow(160 + 20*len(part))
			args := make([]any, 0, 3*len(part)+6)
			q.WriteString("UPDATE send_log SET status = ?, reason = ?, detail = ?, msgid = ")
			args = append(args, k.status, k.reason, k.detail)
			if sameMsgID(part) {
				q.WriteString("?")
				args = append(args, part[0].MsgID)
			} else {
				q.WriteString("CASE grant_id")
				for _, r := range part {
					q.WriteString(" WHEN ? THEN ?")
					args = append(args, r.GrantID, r.MsgID)
				}
				q.WriteString(" END")
			}
			q.WriteString(", finished_at = ?, inflight_grant = NULL")
			if !takesCap(k.status) {
				q.WriteString(", scopes = 0") // the take is given back
			}
			q.WriteString(" WHERE campaign = ? AND occurrence = ? AND status = 'inflight' AND grant_id IN ")
			q.WriteString(in(len(part)))
			args = append(args, atv, campaign, occv)
			for _, r := range part {
				args = append(args, r.GrantID)
			}
			m, err := execN(ctx, tx, q.String(), args...)
			if err != nil {
				return 0, err
			}
			n += int(m)
		}
	}
	return n, nil
}

// sameMsgID reports whether every result carries the same msgid (failures
// carry none).
func sameMsgID(rs []Result) bool {
	for _, r := range rs[1:] {
		if r.MsgID != rs[0].MsgID {
			return false
		}
	}
	return true
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

type attemptRow struct {
	Attempt
	Occ     dbTime `db:"occurrence"`
	Started dbTime `db:"started_at"`
}

// StaleInflight lists up to limit inflight rows whose run is no longer
// live at now (its process died mid-send, or it ended and left a send to
// be settled by its delivery event): the run of (campaign, occurrence) is
// gone, done, held by another holder or past its lease. Oldest first, with
// the row's StartedAt and the grant's Kind. Settle one with FinishSends
// (MatchDelivery tells whether WeChat reported the message delivered).
func (db *DB) StaleInflight(ctx context.Context, now time.Time, limit int) ([]Attempt, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []attemptRow
	err := db.retry(ctx, "stale inflight", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, `SELECT s.campaign, s.occurrence, s.grant_id, s.openid, s.template_id, s.holder, s.started_at, COALESCE(g.kind, '') AS kind
FROM send_log s LEFT JOIN grants g ON g.id = s.grant_id LEFT JOIN runs r ON r.campaign = s.campaign AND r.occurrence = s.occurrence
WHERE s.inflight_grant IS NOT NULL AND s.status = 'inflight'
  AND (r.campaign IS NULL OR r.status <> 'running' OR r.holder <> s.holder OR r.lease_until <= ?)
ORDER BY s.id LIMIT ?`, db.tv(now), limit)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Attempt, len(rows))
	for i, r := range rows {
		out[i] = r.Attempt
		out[i].Occurrence = r.Occ.Time
		out[i].StartedAt = r.Started.Time
	}
	return out, nil
}

// SentBefore reports which of ids have a sent, unknown or inflight row for
// campaign in any occurrence (for long-term "repeat: once"; an inflight row
// may have been delivered, so it counts).
func (db *DB) SentBefore(ctx context.Context, campaign string, ids []int64) (map[int64]bool, error) {
	ids = sortedUnique(ids)
	out := make(map[int64]bool)
	err := db.retry(ctx, "sent before", func() error {
		clear(out)
		for _, c := range chunks(len(ids), maxIDsPerStatement) {
			part := ids[c[0]:c[1]]
			var got []int64
			args := append([]any{campaign}, int64Args(part)...)
			if err := db.r.SelectContext(ctx, &got, "SELECT DISTINCT grant_id FROM send_log WHERE campaign = ? AND grant_id IN "+in(len(part))+
				" AND status IN ('sent', 'unknown', 'inflight')", args...); err != nil {
				return err
			}
			for _, id := range got {
				out[id] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Streak is a grant's run of failures in one campaign: the reason of its
// most recent failure and how many of its latest attempts in a row failed
// with that reason.
type Streak struct {
	Reason wxcampaign.Reason
	Detail string // of the most recent failure
	Runs   int
}

// FailStreaks returns, for those of ids whose latest n attempts in campaign
// (n >= 1) all failed with the same reason, that streak. An attempt that
// was sent or may have been (sent, unknown, inflight) ends a streak; an
// attempt that proved nothing (deleted) is not counted.
func (db *DB) FailStreaks(ctx context.Context, campaign string, ids []int64, n int) (map[int64]Streak, error) {
	out := map[int64]Streak{}
	if n < 1 || len(ids) == 0 {
		return out, nil
	}
	ids = sortedUnique(ids)
	type row struct {
		ID      int64  `db:"id"`
		GrantID int64  `db:"grant_id"`
		Status  string `db:"status"`
		Reason  string `db:"reason"`
		Detail  string `db:"detail"`
	}
	err := db.retry(ctx, "fail streaks", func() error {
		clear(out)
		for _, c := range chunks(len(ids), maxIDsPerStatement) {
			part := ids[c[0]:c[1]]
			// The failures first (rare); only grants with n of them need
			// their latest other attempt.
			var fails []row
			args := append([]any{campaign}, int64Args(part)...)
			if err := db.r.SelectContext(ctx, &fails, "SELECT id, grant_id, status, reason, detail FROM send_log"+db.forceIndex("send_log_once")+" WHERE campaign = ? AND grant_id IN "+in(len(part))+
				" AND status = 'failed'", args...); err != nil {
				return err
			}
			// Sorted here, not by the server: an ORDER BY made MariaDB
			// walk send_log_once over the campaign's every row (a growing
			// scan per batch) to avoid a sort of a few rows.
			slices.SortFunc(fails, func(a, b row) int {
				if c := cmp.Compare(a.GrantID, b.GrantID); c != 0 {
					return c
				}
				return cmp.Compare(b.ID, a.ID)
			})
			byGrant := map[int64][]row{}
			var cand []int64
			for _, f := range fails {
				if len(byGrant[f.GrantID]) == n-1 {
					cand = append(cand, f.GrantID)
				}
				byGrant[f.GrantID] = append(byGrant[f.GrantID], f)
			}
			if len(cand) == 0 {
				continue
			}
			var last []struct {
				GrantID int64 `db:"grant_id"`
				ID      int64 `db:"id"`
			}
			args = append([]any{campaign}, int64Args(cand)...)
			if err := db.r.SelectContext(ctx, &last, "SELECT grant_id, MAX(id) AS id FROM send_log"+db.forceIndex("send_log_once")+" WHERE campaign = ? AND grant_id IN "+in(len(cand))+
				" AND status <> 'failed' GROUP BY grant_id", args...); err != nil {
				return err
			}
			after := map[int64]int64{}
			for _, l := range last {
				after[l.GrantID] = l.ID
			}
			for _, id := range cand {
				fs := byGrant[id]
				k := 0
				for k < len(fs) && fs[k].ID > after[id] && fs[k].Reason == fs[0].Reason {
					k++
				}
				if k >= n {
					out[id] = Streak{Reason: wxcampaign.Reason(fs[0].Reason), Detail: fs[0].Detail, Runs: k}
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LogEntry is one send_log row.
type LogEntry struct {
	Campaign   string    `json:"campaign"`
	Occurrence time.Time `json:"occurrence"`
	GrantID    int64     `json:"grant_id"`
	OpenID     string    `json:"openid"`
	TemplateID string    `json:"template_id"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail,omitempty"`
	MsgID      int64     `json:"msgid"`
	At         time.Time `json:"at"` // finished (or, inflight, started)
}

// SendLog returns up to limit rows of campaign's send log, newest first.
func (db *DB) SendLog(ctx context.Context, campaign string, limit int) ([]LogEntry, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []struct {
		Campaign   string `db:"campaign"`
		Occurrence dbTime `db:"occurrence"`
		GrantID    int64  `db:"grant_id"`
		OpenID     string `db:"openid"`
		TemplateID string `db:"template_id"`
		Status     string `db:"status"`
		Reason     string `db:"reason"`
		Detail     string `db:"detail"`
		MsgID      int64  `db:"msgid"`
		Started    dbTime `db:"started_at"`
		Finished   dbTime `db:"finished_at"`
	}
	err := db.retry(ctx, "send log", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, "SELECT campaign, occurrence, grant_id, openid, template_id, status, reason, detail, msgid, started_at, finished_at FROM send_log WHERE campaign = ? ORDER BY id DESC LIMIT ?", campaign, limit)
	})
	if err != nil {
		return nil, err
	}
	out := make([]LogEntry, len(rows))
	for i, r := range rows {
		at := r.Finished.Time
		if at.IsZero() {
			at = r.Started.Time
		}
		out[i] = LogEntry{Campaign: r.Campaign, Occurrence: r.Occurrence.Time, GrantID: r.GrantID, OpenID: r.OpenID, TemplateID: r.TemplateID,
			Status: r.Status, Reason: r.Reason, Detail: r.Detail, MsgID: r.MsgID, At: at}
	}
	return out, nil
}

// OutcomeCounts counts campaign's send_log rows by status (sent, failed,
// unknown, inflight, ...).
func (db *DB) OutcomeCounts(ctx context.Context, campaign string) (map[string]int, error) {
	var rows []struct {
		Status string `db:"status"`
		N      int    `db:"n"`
	}
	err := db.retry(ctx, "outcome counts", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, "SELECT status, COUNT(*) AS n FROM send_log WHERE campaign = ? GROUP BY status", campaign)
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(rows))
	for _, r := range rows {
		out[r.Status] = r.N
	}
	return out, nil
}
