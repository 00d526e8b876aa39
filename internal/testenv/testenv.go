// Package testenv is the test harness the packages' tests share: one way
// to run a test against every store driver (SQLite and MariaDB, each a
// fresh migrated database; store/storetest makes them).
package testenv

import (
	"testing"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// EachDriver runs fn once per driver, SQLite and MySQL, as parallel
// subtests named after the driver (MariaDB mostly waits on its server).
// fn opens its store with nc.Open. Without a MySQL server the MySQL half
// skips loudly (fails under CI=true), as storetest does.
func EachDriver(t *testing.T, fn func(t *testing.T, nc storetest.NamedConfig)) {
	t.Helper()
	for _, name := range []string{store.SQLite, store.MySQL} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, storetest.NamedConfig{Name: name})
		})
	}
}

// EachDB runs fn once per available driver with a fresh, migrated store,
// one after the other.
func EachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, nc := range storetest.Drivers(t) {
		t.Run(nc.Name, func(t *testing.T) {
			fn(t, storetest.Open(t, nc.Config))
		})
	}
}

// EachConfig runs fn once per available driver with a fresh configuration
// (the database created, not opened), one after the other, for tests that
// open the store themselves (an API or console world, a migration test).
func EachConfig(t *testing.T, fn func(t *testing.T, cfg store.Config)) {
	t.Helper()
	for _, nc := range storetest.Drivers(t) {
		t.Run(nc.Name, func(t *testing.T) {
			fn(t, nc.Config)
		})
	}
}

// EachDBBench is EachDB for a benchmark.
func EachDBBench(b *testing.B, fn func(b *testing.B, db *store.DB)) {
	b.Helper()
	for _, nc := range storetest.Drivers(b) {
		b.Run(nc.Name, func(b *testing.B) {
			fn(b, storetest.Open(b, nc.Config))
		})
	}
}

// EachConfigBench is EachConfig for a benchmark.
func EachConfigBench(b *testing.B, fn func(b *testing.B, cfg store.Config)) {
	b.Helper()
	for _, nc := range storetest.Drivers(b) {
		b.Run(nc.Name, func(b *testing.B) {
			fn(b, nc.Config)
		})
	}
}
