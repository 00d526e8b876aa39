package bench

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFindServer(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	self := os.Getpid()
	if isServer(self) {
		t.Fatal("the test process is taken for a database server")
	}
	// A pid file naming a process that is not a server is not believed.
	if got := findServer(write("self.pid", strconv.Itoa(self)+"\n")); got == self {
		t.Fatalf("findServer took the pid file's non-server process %d", got)
	}
	scanned := findServer("")
	if scanned == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs one local MariaDB, and findServer does not find it")
		}
		t.Skip("no single local mariadbd or mysqld to find")
	}
	if !isServer(scanned) {
		t.Fatalf("findServer returned %d, not a server", scanned)
	}
	// The server's own pid file wins over the scan.
	if got := findServer(write("server.pid", strconv.Itoa(scanned)+"\n")); got != scanned {
		t.Fatalf("findServer(pid file of %d) = %d", scanned, got)
	}
}
