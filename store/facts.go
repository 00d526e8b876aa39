package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// DefaultFactsTimeout bounds one fact query when FactsConfig.Timeout is 0.
const DefaultFactsTimeout = 5 * time.Second

// Facts runs a campaign's named fact queries against a database (the
// store's own or a separate facts DSN). The database itself refuses writes:
// each query runs in a READ ONLY transaction on MySQL and on a connection
// with PRAGMA query_only on SQLite, within a timeout.
type Facts struct {
	db      *sqlx.DB
	driver  string
	owned   bool
	loc     *time.Location // zone of DATETIME/DATE values; nil = UTC
	timeout time.Duration  // per query; 0 = DefaultFactsTimeout
}

// FactsConfig tunes fact queries (the facts: section of the engine config).
type FactsConfig struct {
	// Timezone is the IANA zone in which DATETIME and DATE values, which
	// carry none, are read; "" means UTC.
	Timezone string
	// Timeout bounds each fact query; 0 means DefaultFactsTimeout.
	Timeout time.Duration
}

// Validate checks the values of c; errors name the keys timezone and
// timeout.
func (c FactsConfig) Validate() error {
	var errs []error
	if c.Timezone != "" {
		if _, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "Local" {
			errs = append(errs, wxcampaign.FieldErrorf("timezone", "unknown time zone %q (use an IANA name such as Asia/Shanghai)", c.Timezone))
		}
	}
	if c.Timeout < 0 || c.Timeout > 0 && c.Timeout < time.Millisecond {
		errs = append(errs, wxcampaign.FieldErrorf("timeout", "must be at least 1ms (0 means %s), got %s", DefaultFactsTimeout, c.Timeout))
	}
	return errors.Join(errs...)
}

// Configure applies c (validate it first): the zone of zone-less time
// values and the query timeout. Call it before the first Query.
func (f *Facts) Configure(c FactsConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	f.timeout = c.Timeout
	f.loc = nil
	if c.Timezone != "" {
		f.loc, _ = time.LoadLocation(c.Timezone)
	}
	return nil
}

// SetLocation makes DATETIME and DATE values (which carry no zone) read as
// wall times in loc, as a business database that stores local times
// (Asia/Shanghai) needs; TIMESTAMP values are instants and stay as they
// are. nil or UTC (the default): read as UTC. Call it before the first
// Query.
func (f *Facts) SetLocation(loc *time.Location) { f.loc = loc }

// zoned reads a zone-less time value's wall clock in f.loc.
func (f *Facts) zoned(c factColumn, v any) any {
	t, ok := v.(time.Time)
	if !ok || f.loc == nil || f.loc == time.UTC || c.timestamp {
		return v
	}
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), f.loc)
}

// OpenFacts opens a separate facts database for reading only: SQLite files
// are opened read-only (a missing file is ErrNoDatabase, nothing is
// created); on MySQL use a user with SELECT privileges only
// (docs/operations.md).
func OpenFacts(ctx context.Context, cfg Config) (*Facts, error) {
	switch cfg.Driver {
	case "", SQLite, "sqlite3":
		x, err := openSQLiteRO(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("store: open facts: %w", err)
		}
		return &Facts{db: x, driver: SQLite, owned: true}, nil
	}
	db, err := Open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open facts: %w", err)
	}
	return &Facts{db: db.r, driver: db.driver, owned: true}, nil
}

// Facts returns fact queries on the store's own database. Its Close is a
// no-op: the DB owns the connection.
func (db *DB) Facts() *Facts { return &Facts{db: db.r, driver: db.driver} }

// Close closes a facts database opened by OpenFacts.
func (f *Facts) Close() error {
	if !f.owned {
		return nil
	}
	if err := f.db.Close(); err != nil {
		return fmt.Errorf("store: close facts: %w", err)
	}
	return nil
}

