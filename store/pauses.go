package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// Pause is one shared pause (see SetPause), e.g. the quota pause of an
// appid after WeChat's 45009.
type Pause struct {
	Key    string    `json:"key"`
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// ListPauses returns every stored pause, ended ones included, by key.
func (db *DB) ListPauses(ctx context.Context) ([]Pause, error) {
	var rows []struct {
		Key    string `db:"pause_key"`
		Until  dbTime `db:"until"`
		Reason string `db:"reason"`
	}
	err := db.retry(ctx, "list pauses", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, "SELECT pause_key, until, reason FROM pauses ORDER BY pause_key")
	})
	if err != nil {
		return nil, err
	}
	out := make([]Pause, len(rows))
	for i, r := range rows {
		out[i] = Pause{Key: r.Key, Until: r.Until.Time, Reason: r.Reason}
	}
	return out, nil
}

// ClearPauses deletes the pauses of keys, or every pause when keys is
// empty, and returns the keys it deleted. Every process sees the end of the
// pause at its next check.
func (db *DB) ClearPauses(ctx context.Context, keys ...string) ([]string, error) {
	var gone []string
	err := db.tx(ctx, "clear pauses", func(tx *sqlx.Tx) error {
		gone = gone[:0]
		q, args := "SELECT pause_key FROM pauses", []any{}
		if len(keys) > 0 {
			q += " WHERE pause_key IN " + in(len(keys))
			for _, k := range keys {
				args = append(args, k)
			}
		}
		if err := tx.SelectContext(ctx, &gone, q+" ORDER BY pause_key"+db.forUpdate(), args...); err != nil {
			return err
		}
		if len(gone) == 0 {
			return nil
		}
		del := make([]any, len(gone))
		for i, k := range gone {
			del[i] = k
		}
		_, err := tx.ExecContext(ctx, "DELETE FROM pauses WHERE pause_key IN "+in(len(del)), del...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}
