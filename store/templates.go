package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Template is one private template of the account as the last sync of the
// template registry stored it (getTemplateList).
type Template struct {
	ID       string          `json:"id"` // priTmplId
	Title    string          `json:"title"`
	Kind     wxcampaign.Kind `json:"kind"` // type 2 one_time, 3 long_term
	Content  string          `json:"content"`
	Example  string          `json:"example,omitempty"`
	Keys     []TemplateKey   `json:"keys"` // in the template's order
	SyncedAt time.Time       `json:"synced_at"`
}

// TemplateKey is one data key of a template: "thing1" of type "thing" with
// the label WeChat shows next to it, an example value and, for enum keys,
// the allowed values (keywordEnumValueList).
type TemplateKey struct {
	Key     string   `json:"key"`
	Type    string   `json:"type"`
	Label   string   `json:"label,omitempty"`
	Example string   `json:"example,omitempty"`
	Enum    []string `json:"enum,omitempty"`
}

// Registry is the account's template list as of SyncedAt.
type Registry struct {
	AppID     string     `json:"appid"`
	SyncedAt  time.Time  `json:"synced_at"` // zero: never synced
	Templates []Template `json:"templates"` // in WeChat's order
}

// Synced reports whether the registry was ever synced.
func (r Registry) Synced() bool { return !r.SyncedAt.IsZero() }

// SyncResult counts what a sync changed.
type SyncResult struct {
	Added, Changed, Removed, Unchanged int
}

const maxTemplateID = 128

// SyncTemplates replaces appid's registry with ts, as listed at at, in one
// transaction: a template WeChat no longer lists is removed. It returns what
// changed. An empty ts is a valid list (every template deleted).
func (db *DB) SyncTemplates(ctx context.Context, appid string, ts []Template, at time.Time) (SyncResult, error) {
	var res SyncResult
	if appid == "" {
		return res, fmt.Errorf("store: sync templates: empty appid")
	}
	seen := make(map[string]bool, len(ts))
	rows := make([][]any, 0, len(ts))
	for i, t := range ts {
		switch {
		case t.ID == "" || len(t.ID) > maxTemplateID:
			return res, fmt.Errorf("store: sync templates: template %d: id %q: want 1 to %d bytes", i, t.ID, maxTemplateID)
		case seen[t.ID]:
			return res, fmt.Errorf("store: sync templates: template %s listed twice", t.ID)
		case !t.Kind.Valid():
			return res, fmt.Errorf("store: sync templates: template %s: kind %q", t.ID, t.Kind)
		}
		seen[t.ID] = true
		keys, err := json.Marshal(t.Keys)
		if err != nil {
			return res, fmt.Errorf("store: sync templates: template %s: %w", t.ID, err)
		}
		rows = append(rows, []any{appid, t.ID, i, t.Title, string(t.Kind), t.Content, t.Example, string(keys), db.tv(at)})
	}
	upsert := "INSERT INTO template_syncs (appid, synced_at) VALUES (?,?) ON DUPLICATE KEY UPDATE synced_at = VALUES(synced_at)"
	if db.sqlite() {
		upsert = "INSERT INTO template_syncs (appid, synced_at) VALUES (?,?) ON CONFLICT (appid) DO UPDATE SET synced_at = excluded.synced_at"
	}
	err := db.tx(ctx, "sync templates", func(tx *sqlx.Tx) error {
		res = SyncResult{}
		old, err := templatesTx(ctx, tx, db.r, appid)
		if err != nil {
			return err
		}
		byID := make(map[string]Template, len(old))
		for _, t := range old {
			byID[t.ID] = t
		}
		for _, t := range ts {
			o, ok := byID[t.ID]
			switch {
			case !ok:
				res.Added++
			case sameTemplate(o, t):
				res.Unchanged++
			default:
				res.Changed++
			}
		}
		for _, t := range old {
			if !seen[t.ID] {
				res.Removed++
			}
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM templates WHERE appid = ?", appid); err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, "INSERT INTO templates (appid, template_id, position, title, kind, content, example, keys_json, synced_at) VALUES (?,?,?,?,?,?,?,?,?)", r...); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, upsert, appid, db.tv(at))
		return err
	})
	if err != nil {
		return SyncResult{}, fmt.Errorf("store: sync templates: %w", err)
	}
	return res, nil
}

// sameTemplate reports whether a sync leaves a template as it was.
func sameTemplate(a, b Template) bool {
	return a.ID == b.ID && a.Title == b.Title && a.Kind == b.Kind && a.Content == b.Content && a.Example == b.Example &&
		slices.EqualFunc(a.Keys, b.Keys, func(x, y TemplateKey) bool {
			return x.Key == y.Key && x.Type == y.Type && x.Label == y.Label && x.Example == y.Example && slices.Equal(x.Enum, y.Enum)
		})
}

// Templates returns appid's registry: its templates in WeChat's order and
// when they were synced (zero when never).
func (db *DB) Templates(ctx context.Context, appid string) (Registry, error) {
	reg := Registry{AppID: appid}
	err := db.retry(ctx, "templates", func() error {
		var at []dbTime
		if err := db.r.SelectContext(ctx, &at, "SELECT synced_at FROM template_syncs WHERE appid = ?", appid); err != nil {
			return err
		}
		reg.SyncedAt = time.Time{}
		if len(at) > 0 {
			reg.SyncedAt = at[0].Time
		}
		ts, err := templatesTx(ctx, nil, db.r, appid)
		reg.Templates = ts
		return err
	})
	if err != nil {
		return Registry{AppID: appid}, fmt.Errorf("store: templates: %w", err)
	}
	return reg, nil
}

type templateRow struct {
	ID       string `db:"template_id"`
	Title    string `db:"title"`
	Kind     string `db:"kind"`
	Content  string `db:"content"`
	Example  string `db:"example"`
	Keys     string `db:"keys_json"`
	SyncedAt dbTime `db:"synced_at"`
}

// templatesTx reads appid's templates in order, in tx when it is not nil.
func templatesTx(ctx context.Context, tx *sqlx.Tx, r *sqlx.DB, appid string) ([]Template, error) {
	const q = "SELECT template_id, title, kind, content, example, keys_json, synced_at FROM templates WHERE appid = ? ORDER BY position"
	var rows []templateRow
	var err error
	if tx != nil {
		err = tx.SelectContext(ctx, &rows, q, appid)
	} else {
		err = r.SelectContext(ctx, &rows, q, appid)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Template, 0, len(rows))
	for _, row := range rows {
		t := Template{ID: row.ID, Title: row.Title, Kind: wxcampaign.Kind(row.Kind), Content: row.Content,
			Example: row.Example, SyncedAt: row.SyncedAt.Time}
		if err := json.Unmarshal([]byte(row.Keys), &t.Keys); err != nil {
			return nil, fmt.Errorf("template %s: keys: %w", row.ID, err)
		}
		out = append(out, t)
	}
	return out, nil
}
