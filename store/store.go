// Package store is the grant ledger: grants (credits), subscription records,
// the send log, frequency caps, run leases, pauses and the shared access
// token, on MySQL/MariaDB (production) or on embedded pure-Go SQLite (the
// default, no server needed).
//
// Every guarantee the engine relies on across processes is kept here with a
// unique key, a guarded UPDATE or a locked row: no grant is held by two
// holders, no (campaign, occurrence, grant) is sent twice, caps are checked
// and taken atomically. Deadlocks, lock wait timeouts and short connection
// outages are retried inside and never reach the caller.
package store

import (
	"context"
	crand "crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"modernc.org/sqlite"

	"github.com/wxcampaign/wxcampaign"
)

// Driver names accepted in Config.Driver.
const (
	SQLite = "sqlite"
	MySQL  = "mysql"
)

// DefaultSQLitePath is the database file used when Config.DSN is empty.
const DefaultSQLitePath = "wxcampaign.db"

// ErrLeaseLost is returned when a run lease is no longer held by the caller.
var ErrLeaseLost = errors.New("store: lease lost")

// Config says which database to open.
type Config struct {
	// Driver is "sqlite" (default) or "mysql".
	Driver string `yaml:"driver" json:"driver"`
	// DSN is, for sqlite, a file path or a file: DSN (default
	// "wxcampaign.db"); for mysql a go-sql-driver DSN
	// (user:pass@tcp(host:3306)/db).
	DSN string `yaml:"dsn" json:"dsn"`
	// MaxOpenConns bounds the connection pool (mysql; sqlite readers).
	// Zero means 16.
	MaxOpenConns int `yaml:"max_open_conns" json:"max_open_conns"`
}

// Validate checks the values of c without contacting the database; errors
// are *wxcampaign.FieldError naming driver, dsn or max_open_conns.
func (c Config) Validate() error {
	var errs []error
	switch c.Driver {
	case "", SQLite, "sqlite3":
	case MySQL, "mariadb":
		if c.DSN == "" {
			errs = append(errs, wxcampaign.FieldErrorf("dsn", "required for mysql: user:password@tcp(host:3306)/database"))
		} else if _, err := MySQLDSN(c.DSN); err != nil {
			errs = append(errs, wxcampaign.FieldErrorf("dsn", "%s", strings.TrimPrefix(err.Error(), "store: mysql dsn: ")))
		}
	default:
		errs = append(errs, wxcampaign.FieldErrorf("driver", "unknown driver %q: want sqlite or mysql", c.Driver))
	}
	if c.MaxOpenConns < 0 {
		errs = append(errs, wxcampaign.FieldErrorf("max_open_conns", "must be 0 (default 16) or more, got %d", c.MaxOpenConns))
	}
	return errors.Join(errs...)
}

// DB is the ledger. It is safe for concurrent use.
type DB struct {
	driver string
	w      *sqlx.DB // writes (sqlite: one connection, BEGIN IMMEDIATE)
	r      *sqlx.DB // reads (mysql: the same pool as w)
	txOpts *sql.TxOptions
	noBulk atomic.Bool // set when the server refuses LOAD DATA LOCAL INFILE
}

// Open opens the database described by cfg and checks that it answers. It
// does not migrate: call Migrate.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	switch cfg.Driver {
	case "", SQLite, "sqlite3":
		return openSQLite(ctx, cfg)
	case MySQL, "mariadb":
		return openMySQL(ctx, cfg)
	default:
		return nil, fmt.Errorf("store: open: unknown driver %q (want sqlite or mysql)", cfg.Driver)
	}
}

func maxConns(cfg Config) int {
	if cfg.MaxOpenConns > 0 {
		return cfg.MaxOpenConns
	}
	return 16
}

// MySQLDSN returns dsn with the options the store relies on: parseTime,
// loc=UTC, interpolateParams, clientFoundRows (affected rows count matched
// rows) and multiStatements off.
func MySQLDSN(dsn string) (string, error) {
	c, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("store: mysql dsn: %w", redactDSNErr(err, dsn))
	}
	c.ParseTime = true
	c.Loc = time.UTC
	c.InterpolateParams = true
	c.ClientFoundRows = true
	c.MultiStatements = false
	if c.Params == nil {
		c.Params = map[string]string{}
	}
	if _, ok := c.Params["time_zone"]; !ok {
		c.Params["time_zone"] = "'+00:00'"
	}
	if c.Collation == "" {
		c.Collation = "utf8mb4_bin"
	}
	return c.FormatDSN(), nil
}

