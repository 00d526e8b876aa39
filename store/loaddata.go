package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
)

// Bulk loading on MySQL: LOAD DATA LOCAL INFILE from an in-memory reader
// (go-sql-driver's Reader:: handler) skips the SQL parser for every value
// and is several times cheaper for the server than multi-row INSERTs. The
// server must allow local_infile (MariaDB and MySQL < 8 do by default);
// otherwise the store falls back to INSERTs.

var loadSeq atomic.Int64

// errBulkRefused marks a LOAD DATA the server refused; the transaction is
// retried with INSERTs.
var errBulkRefused = errors.New("LOAD DATA LOCAL INFILE refused")

// tsv builds a tab-separated body in LOAD DATA's default escaping. Its
// buffer comes from tsvPool and goes back once loaded (loadData): an
// import's batches reuse a few megabytes instead of growing new ones.
type tsv struct {
	bytes.Buffer
	rows  int
	field int
}

// tsvPool holds *[]byte buffers of loaded bodies.
var tsvPool sync.Pool

func (t *tsv) sep() {
	if t.Cap() == 0 {
		if b, ok := tsvPool.Get().(*[]byte); ok {
			t.Buffer = *bytes.NewBuffer((*b)[:0])
		} else {
			t.Grow(64 << 10)
		}
	}
	if t.field > 0 {
		t.WriteByte('\t')
	}
	t.field++
}

// str writes a text field: runs without special bytes in one copy.
func (t *tsv) str(s string) {
	t.sep()
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\t':
			esc = `\t`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case 0:
			esc = `\0`
		default:
			continue
		}
		t.WriteString(s[start:i])
		t.WriteString(esc)
		start = i + 1
	}
	t.WriteString(s[start:])
}

// null writes NULL.
func (t *tsv) null() {
	t.sep()
	t.WriteString(`\N`)
}

// time writes a DATETIME(6) in UTC.
func (t *tsv) time(v time.Time) {
	t.sep()
	t.WriteString(normTime(v).Format(sqliteTimeFormat))
}

// end ends a row.
func (t *tsv) end() {
	t.WriteByte('\n')
	t.rows++
	t.field = 0
}

// loadData loads body into table's columns in tx (IGNORE: rows hitting a
// unique key are skipped) and returns the rows inserted. set, if not
// empty, is a LOAD DATA SET clause of constants (no placeholders).
func (db *DB) loadData(ctx context.Context, tx *sqlx.Tx, table string, cols []string, set string, body *tsv) (int64, error) {
	if body.rows == 0 {
		return 0, nil
	}
	name := fmt.Sprintf("wxc-%d", loadSeq.Add(1))
	data := body.Bytes()
	mysql.RegisterReaderHandler(name, func() io.Reader { return bytes.NewReader(data) })
	defer func() {
		mysql.DeregisterReaderHandler(name)
		// The driver has sent the body when Exec returns.
		buf := data[:0]
		tsvPool.Put(&buf)
		body.Buffer = bytes.Buffer{}
	}()
	res, err := tx.ExecContext(ctx, "LOAD DATA LOCAL INFILE 'Reader::"+name+"' IGNORE INTO TABLE "+table+
		" CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' ("+strings.Join(cols, ", ")+")"+setClause(set))
	if err != nil {
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1148 || me.Number == 3948 || me.Number == 4166) {
			db.noBulk.Store(true) // the retry uses INSERTs
			return 0, fmt.Errorf("load %s: %w: %w", table, errBulkRefused, err)
		}
		return 0, fmt.Errorf("load %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", table, err)
	}
	return n, nil
}

// bulkMinRows is the batch size from which LOAD DATA pays off.
const bulkMinRows = 64

// useBulk reports whether a batch of n results is loaded with LOAD DATA.
func (db *DB) useBulk(n int) bool {
	return db.driver == MySQL && n >= bulkMinRows && !db.noBulk.Load()
}

func setClause(set string) string {
	if set == "" {
		return ""
	}
	return " SET " + set
}
