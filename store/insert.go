package store

import (
	"context"
	"database/sql"
	"strings"
)

// execer is what insertRows needs of a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertRows writes n rows with multi-row statements of at most per rows
// each: head + " VALUES " + tuple,tuple,... + tail, where tuple is one row's
// placeholders, e.g. "(?,?,?)", and tail is empty or an ON DUPLICATE KEY /
// ON CONFLICT clause. row appends row i's values to args (as many as tuple
// has placeholders) and returns it. It returns the rows affected, summed.
func insertRows(ctx context.Context, tx execer, head, tuple, tail string, n, per int, row func(args []any, i int) []any) (int64, error) {
	var total int64
	for _, c := range chunks(n, per) {
		var q strings.Builder
		q.Grow(len(head) + len(" VALUES ") + (len(tuple)+1)*(c[1]-c[0]) + len(tail))
		q.WriteString(head)
		q.WriteString(" VALUES ")
		args := make([]any, 0, strings.Count(tuple, "?")*(c[1]-c[0]))
		for i := c[0]; i < c[1]; i++ {
			if i > c[0] {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
			args = row(args, i)
		}
		q.WriteString(tail)
		res, err := tx.ExecContext(ctx, q.String(), args...)
		if err != nil {
			return total, err
		}
		k, err := res.RowsAffected()
		if err != nil {
			return total, err
		}
		total += k
	}
	return total, nil
}
