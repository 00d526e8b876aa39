// Package storetest gives tests a fresh, migrated store on each driver:
// SQLite in a temporary folder, MySQL/MariaDB in a database of its own
// (created on the server named by WXC_MYSQL_DSN, dropped at cleanup).
//
// Under CI=true a missing MySQL server fails the test; elsewhere the MySQL
// half is skipped with a loud message.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/wxcampaign/wxcampaign/store"
)

// DefaultMySQLDSN is used when WXC_MYSQL_DSN is not set.
const DefaultMySQLDSN = "root@tcp(127.0.0.1:3306)/test"

// NamedConfig is a store configuration with a name for t.Run.
type NamedConfig struct {
	Name   string
	Config store.Config
}

// MySQLServerDSN returns the server DSN from WXC_MYSQL_DSN or the default.
func MySQLServerDSN() string {
	if dsn := os.Getenv("WXC_MYSQL_DSN"); dsn != "" {
		return dsn
	}
	return DefaultMySQLDSN
}

// unavailable fails (CI=true) or skips loudly.
func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("storetest: MySQL/MariaDB at WXC_MYSQL_DSN (default %s) is not available: %v", DefaultMySQLDSN, err)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing server is a failure)")
	}
	t.Skip("*** SKIPPING MYSQL TESTS *** " + msg)
}

func randomName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "wxc_t_" + hex.EncodeToString(b[:])
}

// MySQL creates a fresh database wxc_t_<random> on the server and returns
// a config for it; the database is dropped at t.Cleanup.
func MySQL(t testing.TB) store.Config {
	t.Helper()
	c, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		t.Fatalf("storetest: WXC_MYSQL_DSN: %v", err)
	}
	c.Timeout = 3 * time.Second
	admin, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		unavailable(t, err)
	}
	name := randomName()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"); err != nil {
		admin.Close()
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
		admin.Close()
	})
	c.DBName = name
	c.Timeout = 0
	return store.Config{Driver: store.MySQL, DSN: c.FormatDSN(), MaxOpenConns: 16}
}

// SQLite returns a config for a database file in t.TempDir().
func SQLite(t testing.TB) store.Config {
	t.Helper()
	return store.Config{Driver: store.SQLite, DSN: filepath.Join(t.TempDir(), "wxcampaign.db")}
}

// Open opens and migrates cfg and closes it at t.Cleanup.
func Open(t testing.TB, cfg store.Config) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", cfg.Driver, err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("storetest: close: %v", err)
		}
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("storetest: migrate %s: %v", cfg.Driver, err)
	}
	return db
}

// Drivers returns a fresh configuration of each driver: SQLite, and MySQL
// when a server answers. Without a server it logs a loud skip message and
// returns only SQLite (under CI=true it fails t instead).
func Drivers(t testing.TB) []NamedConfig {
	t.Helper()
	out := []NamedConfig{{Name: store.SQLite, Config: SQLite(t)}}
	if cfg, ok := tryMySQL(t); ok {
		out = append(out, NamedConfig{Name: store.MySQL, Config: cfg})
	}
	return out
}

// tryMySQL is MySQL without skipping t.
func tryMySQL(t testing.TB) (cfg store.Config, ok bool) {
	t.Helper()
	if err := pingMySQL(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("storetest: MySQL/MariaDB at WXC_MYSQL_DSN is not available under CI=true: %v", err)
		}
		t.Logf("*** SKIPPING MYSQL TESTS *** storetest: MySQL/MariaDB at WXC_MYSQL_DSN (default %s) is not available: %v", DefaultMySQLDSN, err)
		return store.Config{}, false
	}
	return MySQL(t), true
}

func pingMySQL() error {
	c, err := mysql.ParseDSN(MySQLServerDSN())
	if err != nil {
		return err
	}
	c.Timeout = 3 * time.Second
	db, err := sql.Open("mysql", c.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return db.PingContext(ctx)
}

// Setup returns the config of nc, creating the database now.
func (nc NamedConfig) Setup(t testing.TB) store.Config {
	t.Helper()
	if nc.Config.Driver != "" {
		return nc.Config
	}
	if nc.Name == store.MySQL {
		return MySQL(t)
	}
	return SQLite(t)
}

// Open sets nc up and returns an open, migrated store.
func (nc NamedConfig) Open(t testing.TB) *store.DB {
	t.Helper()
	return Open(t, nc.Setup(t))
}
