package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/wxcampaign/wxcampaign/store"
)

// markerTable marks a database as the benchmark's own: the benchmark
// creates it right after the database and drops an existing database of
// the configured name only when it holds this table (or Config.Force).
const markerTable = "wxc_bench_marker"

// ErrNotBenchDatabase is returned (wrapped) by Run when the configured
// database exists and was not created by the benchmark.
var ErrNotBenchDatabase = errors.New("not created by the benchmark; pass --force to drop it")

// freshDatabase drops the benchmark database if it exists (only when it
// carries the marker table, or with Force), creates it and marks it.
func (r *runner) freshDatabase(ctx context.Context) error {
	if r.cfg.Driver == store.SQLite {
		return r.freshFile(ctx)
	}
	name := r.cfg.Database
	var n int
	if err := r.admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", name).Scan(&n); err != nil {
		return fmt.Errorf("bench: look up database %s: %w", name, err)
	}
	if n > 0 && !r.cfg.Force {
		var marked int
		if err := r.admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", name, markerTable).Scan(&marked); err != nil {
			return fmt.Errorf("bench: look up database %s: %w", name, err)
		}
		if marked == 0 {
			return fmt.Errorf("bench: database %s exists without the %s table: %w", name, markerTable, ErrNotBenchDatabase)
		}
	}
	if _, err := r.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return fmt.Errorf("bench: drop database: %w", err)
	}
	if _, err := r.admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		return fmt.Errorf("bench: create database: %w", err)
	}
	if _, err := r.admin.ExecContext(ctx, "CREATE TABLE "+name+"."+markerTable+" (created_at DATETIME(6) NOT NULL, note VARCHAR(200) NOT NULL)"); err != nil {
		return fmt.Errorf("bench: mark database: %w", err)
	}
	if _, err := r.admin.ExecContext(ctx, "INSERT INTO "+name+"."+markerTable+" VALUES (?, ?)", r.cfg.Now().UTC(), "created by wxcampaign bench; dropped by the next run"); err != nil {
		return fmt.Errorf("bench: mark database: %w", err)
	}
	return nil
}

// freshFile is freshDatabase for SQLite: the file r.dsn.
func (r *runner) freshFile(ctx context.Context) error {
	if _, err := os.Stat(r.dsn); err == nil && !r.cfg.Force {
		db, err := sql.Open("sqlite", "file:"+r.dsn+"?mode=ro")
		if err != nil {
			return fmt.Errorf("bench: look up %s: %w", r.dsn, err)
		}
		var marked int
		err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?", markerTable).Scan(&marked)
		db.Close()
		if err != nil {
			return fmt.Errorf("bench: look up %s: %w", r.dsn, err)
		}
		if marked == 0 {
			return fmt.Errorf("bench: database file %s exists without the %s table: %w", r.dsn, markerTable, ErrNotBenchDatabase)
		}
	}
	r.removeFile()
	db, err := sql.Open("sqlite", r.dsn)
	if err != nil {
		return fmt.Errorf("bench: create %s: %w", r.dsn, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE TABLE "+markerTable+" (created_at TEXT NOT NULL, note TEXT NOT NULL)"); err != nil {
		return fmt.Errorf("bench: mark %s: %w", r.dsn, err)
	}
	return nil
}

func (r *runner) removeFile() {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(r.dsn + suffix)
	}
}

// dropDatabase drops the benchmark database (SQLite: removes the file).
func (r *runner) dropDatabase(ctx context.Context) {
	if r.cfg.Driver == store.SQLite {
		r.removeFile()
		return
	}
	if _, err := r.admin.ExecContext(context.WithoutCancel(ctx), "DROP DATABASE IF EXISTS "+r.cfg.Database); err != nil {
		r.logf("drop database %s: %v", r.cfg.Database, err)
	}
}

// openDB opens r.db, the benchmark's own connection to the store's
// database (MySQL: as the server DSN's user, so that its statements stay
// out of the children's statistics).
func (r *runner) openDB(ctx context.Context) (func(), error) {
	if r.cfg.Driver == store.SQLite {
		db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: r.dsn})
		if err != nil {
			return nil, fmt.Errorf("bench: open %s: %w", r.dsn, err)
		}
		r.db = db.SQLX().DB
		return func() { db.Close() }, nil
	}
	db, err := sql.Open("mysql", r.adminDSN)
	if err != nil {
		return nil, fmt.Errorf("bench: open %s: %w", r.cfg.Database, err)
	}
	r.db = db
	return func() { db.Close() }, nil
}

