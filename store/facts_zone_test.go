package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
)

// TestFactsLocation reads a zone-less DATETIME as a wall time in the facts
// zone, on both drivers.
func TestFactsLocation(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, q := range []string{
			`CREATE TABLE orders_z (id VARCHAR(16) PRIMARY KEY, created_at DATETIME)`,
			`INSERT INTO orders_z VALUES ('o1', '2026-11-22 10:30:00')`,
		} {
			if _, err := db.SQLX().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			loc  *time.Location
			want time.Time
		}{
			{nil, time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)},
			{sh, time.Date(2026, 11, 22, 2, 30, 0, 0, time.UTC)},
		} {
			f := db.Facts()
			f.SetLocation(c.loc)
			rows, err := f.Query(ctx, `SELECT id, created_at FROM orders_z WHERE id IN (:keys)`, []any{"o1"})
			if err != nil || len(rows) != 1 {
				t.Fatalf("query: %v %v", rows, err)
			}
			got, ok := rows[0]["created_at"].(time.Time)
			if !ok || !got.Equal(c.want) {
				t.Errorf("zone %v: created_at = %v, want the instant %v", c.loc, rows[0]["created_at"], c.want)
			}
		}
	})
}
