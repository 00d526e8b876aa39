package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// StatusInflight is the send_log status of an attempt begun and not yet
// finished: the message may be on its way.
const StatusInflight = "inflight"

// Attempt is one send about to be made.
type Attempt struct {
	Campaign   string    `db:"campaign" json:"campaign"`
	Occurrence time.Time `db:"-" json:"occurrence"`
	GrantID    int64     `db:"grant_id" json:"grant_id"`
	OpenID     string    `db:"openid" json:"openid"`
	TemplateID string    `db:"template_id" json:"template_id"`
	Holder     string    `db:"holder" json:"holder"`
	// StartedAt is when the send_log row was written (filled by
	// StaleInflight; BeginSends uses its at argument instead).
	StartedAt time.Time `db:"-" json:"started_at,omitzero"`
	// Kind is the grant's kind (filled by StaleInflight; BeginSends
	// ignores it).
	Kind wxcampaign.Kind `db:"kind" json:"kind,omitempty"`
}

type sendKey struct {
	campaign string
	occ      time.Time
	grant    int64
}

// BeginSends writes one send_log row per attempt with status "inflight"
// before anything is sent. The unique key (campaign, occurrence, grant_id)
// makes a second attempt impossible: it returns only the grant ids whose
// row this call wrote (in input order); the others must not be sent.
func (db *DB) BeginSends(ctx context.Context, at time.Time, attempts []Attempt) ([]int64, error) {
	if len(attempts) == 0 {
		return nil, nil
	}
	seen := map[sendKey]bool{}
	uniq := make([]Attempt, 0, len(attempts))
	for _, a := range attempts {
		k := sendKey{a.Campaign, normTime(a.Occurrence), a.GrantID}
		if !seen[k] {
			seen[k] = true
			uniq = append(uniq, a)
		}
	}
	// One token for all tries: a retry after a commit whose answer was lost
	// still recognises the rows as this call's.
	token := newToken()
	var out []int64
	err := db.tx(ctx, "begin sends", func(tx *sqlx.Tx) error {
		out = out[:0]
		var inserted int64
		for _, c := range chunks(len(uniq), 500) {
			var q strings.Builder
			q.WriteString(db.insertIgnore() + " INTO send_log (campaign, occurrence, grant_id, openid, template_id, holder, status, token, started_at) VALUES ")
			args := make([]any, 0, 9*(c[1]-c[0]))
			for i, a := range uniq[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?,?,'inflight',?,?)")
				args = append(args, a.Campaign, db.tv(a.Occurrence), a.GrantID, a.OpenID, a.TemplateID, a.Holder, token, db.tv(at))
			}
			res, err := tx.ExecContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			inserted += n
		}
		if int(inserted) == len(uniq) {
			for _, a := range uniq {
				out = append(out, a.GrantID)
			}
			return nil
		}
		ours := map[sendKey]bool{}
		groups := map[[2]any][]int64{}
		var order [][2]any
		for _, a := range uniq {
			g := [2]any{a.Campaign, normTime(a.Occurrence)}
			if _, ok := groups[g]; !ok {
				order = append(order, g)
			}
			groups[g] = append(groups[g], a.GrantID)
		}
		for _, g := range order {
			ids := groups[g]
			for _, c := range chunks(len(ids), maxIDsPerStatement) {
				part := ids[c[0]:c[1]]
				args := append([]any{g[0], db.tv(g[1].(time.Time)), token}, int64Args(part)...)
				var got []int64
				if err := tx.SelectContext(ctx, &got, "SELECT grant_id FROM send_log WHERE campaign = ? AND occurrence = ? AND token = ? AND grant_id IN "+in(len(part)), args...); err != nil {
					return err
				}
				for _, id := range got {
					ours[sendKey{g[0].(string), g[1].(time.Time), id}] = true
				}
			}
		}
		for _, a := range uniq {
			if ours[sendKey{a.Campaign, normTime(a.Occurrence), a.GrantID}] {
				out = append(out, a.GrantID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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
	// attempt proved nothing was sent, the grant stays available).
	Retain bool
}

// FinishSends records the results in one transaction: each inflight row
// gets its outcome, reason and msgid (or is deleted when Retain is false);
// Consume consumes the grant; every grant's reservation by the result's
// holder is released. It is idempotent: rows no longer inflight and grants
// no longer active are left as they are. It does not need the holder's
// reservation to be live (a stale attempt of a dead holder is settled the
// same way).
//
// A batch costs a constant number of statements: one UPDATE consuming the
// grants (which also drops their reservations), one releasing the others
// per holder, and per (campaign, occurrence) one DELETE and one UPDATE of
// the send_log rows; on MySQL the UPDATE joins a JSON_TABLE of (grant id,
// status, reason, msgid) on the unique key, on SQLite it is one prepared
// statement run per row inside the transaction.
func (db *DB) FinishSends(ctx context.Context, at time.Time, results []Result) error {
	if len(results) == 0 {
		return nil
	}
	p := planFinish(results)
	consume, holders, release, order, groups := p.consume, p.holders, p.release, p.order, p.groups
	return db.tx(ctx, "finish sends", func(tx *sqlx.Tx) error {
		return db.finishSends(ctx, tx, at, consume, holders, release, order, groups)
	})
}

// FinishSendsAndCheckpoint is FinishSends and Checkpoint(campaign,
// occurrence, holder, lastGrantID) in one transaction (one commit instead
// of two per batch). The results are recorded even when the run's lease is
// lost; the checkpoint then does not move and ErrLeaseLost is returned.
func (db *DB) FinishSendsAndCheckpoint(ctx context.Context, at time.Time, results []Result, campaign string, occurrence time.Time, holder string, lastGrantID int64) error {
	p := planFinish(results)
	lost := false
	err := db.tx(ctx, "finish sends and checkpoint", func(tx *sqlx.Tx) error {
		lost = false
		if err := db.finishSends(ctx, tx, at, p.consume, p.holders, p.release, p.order, p.groups); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE runs SET checkpoint = CASE WHEN checkpoint < ? THEN ? ELSE checkpoint END WHERE campaign = ? AND occurrence = ? AND holder = ? AND status = 'running'",
			lastGrantID, lastGrantID, campaign, db.tv(occurrence), holder)
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		lost = n == 0
		return nil
	})
	if err != nil {
		return err
	}
	if lost {
		return ErrLeaseLost
	}
	return nil
}

type finishGroup struct {
	campaign string
	occ      time.Time
}

type finishRows struct{ keep, drop []Result }

// finishPlan is FinishSends' work, sorted for lock order.
type finishPlan struct {
	consume []int64
	holders []string
	release map[string][]int64
	order   []finishGroup
	groups  map[finishGroup]*finishRows
}

func planFinish(results []Result) finishPlan {
	rs := slices.Clone(results)
	slices.SortStableFunc(rs, func(a, b Result) int { return cmp.Compare(a.GrantID, b.GrantID) })
	p := finishPlan{release: map[string][]int64{}, groups: map[finishGroup]*finishRows{}}
	for _, r := range rs {
		if r.Consume {
			// The consume drops every reservation of the grant.
			p.consume = append(p.consume, r.GrantID)
			continue
		}
		if _, ok := p.release[r.Holder]; !ok {
			p.holders = append(p.holders, r.Holder)
		}
		p.release[r.Holder] = append(p.release[r.Holder], r.GrantID)
	}
	slices.Sort(p.holders)
	// The send_log rows, grouped by (campaign, occurrence).
	for _, r := range rs {
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

// finishSends runs FinishSends' statements in tx.
func (db *DB) finishSends(ctx context.Context, tx *sqlx.Tx, at time.Time, consume []int64, holders []string, release map[string][]int64, order []finishGroup, groups map[finishGroup]*finishRows) error {
	{
		for _, c := range chunks(len(consume), maxIDsPerStatement) {
			part := consume[c[0]:c[1]]
			args := append([]any{db.tv(at)}, int64Args(part)...)
			if _, err := tx.ExecContext(ctx, "UPDATE grants SET status = CASE WHEN kind = 'long_term' THEN 'revoked' ELSE 'consumed' END, consumed_at = ? WHERE id IN "+
				in(len(part))+" AND status = 'active'", args...); err != nil {
				return fmt.Errorf("consume grants: %w", err)
			}
			// A consumed grant keeps no reservation, whoever holds it.
			if _, err := tx.ExecContext(ctx, "DELETE FROM grant_reservations WHERE grant_id IN "+in(len(part)), int64Args(part)...); err != nil {
				return fmt.Errorf("drop reservations: %w", err)
			}
		}
		for _, h := range holders {
			ids := release[h]
			for _, c := range chunks(len(ids), maxIDsPerStatement) {
				part := ids[c[0]:c[1]]
				args := append(int64Args(part), h)
				if _, err := tx.ExecContext(ctx, "DELETE FROM grant_reservations WHERE grant_id IN "+in(len(part))+" AND holder = ?", args...); err != nil {
					return fmt.Errorf("release grants: %w", err)
				}
			}
		}
		for _, g := range order {
			gr := groups[g]
			for _, c := range chunks(len(gr.drop), maxIDsPerStatement) {
				part := gr.drop[c[0]:c[1]]
				args := make([]any, 0, len(part)+2)
				args = append(args, g.campaign, db.tv(g.occ))
				for _, r := range part {
					args = append(args, r.GrantID)
				}
				if _, err := tx.ExecContext(ctx, "DELETE FROM send_log WHERE campaign = ? AND occurrence = ? AND status = 'inflight' AND grant_id IN "+in(len(part)), args...); err != nil {
					return fmt.Errorf("delete send log rows: %w", err)
				}
			}
			if err := db.setOutcomes(ctx, tx, g.campaign, g.occ, at, gr.keep); err != nil {
				return fmt.Errorf("update send log rows: %w", err)
			}
		}
		return nil
	}
}

// setOutcomes writes status, reason, msgid and finished_at on the inflight
// send_log rows of (campaign, occ) named by rs.
func (db *DB) setOutcomes(ctx context.Context, tx *sqlx.Tx, campaign string, occ, at time.Time, rs []Result) error {
	if len(rs) == 0 {
		return nil
	}
	if db.sqlite() {
		// In-process: a prepared statement per row is cheap, and SQLite
		// would drive an UPDATE ... FROM json_each(?) from the send_log
		// side (a scan of the campaign's rows per batch).
		st, err := tx.PrepareContext(ctx, "UPDATE send_log SET status = ?, reason = ?, detail = ?, msgid = ?, finished_at = ? WHERE campaign = ? AND occurrence = ? AND grant_id = ? AND status = 'inflight'")
		if err != nil {
			return err
		}
		defer st.Close()
		atv, occv := db.tv(at), db.tv(occ)
		for _, r := range rs {
			if _, err := st.ExecContext(ctx, string(r.Outcome), string(r.Reason), truncate(r.Detail, 255), r.MsgID, atv, campaign, occv, r.GrantID); err != nil {
				return err
			}
		}
		return nil
	}
	// MySQL: one statement; JSON_TABLE drives an eq_ref join on
	// send_log_once (campaign, occurrence, grant_id).
	for _, c := range chunks(len(rs), 5000) {
		var js []byte
		js = append(js, '[')
		for i, r := range rs[c[0]:c[1]] {
			if i > 0 {
				js = append(js, ',')
			}
			js = append(js, '[')
			js = strconv.AppendInt(js, r.GrantID, 10)
			js = append(js, ',')
			js = appendJSONString(js, string(r.Outcome))
			js = append(js, ',')
			js = appendJSONString(js, string(r.Reason))
			js = append(js, ',')
			js = appendJSONString(js, truncate(r.Detail, 255))
			js = append(js, ',')
			js = strconv.AppendInt(js, r.MsgID, 10)
			js = append(js, ']')
		}
		js = append(js, ']')
		if _, err := tx.ExecContext(ctx, `UPDATE JSON_TABLE(?, '$[*]' COLUMNS (g BIGINT PATH '$[0]', st VARCHAR(16) PATH '$[1]', re VARCHAR(64) PATH '$[2]', de VARCHAR(255) PATH '$[3]', m BIGINT PATH '$[4]')) v
STRAIGHT_JOIN send_log s ON s.campaign = ? AND s.occurrence = ? AND s.grant_id = v.g
SET s.status = v.st, s.reason = v.re, s.detail = v.de, s.msgid = v.m, s.finished_at = ?
WHERE s.status = 'inflight'`, string(js), campaign, db.tv(occ), db.tv(at)); err != nil {
			return err
		}
	}
	return nil
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always encodes
	return append(dst, b...)
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

// StaleInflight lists up to limit inflight rows whose holder no longer has
// a live reservation of the grant at now (the holder died mid-send), oldest
// first, with the row's StartedAt and the grant's Kind. Settle one with
// FinishSends: it works without the reservation (MatchDelivery tells
// whether WeChat reported the message delivered).
func (db *DB) StaleInflight(ctx context.Context, now time.Time, limit int) ([]Attempt, error) {
	if limit <= 0 {
		return nil, nil
	}
	var rows []attemptRow
	err := db.retry(ctx, "stale inflight", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, `SELECT s.campaign, s.occurrence, s.grant_id, s.openid, s.template_id, s.holder, s.started_at, COALESCE(g.kind, '') AS kind
FROM send_log s LEFT JOIN grants g ON g.id = s.grant_id LEFT JOIN grant_reservations r ON r.grant_id = s.grant_id
WHERE s.status = 'inflight'
  AND (r.grant_id IS NULL OR r.holder <> s.holder OR r.until <= ?)
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
