package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"modernc.org/sqlite"
)

// ErrBackupMySQL is returned by Backup and Restore on MySQL/MariaDB, whose
// own tools do it (docs/operations.md).
var ErrBackupMySQL = errors.New("store: backup and restore of MySQL/MariaDB are done with its own tools (mariadb-dump --single-transaction, or mariabackup): see docs/operations.md")

// Backup writes a consistent copy of the SQLite store to the new file path
// while the store is in use: SQLite's VACUUM INTO on a read connection
// reads one snapshot and never takes the write lock, so sends go on. The
// copy is synced to disk before Backup returns; path must not exist.
func (db *DB) Backup(ctx context.Context, path string) error {
	if !db.sqlite() {
		return ErrBackupMySQL
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s already exists", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("store: backup: %w", err)
	}
	tmp := path + ".partial"
	_ = os.Remove(tmp)
	if err := db.retry(ctx, "backup", func() error {
		_, err := db.r.ExecContext(ctx, "VACUUM INTO ?", tmp)
		return err
	}); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := syncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	return syncDir(filepath.Dir(path))
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync %s: %w", dir, err)
	}
	return nil
}

// CheckBackup opens a backup file read-only and checks that it is a whole
// SQLite database (integrity_check) holding the store's schema; it returns
// the schema version.
func CheckBackup(ctx context.Context, path string) (int64, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, fmt.Errorf("store: backup %s: %w", path, err)
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&_pragma=busy_timeout(5000)"}
	x, err := sql.Open("sqlite", u.String())
	if err != nil {
		return 0, fmt.Errorf("store: backup %s: %w", path, err)
	}
	defer x.Close()
	var res string
	if err := x.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil {
		return 0, fmt.Errorf("store: backup %s is not a readable SQLite database: %w", path, err)
	}
	if res != "ok" {
		return 0, fmt.Errorf("store: backup %s fails the integrity check: %s", path, res)
	}
	var v sql.NullInt64
	if err := x.QueryRowContext(ctx, "SELECT MAX(version_id) FROM goose_db_version WHERE is_applied").Scan(&v); err != nil || !v.Valid || v.Int64 == 0 {
		return 0, fmt.Errorf("store: %s is not a wxcampaign store backup (no schema version)", path)
	}
	return v.Int64, nil
}

// Restore replaces the SQLite store of cfg with the backup file, page by
// page through SQLite's backup API (its WAL stays consistent). It refuses
// while any other connection has the store open: stop the daemon first.
// Everything recorded after the backup was taken is lost (see
// docs/operations.md).
func Restore(ctx context.Context, cfg Config, backup string) error {
	switch cfg.Driver {
	case "", SQLite, "sqlite3":
	default:
		return ErrBackupMySQL
	}
	path := cfg.DSN
	if path == "" {
		path = DefaultSQLitePath
	}
	if path == ":memory:" || strings.Contains(path, "mode=memory") {
		return errors.New("store: restore: an in-memory store cannot be restored")
	}
	if _, err := CheckBackup(ctx, backup); err != nil {
		return err
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	x, err := sql.Open("sqlite", path+sep+"_pragma=busy_timeout(0)")
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer x.Close()
	x.SetMaxOpenConns(1)
	conn, err := x.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: restore: open %s: %w", path, err)
	}
	defer conn.Close()
	// Hold the store alone: exclusive locking mode keeps the lock until
	// this connection closes; another open connection makes it fail.
	if _, err := conn.ExecContext(ctx, "PRAGMA locking_mode=EXCLUSIVE"); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code()&0xff == 5 {
			return fmt.Errorf("store: restore: %s is in use by another process: stop the daemon (and every wxcampaign command on it) first", path)
		}
		return fmt.Errorf("store: restore: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return conn.Raw(func(dc any) error {
		r, ok := dc.(interface {
			NewRestore(string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("store: restore: the SQLite driver has no backup API")
		}
		b, err := r.NewRestore(backup)
		if err != nil {
			return fmt.Errorf("store: restore: %w", err)
		}
		for more := true; more; {
			if more, err = b.Step(1024); err != nil {
				_ = b.Finish()
				return fmt.Errorf("store: restore: %w", err)
			}
			if ctx.Err() != nil {
				_ = b.Finish()
				return fmt.Errorf("store: restore: %w (the store is partly restored: run restore again)", ctx.Err())
			}
		}
		if err := b.Finish(); err != nil {
			return fmt.Errorf("store: restore: %w", err)
		}
		return nil
	})
}
