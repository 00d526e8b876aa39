package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Grant statuses.
const (
	StatusActive   = "active"
	StatusConsumed = "consumed"
	StatusRevoked  = "revoked"
)

// Subscription event results recorded in subscription_events.
const (
	EventReject = "reject"
	EventBan    = "ban"
	EventFilter = "filter"
)

// RecordResult says what recording one subscription result did.
type RecordResult = wxcampaign.RecordResult

// RecordSubscription records one wx.requestSubscribeMessage result at time
// at: a credit per accepted one-time template id (a repeated id counts
// once), a standing grant per accepted id listed in r.LongTermTemplateIDs
// (the caller decides the kinds before calling), an event per reject, ban
// and filter; a reject or ban revokes the user's long-term grants of that
// template. A requestId already recorded adds nothing and returns
// Duplicate=true, also under concurrency, with Conflict=true when the
// recorded result's content differs (wxcampaign.SubscriptionResult.Fingerprint).
// An invalid result is a wxcampaign.EINVALID error.
func (db *DB) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (RecordResult, error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return RecordResult{}, fmt.Errorf("store: record subscription: %w", err)
	}
	var st batchStats
	err := db.tx(ctx, "record subscription", func(tx *sqlx.Tx) error {
		var err error
		st, err = db.writeBatch(ctx, tx, []*wxcampaign.SubscriptionResult{&r}, at, nil, nil)
		return err
	})
	if err != nil {
		return RecordResult{}, err
	}
	return RecordResult{Credits: st.credits, LongTerm: st.longTerm, Rejected: st.rejected, Duplicate: st.duplicates > 0, Conflict: st.conflicts > 0}, nil
}

