package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// TestFactsRefuseWrites: a fact query that writes is refused by the
// database itself, even if it got past campaign validation, on the store's
// own database and on a separate facts database, on both drivers; the
// rows are all still there and the store still writes afterwards.
func TestFactsRefuseWrites(t *testing.T) {
	writes := []string{
		"WITH d AS (SELECT 1) DELETE FROM biz WHERE id IN (:keys) OR 1=1",
		"SELECT id FROM biz WHERE id IN (:keys); DELETE FROM biz",
		"DELETE FROM biz WHERE id IN (:keys) OR 1=1",
		"UPDATE biz SET n = 0 WHERE id IN (:keys) OR 1=1",
	}
	testenv.EachConfig(t, func(t *testing.T, cfg store.Config) {
		ctx := context.Background()
		db := storetest.Open(t, cfg)
		for _, q := range []string{
			"CREATE TABLE biz (id VARCHAR(8) PRIMARY KEY, n INT)",
			"INSERT INTO biz VALUES ('a', 1), ('b', 2), ('c', 3)",
		} {
			if _, err := db.SQLX().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		own := db.Facts()
		sep, err := store.OpenFacts(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer sep.Close()
		for name, f := range map[string]*store.Facts{"own": own, "separate": sep} {
			for _, q := range writes {
				rows, err := f.Query(ctx, q, []any{"a"})
				if err == nil {
					// SQLite runs the first statement of a stack; the
					// second must still fail.
					t.Errorf("%s: %q: no error (rows %v)", name, q, rows)
				}
			}
		}
		var n, sum int
		if err := db.SQLX().QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(n), 0) FROM biz").Scan(&n, &sum); err != nil {
			t.Fatal(err)
		}
		if n != 3 || sum != 6 {
			t.Fatalf("biz after the writes: %d rows, sum %d; want 3 rows, sum 6", n, sum)
		}
		// The connections went back to the pool writable for the store.
		for i := range 20 {
			if _, err := db.SQLX().ExecContext(ctx, "UPDATE biz SET n = n + 1 WHERE id = 'a'"); err != nil {
				t.Fatalf("store write %d after fact queries: %v", i, err)
			}
			if rows, err := own.Query(ctx, "SELECT id, n FROM biz WHERE id IN (:keys)", []any{"a"}); err != nil || len(rows) != 1 {
				t.Fatalf("read %d: %v %v", i, rows, err)
			}
		}
	})
}

// TestFactsTimeout: a slow fact query is stopped at facts.timeout.
func TestFactsTimeout(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := db.Facts()
		if err := f.Configure(store.FactsConfig{Timeout: 300 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		slow := "SELECT 'a' AS id, SLEEP(5) AS s FROM (SELECT 1) x WHERE 'a' IN (:keys)"
		if db.Driver() == store.SQLite {
			slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT 'a' AS id, MAX(x) AS s FROM c WHERE 'a' IN (:keys)"
		}
		start := time.Now()
		_, err := f.Query(ctx, slow, []any{"a"})
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), "facts.timeout") {
			t.Errorf("err = %v, want the facts.timeout error", err)
		}
		if took > 3*time.Second {
			t.Errorf("the query took %s with a 300ms timeout", took)
		}
	})
}

// TestOpenReadOnlyCreatesNothing: a read-only open of a missing SQLite file
// is ErrNoDatabase and leaves no file behind.
func TestOpenReadOnlyCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wxcampaign.db")
	for _, open := range []func() error{
		func() error {
			db, err := store.OpenReadOnly(context.Background(), store.Config{DSN: path})
			closeDB(db)
			return err
		},
		func() error {
			f, err := store.OpenFacts(context.Background(), store.Config{DSN: path})
			closeFacts(f)
			return err
		},
	} {
		if err := open(); !errors.Is(err, store.ErrNoDatabase) {
			t.Errorf("err = %v, want ErrNoDatabase", err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files created: %v", ents)
	}
}

func closeDB(db *store.DB) {
	if db != nil {
		db.Close()
	}
}

func closeFacts(f *store.Facts) {
	if f != nil {
		f.Close()
	}
}

// TestFactsConfigValidate names the bad keys.
func TestFactsConfigValidate(t *testing.T) {
	tests := []struct {
		c    store.FactsConfig
		want string
	}{
		{store.FactsConfig{}, ""},
		{store.FactsConfig{Timezone: "Asia/Shanghai", Timeout: time.Second}, ""},
		{store.FactsConfig{Timezone: "Local"}, "timezone: unknown time zone"},
		{store.FactsConfig{Timezone: "Mars/Olympus"}, "timezone: unknown time zone"},
		{store.FactsConfig{Timeout: -time.Second}, "timeout: must be at least 1ms"},
	}
	for _, tt := range tests {
		err := tt.c.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.c, err, tt.want)
		}
	}
}

// BenchmarkFactsQuery is one fact query for a batch of 500 keys, run
// read-only (a READ ONLY transaction on MySQL, query_only on SQLite).
func BenchmarkFactsQuery(b *testing.B) {
	testenv.EachDBBench(b, func(b *testing.B, db *store.DB) {
		ctx := context.Background()
		if _, err := db.SQLX().ExecContext(ctx, "CREATE TABLE biz (id VARCHAR(8) PRIMARY KEY, n INT)"); err != nil {
			b.Fatal(err)
		}
		keys := make([]any, 500)
		for i := range keys {
			id := fmt.Sprintf("k%d", i)
			keys[i] = id
			if _, err := db.SQLX().ExecContext(ctx, "INSERT INTO biz VALUES (?, ?)", id, i); err != nil {
				b.Fatal(err)
			}
		}
		f := db.Facts()
		b.ResetTimer()
		for b.Loop() {
			rows, err := f.Query(ctx, "SELECT id, n FROM biz WHERE id IN (:keys)", keys)
			if err != nil || len(rows) != 500 {
				b.Fatalf("%d rows, %v", len(rows), err)
			}
		}
	})
}
