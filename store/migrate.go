package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/pressly/goose/v3"
)

// migrations holds one versioned set per dialect.
//
//go:embed migrations/mysql/*.sql migrations/sqlite/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files of a dialect ("mysql" or
// "sqlite"), for tools that want to print or apply them elsewhere.
func Migrations(driver string) (fs.FS, error) {
	dir := "migrations/sqlite"
	if driver == MySQL {
		dir = "migrations/mysql"
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("store: migrations: %w", err)
	}
	return sub, nil
}

// Migrate applies the embedded migrations not yet applied and returns how
// many it applied. It is idempotent: a second call applies nothing.
func (db *DB) Migrate(ctx context.Context) (applied int, err error) {
	fsys, err := Migrations(db.driver)
	if err != nil {
		return 0, err
	}
	dialect := goose.DialectSQLite3
	if db.driver == MySQL {
		dialect = goose.DialectMySQL
	}
	err = db.retry(ctx, "migrate", func() error {
		p, err := goose.NewProvider(dialect, db.w.DB, fsys, goose.WithDisableGlobalRegistry(true))
		if err != nil {
			return err
		}
		res, err := p.Up(ctx)
		applied += len(res)
		return err
	})
	if err != nil {
		return applied, fmt.Errorf("store: migrate: %w", err)
	}
	return applied, nil
}

// SchemaVersion returns the highest applied migration version (0 if none).
func (db *DB) SchemaVersion(ctx context.Context) (int64, error) {
	fsys, err := Migrations(db.driver)
	if err != nil {
		return 0, err
	}
	dialect := goose.DialectSQLite3
	if db.driver == MySQL {
		dialect = goose.DialectMySQL
	}
	p, err := goose.NewProvider(dialect, db.w.DB, fsys, goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}