// RecordSubscriptions records rs in order in one transaction (group
// commit) and returns one RecordResult per element, as RecordSubscription
// does; a requestId repeated earlier in rs is a duplicate too. An invalid
// element is a wxcampaign.EINVALID error and nothing is recorded.
func (db *DB) RecordSubscriptions(ctx context.Context, rs []wxcampaign.SubscriptionResult, at time.Time) ([]RecordResult, error) {
	ptrs := make([]*wxcampaign.SubscriptionResult, len(rs))
	for i := range rs {
		rs[i].Normalize()
		if err := rs[i].Validate(); err != nil {
			return nil, fmt.Errorf("store: record subscriptions: result %d: %w", i, err)
		}
		ptrs[i] = &rs[i]
	}
	out := make([]RecordResult, len(rs))
	if len(rs) == 0 {
		return out, nil
	}
	err := db.tx(ctx, "record subscriptions", func(tx *sqlx.Tx) error {
		_, err := db.writeBatch(ctx, tx, ptrs, at, nil, out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type batchStats struct {
	imported, duplicates, conflicts, credits, longTerm, rejected int
}

func (s *batchStats) add(o batchStats) {
	s.imported += o.imported
	s.duplicates += o.duplicates
	s.conflicts += o.conflicts
	s.credits += o.credits
	s.longTerm += o.longTerm
	s.rejected += o.rejected
}

// kindFunc resolves the kind of an agreed template id of r.
func kindFunc(r *wxcampaign.SubscriptionResult, kindOf func(string) wxcampaign.Kind) func(string) wxcampaign.Kind {
	return func(id string) wxcampaign.Kind {
		if slices.Contains(r.LongTermTemplateIDs, id) {
			return wxcampaign.LongTerm
		}
		if kindOf != nil && kindOf(id) == wxcampaign.LongTerm {
			return wxcampaign.LongTerm
		}
		return wxcampaign.OneTime
	}
}

type userTemplate struct{ openid, template string }

// writeBatch records results in tx. Results are applied in order; a result
// whose requestId is already stored (or repeated earlier in the batch) is a
// duplicate and adds nothing.
func (db *DB) writeBatch(ctx context.Context, tx *sqlx.Tx, rs []*wxcampaign.SubscriptionResult, at time.Time, kindOf func(string) wxcampaign.Kind, per []RecordResult) (batchStats, error) {
	var st batchStats
	var pos map[*wxcampaign.SubscriptionResult]int // for per: result -> index
	if per != nil {
		pos = make(map[*wxcampaign.SubscriptionResult]int, len(rs))
		for i, r := range rs {
			pos[r] = i
			per[i] = RecordResult{Duplicate: true} // until recorded below
		}
	}
	// 1. Claim the request ids with this call's token and the results'
	// fingerprints; a repeated id with another fingerprint is a conflict.
	conflict := func(r *wxcampaign.SubscriptionResult) {
		st.conflicts++
		if per != nil {
			per[pos[r]].Conflict = true
		}
	}
	seen := make(map[string]string, len(rs)) // request id -> fingerprint
	fresh := make([]*wxcampaign.SubscriptionResult, 0, len(rs))
	fps := make(map[*wxcampaign.SubscriptionResult]string, len(rs))
	// The vars are encoded once, for the fingerprint and for the grants'
	// vars column; nil when they cannot be (an error once the result is
	// recorded, below).
	varsJSON := make(map[*wxcampaign.SubscriptionResult][]byte, len(rs))
	for _, r := range rs {
		r.Normalize() // a repeated template id counts once
		vj, _ := r.VarsJSON()
		fp := r.FingerprintWith(vj)
		if first, ok := seen[r.RequestID]; ok {
			st.duplicates++
			if first != fp {
				conflict(r)
			}
			continue
		}
		seen[r.RequestID] = fp
		fps[r], varsJSON[r] = fp, vj
		fresh = append(fresh, r)
	}
	token := newToken()
	var inserted int64
	bulk := db.useBulk(len(fresh))
	if bulk {
		var body tsv
		for _, r := range fresh {
			body.str(r.RequestID)
			body.str(fps[r])
			body.end()
		}
		// The token is hex (newToken): safe as a literal.
		n, err := db.loadData(ctx, tx, "subscription_requests", []string{"request_id", "fingerprint"}, "token = '"+token+"'", &body)
		if err != nil {
			return st, fmt.Errorf("claim request ids: %w", err)
		}
		inserted = n
	} else {
		n, err := insertRows(ctx, tx, db.insertIgnore()+" INTO subscription_requests (request_id, token, fingerprint)", "(?,?,?)", "",
			len(fresh), 2000, func(a []any, i int) []any { return append(a, fresh[i].RequestID, token, fps[fresh[i]]) })
		if err != nil {
			return st, fmt.Errorf("claim request ids: %w", err)
		}
		inserted = n
	}
	if int(inserted) < len(fresh) {
		ours := make(map[string]bool, inserted)
		stored := make(map[string]string) // fingerprints of ids claimed before
		for _, c := range chunks(len(fresh), maxIDsPerStatement) {
			args := []any{}
			for _, r := range fresh[c[0]:c[1]] {
				args = append(args, r.RequestID)
			}
			var rows []struct {
				ID          string `db:"request_id"`
				Token       string `db:"token"`
				Fingerprint string `db:"fingerprint"`
			}
			if err := tx.SelectContext(ctx, &rows, "SELECT request_id, token, fingerprint FROM subscription_requests WHERE request_id IN "+in(c[1]-c[0]), args...); err != nil {
				return st, fmt.Errorf("find claimed request ids: %w", err)
			}
			for _, row := range rows {
				if row.Token == token {
					ours[row.ID] = true
				} else {
					stored[row.ID] = row.Fingerprint
				}
			}
		}
		kept := fresh[:0]
		for _, r := range fresh {
			if ours[r.RequestID] {
				kept = append(kept, r)
				continue
			}
			st.duplicates++
			if fp := stored[r.RequestID]; fp != "" && fp != fps[r] {
				conflict(r)
			}
		}
		fresh = kept
	}
	st.imported = len(fresh)
	if len(fresh) == 0 {
		return st, nil
	}

	// 2. Build grant and event rows in order; a later reject in the batch
	// revokes earlier long-term grants of the batch in memory.
	type grantRow struct {
		r      *wxcampaign.SubscriptionResult
		tmpl   string
		kind   wxcampaign.Kind
		vars   any
		status string
	}
	type eventRow struct {
		r      *wxcampaign.SubscriptionResult
		tmpl   string
		result string
	}
	var grants []grantRow
	var events []eventRow
	var revokes []userTemplate
	revokeSeen := map[userTemplate]bool{}
	longTermAt := map[userTemplate][]int{} // active long-term grants of the batch
	for _, r := range fresh {
		var pr *RecordResult
		if per != nil {
			pr = &per[pos[r]]
			pr.Duplicate = false
		} else {
			pr = &RecordResult{}
		}
		var vars any
		if len(r.ExtraVariableMap) > 0 {
			b := varsJSON[r]
			if b == nil {
				_, err := r.VarsJSON()
				return st, fmt.Errorf("encode extraVariableMap of %q: %w", r.RequestID, err)
			}
			vars = string(b)
		}
		kind := kindFunc(r, kindOf)
		for _, id := range r.AgreeTemplateIDs {
			k := kind(id)
			grants = append(grants, grantRow{r: r, tmpl: id, kind: k, vars: vars, status: StatusActive})
			if k == wxcampaign.LongTerm {
				ut := userTemplate{r.OpenID, id}
				longTermAt[ut] = append(longTermAt[ut], len(grants)-1)
				st.longTerm++
				pr.LongTerm++
			} else {
				st.credits++
				pr.Credits++
			}
		}
		for _, list := range []struct {
			ids    []string
			result string
		}{{r.RejectTemplateIDs, EventReject}, {r.BanTemplateIDs, EventBan}, {r.FilterTemplateIDs, EventFilter}} {
			for _, id := range list.ids {
				events = append(events, eventRow{r: r, tmpl: id, result: list.result})
				st.rejected++
				pr.Rejected++
				if list.result == EventFilter {
					continue
				}
				ut := userTemplate{r.OpenID, id}
				for _, i := range longTermAt[ut] {
					grants[i].status = StatusRevoked
				}
				delete(longTermAt, ut)
				if !revokeSeen[ut] {
					revokeSeen[ut] = true
					revokes = append(revokes, ut)
				}
			}
		}
	}

	// 3. Revoke stored long-term grants (before inserting this batch's).
	// lt_openid is set on long-term grants only. SQLite finds them by its
	// partial index on it (grants_long_term); MySQL, which has no partial
	// index, by grants_openid (openid, template_id): the user's grants of
	// the template (usually all of one kind; one-time ones are read and
	// left alone).
	table, userCol := "grants"+db.forceIndex("grants_openid"), "openid"
	if db.sqlite() {
		table, userCol = "grants", "lt_openid"
	}
	for _, c := range chunks(len(revokes), 200) {
		var q strings.Builder
		q.WriteString("UPDATE " + table + " SET status = 'revoked' WHERE lt_openid IS NOT NULL AND status = 'active' AND (")
		args := make([]any, 0, 2*(c[1]-c[0]))
		for i, ut := range revokes[c[0]:c[1]] {
			if i > 0 {
				q.WriteString(" OR ")
			}
			q.WriteString("(" + userCol + " = ? AND template_id = ?)")
			args = append(args, ut.openid, ut.template)
		}
		q.WriteByte(')')
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return st, fmt.Errorf("revoke long-term grants: %w", err)
		}
	}

	// 4. Insert grants and events in multi-row statements.
	atv := db.tv(at)
	if bulk {
		var body tsv
		for _, g := range grants {
			body.str(g.r.OpenID)
			body.str(g.tmpl)
			body.str(string(g.kind))
			body.str(g.r.Scene)
			body.str(g.r.BusNo)
			if g.vars == nil {
				body.null()
			} else {
				body.str(g.vars.(string))
			}
			body.str(g.r.RequestID)
			body.str(g.status)
			if g.kind == wxcampaign.LongTerm {
				body.str(g.r.OpenID)
			} else {
				body.null()
			}
			body.end()
		}
		// granted_at is the same for the whole batch: a temporal literal in
		// SET spares parsing it on every row.
		if _, err := db.loadData(ctx, tx, "grants", []string{"openid", "template_id", "kind", "scene", "biz_no", "vars", "request_id", "status", "lt_openid"},
			"granted_at = TIMESTAMP'"+normTime(at).Format(sqliteTimeFormat)+"'", &body); err != nil {
			return st, fmt.Errorf("insert grants: %w", err)
		}
		body = tsv{}
		for _, e := range events {
			body.str(e.r.RequestID)
			body.str(e.r.OpenID)
			body.str(e.tmpl)
			body.str(e.result)
			body.str(e.r.Scene)
			body.str(e.r.BusNo)
			body.time(at)
			body.end()
		}
		if _, err := db.loadData(ctx, tx, "subscription_events", []string{"request_id", "openid", "template_id", "result", "scene", "biz_no", "at"}, "", &body); err != nil {
			return st, fmt.Errorf("insert subscription events: %w", err)
		}
		return st, nil
	}
	if _, err := insertRows(ctx, tx, "INSERT INTO grants (openid, template_id, kind, scene, biz_no, vars, granted_at, request_id, status, lt_openid)", "(?,?,?,?,?,?,?,?,?,?)", "",
		len(grants), 1000, func(a []any, i int) []any {
			g := grants[i]
			var lt any
			if g.kind == wxcampaign.LongTerm {
				lt = g.r.OpenID
			}
			return append(a, g.r.OpenID, g.tmpl, string(g.kind), g.r.Scene, g.r.BusNo, g.vars, atv, g.r.RequestID, g.status, lt)
		}); err != nil {
		return st, fmt.Errorf("insert grants: %w", err)
	}
	if _, err := insertRows(ctx, tx, "INSERT INTO subscription_events (request_id, openid, template_id, result, scene, biz_no, at)", "(?,?,?,?,?,?,?)", "",
		len(events), 1000, func(a []any, i int) []any {
			e := events[i]
			return append(a, e.r.RequestID, e.r.OpenID, e.tmpl, e.result, e.r.Scene, e.r.BusNo, atv)
		}); err != nil {
		return st, fmt.Errorf("insert subscription events: %w", err)
	}
	return st, nil
}