// redactDSNErr keeps a DSN (which may hold a password) out of error text.
func redactDSNErr(err error, dsn string) error {
	if dsn != "" && strings.Contains(err.Error(), dsn) {
		return errors.New(strings.ReplaceAll(err.Error(), dsn, "[dsn]"))
	}
	return err
}

func openMySQL(ctx context.Context, cfg Config) (*DB, error) {
	dsn, err := MySQLDSN(cfg.DSN)
	if err != nil {
		return nil, err
	}
	x, err := sqlx.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open mysql: %w", redactDSNErr(err, dsn))
	}
	n := maxConns(cfg)
	x.SetMaxOpenConns(n)
	x.SetMaxIdleConns(n)
	x.SetConnMaxLifetime(30 * time.Minute)
	db := &DB{driver: MySQL, w: x, r: x, txOpts: &sql.TxOptions{Isolation: sql.LevelReadCommitted}}
	if err := db.retry(ctx, "ping", func() error { return x.PingContext(ctx) }); err != nil {
		x.Close()
		return nil, fmt.Errorf("store: open mysql: %w", err)
	}
	return db, nil
}

// sqliteDSN builds a modernc.org/sqlite DSN with WAL, a busy timeout,
// foreign keys, synchronous=FULL and, for the writer, BEGIN IMMEDIATE
// transactions. FULL makes every commit durable (the WAL is synced at
// each commit): a send marked in flight stays marked through a power cut,
// which NORMAL does not promise. WAL keeps it to one sync per commit, and
// the write path commits groups of sends.
func sqliteDSN(path string, writer bool) string {
	if path == "" {
		path = DefaultSQLitePath
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	opts := "_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)"
	if writer {
		opts += "&_txlock=immediate"
	}
	return path + sep + opts
}

func openSQLite(ctx context.Context, cfg Config) (*DB, error) {
	mem := cfg.DSN == ":memory:" || strings.Contains(cfg.DSN, "mode=memory")
	w, err := sqlx.Open("sqlite", sqliteDSN(cfg.DSN, true))
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	db := &DB{driver: SQLite, w: w, r: w}
	if err := w.PingContext(ctx); err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open sqlite: %w", err)
	}
	if !mem {
		r, err := sqlx.Open("sqlite", sqliteDSN(cfg.DSN, false))
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("store: open sqlite reader: %w", err)
		}
		n := maxConns(cfg)
		r.SetMaxOpenConns(n)
		r.SetMaxIdleConns(n)
		db.r = r
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error {
	err := db.w.Close()
	if db.r != db.w {
		if e := db.r.Close(); err == nil {
			err = e
		}
	}
	if err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Driver returns "sqlite" or "mysql".
func (db *DB) Driver() string { return db.driver }

// SQLX returns the underlying pool (for sqlite, the single writer
// connection; do not hold a transaction on it while calling DB methods).
func (db *DB) SQLX() *sqlx.DB { return db.w }

func (db *DB) sqlite() bool { return db.driver == SQLite }

// insertIgnore is the dialect's INSERT that skips rows hitting a unique key.
func (db *DB) insertIgnore() string {
	if db.sqlite() {
		return "INSERT OR IGNORE"
	}
	return "INSERT IGNORE"
}

// forUpdate is the dialect's row lock suffix (sqlite: the write transaction
// already excludes every other writer).
func (db *DB) forUpdate() string {
	if db.sqlite() {
		return ""
	}
	return " FOR UPDATE"
}

// Time handling: every time is stored in UTC with microsecond precision.
// MySQL gets time.Time (DATETIME(6)); SQLite gets fixed-width text so that
// comparisons order correctly.
const sqliteTimeFormat = "2006-01-02 15:04:05.000000"

func normTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// tv converts t to the dialect's argument.
func (db *DB) tv(t time.Time) any {
	t = normTime(t)
	if db.sqlite() {
		return t.Format(sqliteTimeFormat)
	}
	return t
}

// dbTime scans a time stored by either dialect; NULL scans as the zero time.
type dbTime struct{ time.Time }

var timeLayouts = []string{
	sqliteTimeFormat,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02",
}

// parseTimeText parses the text forms of dates and times, as UTC when the
// text carries no zone.
func parseTimeText(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("store: cannot parse time %q", s)
}

// Scan implements sql.Scanner.
func (t *dbTime) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		t.Time = time.Time{}
	case time.Time:
		t.Time = v.UTC()
	case string:
		p, err := parseTimeText(v)
		if err != nil {
			return err
		}
		t.Time = p
	case []byte:
		p, err := parseTimeText(string(v))
		if err != nil {
			return err
		}
		t.Time = p
	case int64:
		t.Time = time.Unix(v, 0).UTC()
	default:
		return fmt.Errorf("store: cannot scan %T as time", src)
	}
	return nil
}

