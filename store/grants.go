package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// availableWhere is the condition for a grant g a run may take: active. A
// grant being sent is not excluded here: its in-flight send_log row is the
// claim (BeginSends), so a second run's mark of it is refused.
const availableWhere = "g.status = 'active'"

type grantRow struct {
	ID         int64          `db:"id"`
	OpenID     string         `db:"openid"`
	TemplateID string         `db:"template_id"`
	Kind       string         `db:"kind"`
	Scene      string         `db:"scene"`
	BizNo      string         `db:"biz_no"`
	Vars       sql.NullString `db:"vars"`
	GrantedAt  dbTime         `db:"granted_at"`
}

func (g grantRow) grant() (wxcampaign.Grant, error) {
	out := wxcampaign.Grant{
		ID: g.ID, OpenID: g.OpenID, TemplateID: g.TemplateID, Scene: g.Scene,
		BizNo: g.BizNo, GrantedAt: g.GrantedAt.Time, Kind: wxcampaign.Kind(g.Kind),
	}
	if g.Vars.Valid && g.Vars.String != "" {
		var err error
		if out.Vars, err = decodeObject(g.Vars.String); err != nil {
			return out, fmt.Errorf("grant %d: vars: %w", g.ID, err)
		}
	}
	return out, nil
}

// ListAvailable returns up to limit grants of templateID available (active)
// with id > afterID, by id ascending (keyset paging). now is kept for the
// callers: availability no longer depends on the time, since nothing
// reserves grants (the in-flight send_log row is the claim).
func (db *DB) ListAvailable(ctx context.Context, templateID string, afterID int64, limit int, now time.Time) ([]wxcampaign.Grant, error) {
	return db.ListAvailableAsOf(ctx, templateID, afterID, limit, now, time.Time{})
}

// ListAvailableAsOf is ListAvailable without the grants granted after
// grantedBy (zero: no such limit), for a preview as of a point in time.
func (db *DB) ListAvailableAsOf(ctx context.Context, templateID string, afterID int64, limit int, now, grantedBy time.Time) ([]wxcampaign.Grant, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := "SELECT g.id, g.openid, g.template_id, g.kind, g.scene, g.biz_no, g.vars, g.granted_at FROM grants g" + db.forceIndex("grants_available") + " WHERE g.template_id = ? AND g.id > ? AND " + availableWhere
	args := []any{templateID, afterID}
	if !grantedBy.IsZero() {
		q += " AND g.granted_at <= ?"
		args = append(args, db.tv(grantedBy))
	}
	q += " ORDER BY g.id LIMIT ?"
	args = append(args, limit)
	rows := make([]grantRow, 0, min(limit, 4096)) // one page: no growth
	err := db.retry(ctx, "list available", func() error {
		rows = rows[:0]
		return db.scanGrantRows(ctx, &rows, q, args...)
	})
	if err != nil {
		return nil, err
	}
	out := make([]wxcampaign.Grant, 0, len(rows))
	for _, r := range rows {
		g, err := r.grant()
		if err != nil {
			return nil, fmt.Errorf("store: list available: %w", err)
		}
		out = append(out, g)
	}
	return out, nil
}

// RepeatUsers returns the openids that hold more than one grant of
// templateID, whatever the grants' status. They are a superset of the users
// that a walk of the template's available grants meets more than once, and
// only those users' in-run counts (dedup, caps) are read again. It is one
// index-only scan of grants_openid: on MariaDB, 0.66 s for 1,000,000
// grants, against 1.1 s for an exact count of active grants, which reads
// every row.
func (db *DB) RepeatUsers(ctx context.Context, templateID string) ([]string, error) {
	q := "SELECT openid FROM grants" + db.forceIndex("grants_openid") + " WHERE template_id = ? GROUP BY openid HAVING COUNT(*) > 1"
	var out []string
	err := db.retry(ctx, "repeat users", func() error {
		out = out[:0]
		return db.r.SelectContext(ctx, &out, q, templateID)
	})
	if err != nil {
		return nil, fmt.Errorf("store: repeat users: %w", err)
	}
	return out, nil
}

