package bench

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestFindServer(t *testing.T) {
	self := os.Getpid()
	if isServer(self) {
		t.Fatal("the test process is taken for a database server")
	}
	// A pid file naming a process that is not a server is not believed.
	p := filepath.Join(t.TempDir(), "self.pid")
	if err := os.WriteFile(p, []byte(strconv.Itoa(self)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := findServer(p); got == self {
		t.Fatalf("findServer took the pid file's non-server process %d", got)
	}

	// The test server's own pid file names it, however many servers run.
	db, err := sql.Open("mysql", mysqlServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var pidFile string
	if err := db.QueryRowContext(context.Background(), "SELECT @@pid_file").Scan(&pidFile); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI runs MariaDB on this machine, and its pid file is unreadable: %v", err)
		}
		t.Skipf("the test server's pid file is not on this machine: %v", err)
	}
	want, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if got := findServer(pidFile); got != want || !isServer(got) {
		t.Fatalf("findServer(%s) = %d, want the server %d", pidFile, got, want)
	}
}
