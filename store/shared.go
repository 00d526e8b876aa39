package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

func errorf(format string, args ...any) error {
	return wxcampaign.Errorf(wxcampaign.ENOTFOUND, format, args...)
}

// SetPause pauses key (e.g. "quota:APPID" after 45009) until until, for
// every process; a later SetPause replaces it.
func (db *DB) SetPause(ctx context.Context, key string, until time.Time, reason string) error {
	q := "INSERT INTO pauses (pause_key, until, reason) VALUES (?,?,?) ON DUPLICATE KEY UPDATE until = VALUES(until), reason = VALUES(reason)"
	if db.sqlite() {
		q = "INSERT INTO pauses (pause_key, until, reason) VALUES (?,?,?) ON CONFLICT (pause_key) DO UPDATE SET until = excluded.until, reason = excluded.reason"
	}
	return db.tx(ctx, "set pause", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, q, key, db.tv(until), truncate(reason, 255))
		return err
	})
}

// PausedUntil returns when the pause of key ends and why, or the zero time
// when key is not paused at now.
func (db *DB) PausedUntil(ctx context.Context, key string, now time.Time) (time.Time, string, error) {
	var r struct {
		Until  dbTime `db:"until"`
		Reason string `db:"reason"`
	}
	err := db.retry(ctx, "paused until", func() error {
		return db.r.GetContext(ctx, &r, "SELECT until, reason FROM pauses WHERE pause_key = ? AND until > ?", key, db.tv(now))
	})
	if isNoRows(err) {
		return time.Time{}, "", nil
	}
	if err != nil {
		return time.Time{}, "", err
	}
	return r.Until.Time, r.Reason, nil
}

// redact keeps secret out of err's text. The wrapped chain is dropped when
// it would reveal the secret.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "[redacted]"))
}

// LoadToken returns the shared access token of appid and its expiry, or ""
// when none is stored.
func (db *DB) LoadToken(ctx context.Context, appid string) (token string, expiresAt time.Time, err error) {
	var r struct {
		Token   sql.NullString `db:"token"`
		Expires dbTime         `db:"expires_at"`
	}
	err = db.retry(ctx, "load token", func() error {
		return db.r.GetContext(ctx, &r, "SELECT token, expires_at FROM tokens WHERE appid = ?", appid)
	})
	if isNoRows(err) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err // the query carries no token
	}
	if !r.Token.Valid || r.Token.String == "" {
		return "", time.Time{}, nil
	}
	return r.Token.String, r.Expires.Time, nil
}

// SaveToken stores appid's token and expiry and ends the refresh lease.
// Errors never carry the token.
func (db *DB) SaveToken(ctx context.Context, appid, token string, expiresAt time.Time) error {
	q := "INSERT INTO tokens (appid, token, expires_at) VALUES (?,?,?) ON DUPLICATE KEY UPDATE token = VALUES(token), expires_at = VALUES(expires_at), lease_holder = NULL, lease_until = NULL"
	if db.sqlite() {
		q = "INSERT INTO tokens (appid, token, expires_at) VALUES (?,?,?) ON CONFLICT (appid) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at, lease_holder = NULL, lease_until = NULL"
	}
	return redact(db.tx(ctx, "save token", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, q, appid, token, db.tv(expiresAt))
		return redact(err, token)
	}), token)
}

// TryTokenLease gives holder the right to refresh appid's token until until
// if nobody else holds a live lease at now; it reports whether it did.
func (db *DB) TryTokenLease(ctx context.Context, appid, holder string, now, until time.Time) (bool, error) {
	var ok bool
	err := db.tx(ctx, "token lease", func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, db.insertIgnore()+" INTO tokens (appid) VALUES (?)", appid); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, "UPDATE tokens SET lease_holder = ?, lease_until = ? WHERE appid = ? AND (lease_until IS NULL OR lease_until <= ? OR lease_holder = ?)",
			holder, db.tv(until), appid, db.tv(now), holder)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		ok = n == 1
		return err
	})
	return ok, err
}

// DropToken forgets appid's token if it is still token (after 40001,
// 40014 or 42001), so the next caller fetches a new one.
func (db *DB) DropToken(ctx context.Context, appid, token string) error {
	return redact(db.tx(ctx, "drop token", func(tx *sqlx.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE tokens SET token = NULL, expires_at = NULL WHERE appid = ? AND token = ?", appid, token)
		return redact(err, token)
	}), token)
}