// scanGrantRows appends the rows of q (the columns of grantRow, in its
// order) to dst. Scanned by hand: sqlx's reflection was a tenth of a
// preview's CPU.
func (db *DB) scanGrantRows(ctx context.Context, dst *[]grantRow, q string, args ...any) error {
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// A page's template id, kind and scene repeat from row to row: each
	// distinct value is one string, not one per row.
	var tpl, kind, scene sql.RawBytes
	seen := make(map[string]string, 8)
	intern := func(b []byte) string {
		if s, ok := seen[string(b)]; ok {
			return s
		}
		s := string(b)
		if len(seen) < 64 {
			seen[s] = s
		}
		return s
	}
	for rows.Next() {
		*dst = append(*dst, grantRow{})
		r := &(*dst)[len(*dst)-1] // scanned in place: no row escapes per scan
		if err := rows.Scan(&r.ID, &r.OpenID, &tpl, &kind, &scene, &r.BizNo, &r.Vars, &r.GrantedAt); err != nil {
			*dst = (*dst)[:len(*dst)-1]
			return err
		}
		r.TemplateID, r.Kind, r.Scene = intern(tpl), intern(kind), intern(scene)
	}
	return rows.Err()
}

// forceIndex is " FORCE INDEX (name)" on MySQL/MariaDB (TiDB reads it
// too) and " INDEXED BY name" on SQLite (an error, not a scan, should the
// index ever not fit). Where it is used, the database's own choice was a
// scan that grows with the table:
//   - grants_available (template_id, status, id) for the keyset page of
//     ListAvailable: left to itself MariaDB picks a ref access on
//     (template_id, status) with the id bound only as an index condition,
//     which reads the index from the start of the template on every page:
//     a 1,000,000-grant walk then costs O(N^2) (0.05 s for the first page,
//     0.9 s for the last; docs/performance.md);
//   - send_log_once (campaign, grant_id, occurrence) for FailStreaks: with
//     the statistics of a send_log that was empty when the run began, a
//     scan of the whole table per batch (7,000 rows read per batch at
//     100,000 grants);
//   - send_log_user and send_log_template for the cap counts (capPlan.load),
//     for the same reason once a mark group has over 200 users;
//   - grants_openid (openid, template_id) for RepeatUsers: SQLite read the
//     template's rows through grants_available and grouped them in a
//     temporary B-tree (2.5 s at 1,000,000 grants, 0.26 s by the index).
func (db *DB) forceIndex(name string) string {
	if db.sqlite() {
		return " INDEXED BY " + name
	}
	return " FORCE INDEX (" + name + ")"
}

// CountAvailable counts the grants of templateID available (active); now is
// unused, as for ListAvailable.
func (db *DB) CountAvailable(ctx context.Context, templateID string, now time.Time) (int, error) {
	var n int
	err := db.retry(ctx, "count available", func() error {
		return db.r.GetContext(ctx, &n, "SELECT COUNT(*) FROM grants g WHERE g.template_id = ? AND "+availableWhere, templateID)
	})
	return n, err
}

// GetGrant returns one grant with its ledger state (status, the holder of
// a send in flight).
func (db *DB) GetGrant(ctx context.Context, id int64) (GrantState, error) {
	var r struct {
		grantRow
		Status     string         `db:"status"`
		ConsumedAt dbTime         `db:"consumed_at"`
		InFlightBy sql.NullString `db:"in_flight_by"`
	}
	err := db.retry(ctx, "get grant", func() error {
		return db.r.GetContext(ctx, &r, `SELECT g.id, g.openid, g.template_id, g.kind, g.scene, g.biz_no, g.vars, g.granted_at, g.status, g.consumed_at, f.holder AS in_flight_by
FROM grants g LEFT JOIN send_log f ON f.inflight_grant = g.id WHERE g.id = ?`, id)
	})
	if err == nil {
		var g wxcampaign.Grant
		g, err = r.grant()
		return GrantState{Grant: g, Status: r.Status, ConsumedAt: r.ConsumedAt.Time, InFlightBy: r.InFlightBy.String}, err
	}
	if isNoRows(err) {
		return GrantState{}, wxcampaign.Errorf(wxcampaign.ENOTFOUND, "grant %d not found", id)
	}
	return GrantState{}, err
}

// GrantState is a grant with its ledger state.
type GrantState struct {
	wxcampaign.Grant
	Status     string    `json:"status"` // active, consumed or revoked
	ConsumedAt time.Time `json:"consumed_at"`
	// InFlightBy is the holder of the grant's send in flight (its
	// send_log row's inflight_grant), empty when none is.
	InFlightBy string `json:"in_flight_by,omitempty"`
}

// sortedUnique returns ids sorted ascending without repeats, so that rows
// are always locked in the same order (no lock-order deadlocks).
func sortedUnique(ids []int64) []int64 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}
