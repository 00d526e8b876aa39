package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// availableWhere is the condition for a grant g a run may take at now (the
// last argument): active and not reserved by a live lease.
const availableWhere = "g.status = 'active' AND NOT EXISTS (SELECT 1 FROM grant_reservations r WHERE r.grant_id = g.id AND r.until > ?)"

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
		if err := json.Unmarshal([]byte(g.Vars.String), &out.Vars); err != nil {
			return out, fmt.Errorf("grant %d: vars: %w", g.ID, err)
		}
	}
	return out, nil
}

// ListAvailable returns up to limit grants of templateID available at now
// with id > afterID, by id ascending (keyset paging).
func (db *DB) ListAvailable(ctx context.Context, templateID string, afterID int64, limit int, now time.Time) ([]wxcampaign.Grant, error) {
	return db.ListAvailableAsOf(ctx, templateID, afterID, limit, now, time.Time{})
}

// ListAvailableAsOf is ListAvailable without the grants granted after
// grantedBy (zero: no such limit), for a preview as of a point in time.
func (db *DB) ListAvailableAsOf(ctx context.Context, templateID string, afterID int64, limit int, now, grantedBy time.Time) ([]wxcampaign.Grant, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := "SELECT g.id, g.openid, g.template_id, g.kind, g.scene, g.biz_no, g.vars, g.granted_at FROM grants g" + db.availableIndex() + " WHERE g.template_id = ? AND g.id > ? AND " + availableWhere
	args := []any{templateID, afterID, db.tv(now)}
	if !grantedBy.IsZero() {
		q += " AND g.granted_at <= ?"
		args = append(args, db.tv(grantedBy))
	}
	q += " ORDER BY g.id LIMIT ?"
	args = append(args, limit)
	var rows []grantRow
	err := db.retry(ctx, "list available", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, q, args...)
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

// availableIndex forces the keyset page onto a range scan of
// grants_available (template_id, status, id) on MySQL/MariaDB. Left to
// itself MariaDB picks a ref access on (template_id, status) with the id
// bound only as an index condition, which reads the index from the start
// of the template on every page: a 1,000,000-grant walk then costs
// O(N^2) (0.05 s for the first page, 0.9 s for the last; docs/performance.md).
func (db *DB) availableIndex() string {
	if db.sqlite() {
		return ""
	}
	return " FORCE INDEX (grants_available)"
}

// CountAvailable counts the grants of templateID available at now.
func (db *DB) CountAvailable(ctx context.Context, templateID string, now time.Time) (int, error) {
	var n int
	err := db.retry(ctx, "count available", func() error {
		return db.r.GetContext(ctx, &n, "SELECT COUNT(*) FROM grants g WHERE g.template_id = ? AND "+availableWhere, templateID, db.tv(now))
	})
	return n, err
}

// GetGrant returns one grant with its ledger state (status, reservation).
func (db *DB) GetGrant(ctx context.Context, id int64) (GrantState, error) {
	var r struct {
		grantRow
		Status        string         `db:"status"`
		ConsumedAt    dbTime         `db:"consumed_at"`
		ReservedBy    sql.NullString `db:"reserved_by"`
		ReservedUntil dbTime         `db:"reserved_until"`
	}
	err := db.retry(ctx, "get grant", func() error {
		return db.r.GetContext(ctx, &r, `SELECT g.id, g.openid, g.template_id, g.kind, g.scene, g.biz_no, g.vars, g.granted_at, g.status, g.consumed_at, r.holder AS reserved_by, r.until AS reserved_until
FROM grants g LEFT JOIN grant_reservations r ON r.grant_id = g.id AND g.status = 'active' WHERE g.id = ?`, id)
	})
	if err == nil {
		var g wxcampaign.Grant
		g, err = r.grant()
		return GrantState{Grant: g, Status: r.Status, ConsumedAt: r.ConsumedAt.Time, ReservedBy: r.ReservedBy.String, ReservedUntil: r.ReservedUntil.Time}, err
	}
	if isNoRows(err) {
		return GrantState{}, wxcampaign.Errorf(wxcampaign.ENOTFOUND, "grant %d not found", id)
	}
	return GrantState{}, err
}

// GrantState is a grant with its ledger state.
type GrantState struct {
	wxcampaign.Grant
	Status        string    `json:"status"` // active, consumed or revoked
	ConsumedAt    time.Time `json:"consumed_at"`
	ReservedBy    string    `json:"reserved_by"`
	ReservedUntil time.Time `json:"reserved_until"`
}

// sortedUnique returns ids sorted ascending without repeats, so that rows
// are always locked in the same order (no lock-order deadlocks).
func sortedUnique(ids []int64) []int64 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}