// newToken returns a random 16-hex-char token marking the rows one call
// wrote, so that a retried or concurrent call can tell its rows apart.
func newToken() string {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// ErrUnavailable is in the chain of an error after which the database
// stayed unreachable through the store's own retries (a restart, a network
// cut): the caller may wait and call again. It is the store's verdict; see
// Transient.
var ErrUnavailable = errors.New("database unavailable")

// Transient reports whether err means the database could not be reached
// (ErrUnavailable, or a connection-level error of a call made outside the
// store's retries, e.g. a fact query), so that calling again later may
// succeed. Lock conflicts the store already retried, and query errors, are
// not transient. The one place that knows the drivers' error numbers.
func Transient(err error) bool {
	return err != nil && (errors.Is(err, ErrUnavailable) || classify(err) == errConn)
}

// retry runs fn, repeating it on deadlocks, lock wait timeouts, SQLite busy
// errors and short connection outages. It wraps the final error with name,
// and with ErrUnavailable when the connection never came back.
func (db *DB) retry(ctx context.Context, name string, fn func() error) error {
	const maxLock, maxConn = 30, 8
	locks, conns := 0, 0
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var wait time.Duration
		switch classify(err) {
		case errLock:
			locks++
			if locks > maxLock {
				return fmt.Errorf("store: %s: %w", name, err)
			}
			wait = time.Duration(1+rand.IntN(5*min(locks, 10))) * time.Millisecond
		case errConn:
			conns++
			if conns > maxConn {
				return fmt.Errorf("store: %s: %w: %w", name, ErrUnavailable, err)
			}
			wait = min(100*time.Millisecond<<(conns-1), 2*time.Second)
		default:
			if errors.Is(err, ErrLeaseLost) {
				return err
			}
			var ae *applicationError
			if errors.As(err, &ae) {
				return err
			}
			return fmt.Errorf("store: %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: %s: %w (after %v)", name, ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}

// applicationError marks errors that are final answers, not failures.
type applicationError struct{ err error }

func (e *applicationError) Error() string { return e.err.Error() }
func (e *applicationError) Unwrap() error { return e.err }

type errClass int

const (
	errOther errClass = iota
	errLock
	errConn
)

func classify(err error) errClass {
	if errors.Is(err, errBulkRefused) {
		return errLock // retried at once with INSERTs
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1213, 1205: // deadlock, lock wait timeout
			return errLock
		case 1927, 2006, 2013, 1053, 1040, 2002, 2003: // connection killed, gone away, lost, shutdown, too many, cannot connect
			return errConn
		}
		return errOther
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return errLock
		}
		return errOther
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errConn
	}
	var ne net.Error
	if errors.As(err, &ne) && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return errConn
	}
	return errOther
}

// tx runs fn in one write transaction, retried as a whole (see retry).
func (db *DB) tx(ctx context.Context, name string, fn func(tx *sqlx.Tx) error) error {
	return db.retry(ctx, name, func() error {
		tx, err := db.w.BeginTxx(ctx, db.txOpts)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			_ = tx.Rollback()
			return err
		}
		return tx.Commit()
	})
}

// execN runs a statement and returns the rows it affected.
func execN(ctx context.Context, tx *sqlx.Tx, q string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// in builds "(?,?,?)" for n arguments.
func in(n int) string {
	if n <= 0 {
		return "(NULL)"
	}
	var b strings.Builder
	b.Grow(2 + 2*n)
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('?')
	}
	b.WriteByte(')')
	return b.String()
}

func int64Args(ids []int64) []any {
	a := make([]any, len(ids))
	for i, id := range ids {
		a[i] = id
	}
	return a
}

// chunks splits n items into [lo, hi) ranges of at most size.
func chunks(n, size int) [][2]int {
	var out [][2]int
	for lo := 0; lo < n; lo += size {
		out = append(out, [2]int{lo, min(lo+size, n)})
	}
	return out
}

// maxIDsPerStatement bounds IN lists (SQLite allows 32766 parameters).
const maxIDsPerStatement = 1000

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
