package main

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestBenchRefusesForeignDatabase: `bench --database NAME` does not drop
// a database the benchmark did not create (issue 12 item 17); the error
// names it and --force. The SQLite store keeps the test server-free; the
// MySQL path is bench.TestDatabaseMarker.
func TestBenchRefusesForeignDatabase(t *testing.T) {
	out := t.TempDir()
	file := filepath.Join(out, "shop.db")
	db, err := sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE orders (id INTEGER PRIMARY KEY); INSERT INTO orders VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, stderr := run(t, nil, "bench", "--driver", "sqlite", "--database", "shop", "--out", out, "--sizes", "10", "--products", "10",
		"--campaign", filepath.Join(repoRoot(t), "configs", "campaigns", "price-drop.yaml"))
	if code != 1 || !strings.Contains(stderr, "shop.db") || !strings.Contains(stderr, "--force") {
		t.Fatalf("exit %d, stderr %q: want 1 and an error naming the database and --force", code, stderr)
	}
	db, err = sql.Open("sqlite", file)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM orders").Scan(&n); err != nil || n != 1 {
		t.Fatalf("the foreign database changed: %d rows, %v", n, err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}
