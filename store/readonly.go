package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jmoiron/sqlx"
)

// ErrNoDatabase is returned by OpenReadOnly and OpenFacts when the SQLite
// file does not exist: a read-only open creates nothing.
var ErrNoDatabase = errors.New("store: database file does not exist")

// OpenReadOnly opens the database for a command that writes nothing (a
// preview): on SQLite the file is opened read-only (mode=ro, query_only)
// and a missing file is ErrNoDatabase, not a new empty database; on MySQL
// every transaction of the store is READ ONLY. Writes fail.
func OpenReadOnly(ctx context.Context, cfg Config) (*DB, error) {
	switch cfg.Driver {
	case "", SQLite, "sqlite3":
		x, err := openSQLiteRO(ctx, cfg)
		if err != nil {
			return nil, err
		}
		return &DB{driver: SQLite, w: x, r: x}, nil
	case MySQL, "mariadb":
		db, err := openMySQL(ctx, cfg)
		if err != nil {
			return nil, err
		}
		db.txOpts = &sql.TxOptions{Isolation: sql.LevelReadCommitted, ReadOnly: true}
		return db, nil
	default:
		return nil, fmt.Errorf("store: open: unknown driver %q (want sqlite or mysql)", cfg.Driver)
	}
}

// sqliteROSource returns the read-only DSN of an SQLite database and the
// path of its file ("" for an in-memory database).
func sqliteROSource(dsn string) (string, string) {
	if dsn == "" {
		dsn = DefaultSQLitePath
	}
	const opts = "mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	if rest, ok := strings.CutPrefix(dsn, "file:"); ok {
		path, query, _ := strings.Cut(rest, "?")
		if strings.Contains(query, "mode=memory") || path == ":memory:" {
			return "", ""
		}
		sep := "?"
		if query != "" {
			sep = "&"
		}
		return dsn + sep + opts, path
	}
	path, _, _ := strings.Cut(dsn, "?")
	if path == ":memory:" {
		return "", ""
	}
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + opts, path
}

// openSQLiteRO opens an existing SQLite file read-only and query-only.
func openSQLiteRO(ctx context.Context, cfg Config) (*sqlx.DB, error) {
	dsn, path := sqliteROSource(cfg.DSN)
	if path == "" {
		return nil, fmt.Errorf("store: an in-memory SQLite database cannot be opened read-only")
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNoDatabase, path)
		}
		return nil, fmt.Errorf("store: open sqlite read-only: %w", err)
	}
	x, err := sqlx.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite read-only: %w", err)
	}
	x.SetMaxOpenConns(maxConns(cfg))
	x.SetMaxIdleConns(maxConns(cfg))
	if err := x.PingContext(ctx); err != nil {
		x.Close()
		return nil, fmt.Errorf("store: open sqlite read-only %s: %w", path, err)
	}
	return x, nil
}