// userStats is a row of MariaDB's information_schema.USER_STATISTICS
// (userstat=1): what the server did for the benchmark's own connections,
// whatever else runs on the server. (Its COMMIT_TRANSACTIONS counts the
// storage engine's statement commits, not transactions: the COMMIT
// statements come from the global Com_commit instead.)
type userStats struct {
	CPU                                   float64 // seconds of the connection threads
	RowsRead, RowsInserted, RowsUpdated   int64
	RowsDeleted, Selects, Updates, Others int64
	valid                                 bool
}

func (u userStats) sub(o userStats) userStats {
	return userStats{u.CPU - o.CPU, u.RowsRead - o.RowsRead, u.RowsInserted - o.RowsInserted, u.RowsUpdated - o.RowsUpdated,
		u.RowsDeleted - o.RowsDeleted, u.Selects - o.Selects, u.Updates - o.Updates, u.Others - o.Others, u.valid && o.valid}
}

// statements is every statement the connections ran (SELECT, writes and
// the rest: transaction control, SET, PREPARE).
func (u userStats) statements() int64 { return u.Selects + u.Updates + u.Others }

// benchUser creates a MySQL user for the children, named after the
// database, so that USER_STATISTICS separates the benchmark's work from
// other clients of a shared server; it switches userstat on for the run.
// It returns the user and password, or empty strings (the children then
// use the server DSN's user, and the per-connection figures are missing)
// with the reason.
func (r *runner) benchUser(ctx context.Context) (user, pass, why string) {
	var on int
	if err := r.admin.QueryRowContext(ctx, "SELECT @@GLOBAL.userstat").Scan(&on); err != nil {
		return "", "", "no userstat (MariaDB only): " + err.Error()
	}
	if len(r.cfg.Database) > 32 {
		return "", "", "database name longer than 32 characters"
	}
	if on == 0 {
		if _, err := r.admin.ExecContext(ctx, "SET GLOBAL userstat = 1"); err != nil {
			return "", "", "cannot set userstat: " + err.Error()
		}
		r.restoreUserstat = true
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	user, pass = r.cfg.Database, hex.EncodeToString(b[:])
	for _, q := range []string{
		"DROP USER IF EXISTS '" + user + "'@'%'",
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + pass + "'",
		"GRANT ALL PRIVILEGES ON " + r.cfg.Database + ".* TO '" + user + "'@'%'",
	} {
		if _, err := r.admin.ExecContext(ctx, q); err != nil {
			r.dropUser(ctx, user)
			return "", "", "cannot create the benchmark user (the statement is not shown: it holds a password)"
		}
	}
	return user, pass, ""
}

// dropUser drops the benchmark's user and restores userstat.
func (r *runner) dropUser(ctx context.Context, user string) {
	if user != "" {
		_, _ = r.admin.ExecContext(context.WithoutCancel(ctx), "DROP USER IF EXISTS '"+user+"'@'%'")
	}
	if r.restoreUserstat {
		_, _ = r.admin.ExecContext(context.WithoutCancel(ctx), "SET GLOBAL userstat = 0")
		r.restoreUserstat = false
	}
}

// userStatus reads the benchmark user's statistics (invalid when there is
// no benchmark user or userstat was switched off meanwhile).
func (r *runner) userStatus(ctx context.Context) userStats {
	if r.user == "" || r.admin == nil {
		return userStats{}
	}
	var on int
	if err := r.admin.QueryRowContext(ctx, "SELECT @@GLOBAL.userstat").Scan(&on); err != nil || on == 0 {
		return userStats{}
	}
	var u userStats
	err := r.admin.QueryRowContext(ctx, `SELECT CPU_TIME, ROWS_READ, ROWS_INSERTED, ROWS_UPDATED, ROWS_DELETED,
		SELECT_COMMANDS, UPDATE_COMMANDS, OTHER_COMMANDS
		FROM information_schema.USER_STATISTICS WHERE USER = ?`, r.user).Scan(
		&u.CPU, &u.RowsRead, &u.RowsInserted, &u.RowsUpdated, &u.RowsDeleted, &u.Selects, &u.Updates, &u.Others)
	if errors.Is(err, sql.ErrNoRows) {
		return userStats{valid: true} // no connection yet
	}
	if err != nil {
		return userStats{}
	}
	u.valid = true
	return u
}