// Reserve atomically takes, for holder until until, those of ids that are
// available at now (or already reserved by holder) and returns the ids
// taken, ascending. No two holders can hold one grant: a reservation is the
// grant's row in grant_reservations (primary key grant_id), taken over only
// when its lease expired; the grant rows are share-locked, so a grant
// consumed or revoked meanwhile is not taken.
//
// The common case is one statement: an INSERT IGNORE ... SELECT of the
// active grants that writes every row (no reservation existed). Otherwise
// the existing reservations that are expired or holder's own are taken over
// and the taken ids read back.
func (db *DB) Reserve(ctx context.Context, holder string, ids []int64, now, until time.Time) ([]int64, error) {
	ids = sortedUnique(ids)
	var taken []int64
	lock := ""
	if !db.sqlite() {
		lock = " LOCK IN SHARE MODE"
	}
	err := db.tx(ctx, "reserve", func(tx *sqlx.Tx) error {
		taken = taken[:0]
		for _, c := range chunks(len(ids), maxIDsPerStatement) {
			part := ids[c[0]:c[1]]
			args := append([]any{holder, db.tv(until)}, int64Args(part)...)
			res, err := tx.ExecContext(ctx, db.insertIgnore()+" INTO grant_reservations (grant_id, holder, until) SELECT id, ?, ? FROM grants WHERE id IN "+in(len(part))+
				" AND status = 'active' ORDER BY id"+lock, args...)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err == nil && int(n) == len(part) {
				taken = append(taken, part...)
				continue
			}
			// Some grant is not active or already has a reservation row.
			var active []int64
			if err := tx.SelectContext(ctx, &active, "SELECT id FROM grants WHERE id IN "+in(len(part))+" AND status = 'active' ORDER BY id"+lock, int64Args(part)...); err != nil {
				return err
			}
			if len(active) == 0 {
				continue
			}
			args = append([]any{holder, db.tv(until)}, int64Args(active)...)
			args = append(args, db.tv(now), holder)
			if _, err := tx.ExecContext(ctx, "UPDATE grant_reservations SET holder = ?, until = ? WHERE grant_id IN "+in(len(active))+
				" AND (until <= ? OR holder = ?)", args...); err != nil {
				return err
			}
			var got []int64
			args = append(int64Args(active), holder)
			if err := tx.SelectContext(ctx, &got, "SELECT grant_id FROM grant_reservations WHERE grant_id IN "+in(len(active))+
				" AND holder = ? ORDER BY grant_id", args...); err != nil {
				return err
			}
			taken = append(taken, got...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return taken, nil
}

// Release drops holder's reservations of ids (others' are untouched).
func (db *DB) Release(ctx context.Context, holder string, ids []int64) error {
	ids = sortedUnique(ids)
	return db.tx(ctx, "release", func(tx *sqlx.Tx) error {
		for _, c := range chunks(len(ids), maxIDsPerStatement) {
			part := ids[c[0]:c[1]]
			args := append(int64Args(part), holder)
			if _, err := tx.ExecContext(ctx, "DELETE FROM grant_reservations WHERE grant_id IN "+in(len(part))+" AND holder = ?", args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExtendReservations moves every reservation of holder to until. The
// reservation table holds only the leases in flight, so this scans it.
func (db *DB) ExtendReservations(ctx context.Context, holder string, until time.Time) error {
	return db.tx(ctx, "extend reservations", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE grant_reservations SET until = ? WHERE holder = ?", db.tv(until), holder)
		return err
	})
}