// ExpandKeys replaces every :keys placeholder outside quoted strings,
// quoted identifiers and comments with ? and returns how many it replaced.
// "::" is left alone (a PostgreSQL cast, harmless here).
func ExpandKeys(query string) (string, int) {
	var b strings.Builder
	b.Grow(len(query))
	n := 0
	for i := 0; i < len(query); {
		c := query[i]
		switch {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for j < len(query) {
				if query[j] == '\\' && c != '`' && j+1 < len(query) {
					j += 2
					continue
				}
				if query[j] == c {
					if j+1 < len(query) && query[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(query))
			b.WriteString(query[i:j])
			i = j
		case c == '-' && strings.HasPrefix(query[i:], "--"):
			j := strings.IndexByte(query[i:], '\n')
			if j < 0 {
				j = len(query) - i
			}
			b.WriteString(query[i : i+j])
			i += j
		case c == '/' && strings.HasPrefix(query[i:], "/*"):
			j := strings.Index(query[i+2:], "*/")
			end := len(query)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(query[i:end])
			i = end
		case c == ':' && strings.HasPrefix(query[i:], "::"):
			b.WriteString("::")
			i += 2
		case c == ':' && strings.HasPrefix(query[i:], ":keys") && (i+5 == len(query) || !isIdent(query[i+5])):
			b.WriteByte('?')
			n++
			i += 5
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String(), n
}

func isIdent(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// Query runs query with every :keys expanded to the batch keys (sqlx.In)
// and returns the rows as maps of Go-native values by column type:
// integers int64, DECIMAL and floats float64, DATETIME/TIMESTAMP/DATE
// time.Time in UTC (SQLite: parsed from their text forms), BOOLEAN bool
// (SQLite), text string, NULL nil. With no keys it returns no rows
// without querying.
func (f *Facts) Query(ctx context.Context, query string, keys []any) ([]map[string]any, error) {
	q, n := ExpandKeys(query)
	var args []any
	if n > 0 {
		if len(keys) == 0 {
			return nil, nil
		}
		for range n {
			args = append(args, keys)
		}
		var err error
		q, args, err = sqlx.In(q, args...)
		if err != nil {
			return nil, fmt.Errorf("store: facts: expand keys: %w", err)
		}
		q = f.db.Rebind(q)
	}
	timeout := f.timeout
	if timeout <= 0 {
		timeout = DefaultFactsTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var out []map[string]any
	err := f.readOnly(ctx, func(qr sqlx.QueryerContext) error {
		var err error
		out, err = f.query(ctx, qr, q, args)
		return err
	})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, fmt.Errorf("store: facts: query did not finish within %s (facts.timeout): %w", timeout, err)
		}
		return nil, fmt.Errorf("store: facts: %w", err)
	}
	return out, nil
}

// readOnly runs fn on a connection where the database refuses writes: a
// READ ONLY transaction (MySQL; rolled back after) or a connection with
// PRAGMA query_only=1 (SQLite; reset after, or the connection discarded).
func (f *Facts) readOnly(ctx context.Context, fn func(sqlx.QueryerContext) error) error {
	if f.driver == MySQL {
		tx, err := f.db.BeginTxx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck // read only: nothing to keep
		return fn(tx)
	}
	conn, err := f.db.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
		return err
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA query_only = 0"); err != nil {
			// Never hand a query-only connection back to the store's pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return fn(conn)
}

// query runs q and converts the rows (see Query).
func (f *Facts) query(ctx context.Context, qr sqlx.QueryerContext, q string, args []any) ([]map[string]any, error) {
	rows, err := qr.QueryxContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	// Each column is classified once, not per row (the classification
	// was a tenth of a preview's CPU).
	cols := make([]factColumn, len(types))
	for i, t := range types {
		cols[i] = classifyColumn(t.Name(), t.DatabaseTypeName())
	}
	var out []map[string]any
	vals := make([]any, len(types))
	ptrs := make([]any, len(types))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		clear(vals)
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("scan: %w", err)
		}
		m := make(map[string]any, len(types))
		for i, c := range cols {
			v, err := c.native(vals[i])
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", c.name, err)
			}
			m[c.name] = f.zoned(c, v)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// factColumn is a fact query's result column, classified by its
// database type name.
type factColumn struct {
	name      string
	class     string // bool, time, int, float, bytes, bit or "" (text)
	timestamp bool   // a TIMESTAMP: an instant, not a zone-less wall clock
}

func classifyColumn(name, typeName string) factColumn {
	t := strings.ToUpper(typeName)
	c := factColumn{name: name, timestamp: strings.Contains(t, "TIMESTAMP")}
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	t = strings.TrimPrefix(t, "UNSIGNED ")
	switch {
	case strings.Contains(t, "BOOL"):
		c.class = "bool"
	case t == "DATE" || strings.Contains(t, "DATETIME") || strings.Contains(t, "TIMESTAMP"):
		c.class = "time"
	case strings.Contains(t, "INT") || t == "YEAR":
		c.class = "int"
	case strings.Contains(t, "DEC") || strings.Contains(t, "NUMERIC") || strings.Contains(t, "REAL") ||
		strings.Contains(t, "FLOA") || strings.Contains(t, "DOUB"):
		c.class = "float"
	case strings.Contains(t, "BLOB") || strings.Contains(t, "BINARY"):
		c.class = "bytes"
	case t == "BIT":
		c.class = "bit"
	}
	return c
}

// native converts a scanned value to its Go-native form by the column's
// class.
func (c factColumn) native(v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	class := c.class
	switch x := v.(type) {
	case []byte:
		switch class {
		case "bytes":
			return append([]byte(nil), x...), nil
		case "bit":
			var n int64
			for _, c := range x {
				n = n<<8 | int64(c)
			}
			if len(x) == 1 && n <= 1 {
				return n == 1, nil
			}
			return n, nil
		}
		return c.native(string(x))
	case string:
		switch class {
		case "int":
			if n, err := strconv.ParseInt(x, 10, 64); err == nil {
				return n, nil
			}
			if n, err := strconv.ParseUint(x, 10, 64); err == nil {
				return float64(n), nil
			}
			return nil, fmt.Errorf("not an integer: %q", x)
		case "float":
			n, err := strconv.ParseFloat(x, 64)
			if err != nil {
				return nil, fmt.Errorf("not a number: %q", x)
			}
			return n, nil
		case "time":
			if strings.HasPrefix(x, "0000-00-00") {
				return nil, nil
			}
			return parseTimeText(x)
		case "bool":
			switch strings.ToLower(x) {
			case "1", "true", "t", "yes":
				return true, nil
			case "0", "false", "f", "no":
				return false, nil
			}
			return nil, fmt.Errorf("not a boolean: %q", x)
		}
		return x, nil
	case int64:
		switch class {
		case "bool", "bit":
			return x != 0, nil
		case "float":
			return float64(x), nil
		}
		return x, nil
	case float64:
		if class == "int" && x == float64(int64(x)) {
			return int64(x), nil
		}
		return x, nil
	case bool:
		return x, nil
	case time.Time:
		return x.UTC(), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case uint64:
		if x <= 1<<63-1 {
			return int64(x), nil
		}
		return float64(x), nil
	}
	return v, nil
}
