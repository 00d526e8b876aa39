package campaigns

import (
	"strings"
	"testing"
)

// TestCheckReadOnlySQL: only one read-only statement passes; the problem
// is reported at the offending text.
func TestCheckReadOnlySQL(t *testing.T) {
	tests := []struct {
		q    string
		at   string // the text the problem points at; "" = valid
		want string // a substring of the message
	}{
		{"SELECT id, price FROM products WHERE id IN (:keys)", "", ""},
		{"select id from t where id in (:keys);", "", ""},
		{"WITH p AS (SELECT id FROM t) SELECT id FROM p WHERE id IN (:keys)", "", ""},
		{"WITH RECURSIVE p(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM p WHERE n < 3), q AS NOT MATERIALIZED (SELECT 2) SELECT n AS id FROM p WHERE n IN (:keys)", "", ""},
		{"SELECT REPLACE(name, 'a', 'b') AS name, TRUNCATE(price, 2) AS p FROM t WHERE id IN (:keys)", "", ""},
		{"SELECT `delete`, \"update\" FROM t WHERE note = 'DROP TABLE t; --' AND id IN (:keys)", "", ""},
		{"SELECT id FROM t -- no DELETE here\nWHERE id IN (:keys) /* nor ; DROP */", "", ""},
		{"SELECT 'it''s' AS s FROM t WHERE id IN (:keys)", "", ""},

		{"WITH d AS (SELECT 1) DELETE FROM t WHERE x IN (:keys) OR 1=1", "DELETE FROM", "not WITH ... DELETE"},
		{"SELECT id FROM t WHERE id IN (:keys); DELETE FROM t", "DELETE FROM", "must be one statement"},
		{"SELECT id FROM t WHERE id IN (:keys);;", "", "must be one statement"},
		{"DELETE FROM t WHERE id IN (:keys)", "DELETE", "must be a SELECT"},
		{"UPDATE t SET x = 1 WHERE id IN (:keys)", "UPDATE", "must be a SELECT"},
		{"  pragma writable_schema=1", "pragma", "must be a SELECT"},
		{"SELECT id INTO OUTFILE '/tmp/x' FROM t WHERE id IN (:keys)", "INTO", "INTO is not allowed"},
		{"SELECT id FROM t WHERE id IN (:keys) FOR UPDATE", "UPDATE", "UPDATE is not allowed"},
		{"SELECT id FROM t WHERE id IN (:keys) /*!50000 INTO OUTFILE '/tmp/x' */", "/*!", "executable comments"},
		// MySQL reads 'a\' as the start of a string, SQLite as a whole one:
		// the statement after it is code for SQLite.
		{`SELECT id FROM t WHERE id IN (:keys) AND n <> 'a\'; DELETE FROM t; --'`, "DELETE", "must be one statement"},
		// "--x" is not a comment for MySQL.
		{"SELECT id FROM t WHERE id IN (:keys) AND 1--1\n; DROP TABLE t", "DROP", "must be one statement"},
		{"SELECT 'open FROM t WHERE id IN (:keys)", "'open", "unterminated"},
		{"", "", "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			p := checkReadOnlySQL(tt.q)
			if tt.want == "" {
				if p != nil {
					t.Fatalf("problem at %d: %s", p.off, p.msg)
				}
				return
			}
			if p == nil {
				t.Fatalf("no problem, want %q", tt.want)
			}
			if !strings.Contains(p.msg, tt.want) {
				t.Errorf("msg %q, want %q", p.msg, tt.want)
			}
			if want := strings.Index(tt.q, tt.at); tt.at != "" && p.off != want {
				t.Errorf("at %d (%q), want %d (%q)", p.off, tt.q[p.off:], want, tt.at)
			}
		})
	}
}

// FuzzCheckReadOnlySQL: the check never panics and points inside the query.
func FuzzCheckReadOnlySQL(f *testing.F) {
	for _, s := range []string{"SELECT 1 WHERE x IN (:keys)", "WITH a AS (SELECT 1) DELETE FROM t", "SELECT 'a\\'; DROP t; --'", "/*! x */", "WITH RECURSIVE", "[x", "SELECT 1;;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		if p := checkReadOnlySQL(q); p != nil && (p.off < 0 || p.off > len(q)) {
			t.Fatalf("offset %d outside the query of %d bytes", p.off, len(q))
		}
	})
}
