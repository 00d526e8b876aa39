package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
)

// Run statuses.
const (
	RunRunning = "running"
	RunDone    = "done"
)

// Run is the lease of one campaign tick (campaign, occurrence).
type Run struct {
	Campaign   string    `json:"campaign"`
	Occurrence time.Time `json:"occurrence"`
	Holder     string    `json:"holder"`
	LeaseUntil time.Time `json:"lease_until"`
	Checkpoint int64     `json:"checkpoint"` // last grant id whose send is recorded
	Status     string    `json:"status"`     // running or done
	Summary    string    `json:"summary"`
}

type runRow struct {
	Campaign   string         `db:"campaign"`
	Occurrence dbTime         `db:"occurrence"`
	Holder     string         `db:"holder"`
	LeaseUntil dbTime         `db:"lease_until"`
	Checkpoint int64          `db:"checkpoint"`
	Status     string         `db:"status"`
	Summary    sql.NullString `db:"summary"`
}

func (r runRow) run() Run {
	return Run{Campaign: r.Campaign, Occurrence: r.Occurrence.Time, Holder: r.Holder, LeaseUntil: r.LeaseUntil.Time,
		Checkpoint: r.Checkpoint, Status: r.Status, Summary: r.Summary.String}
}

const runCols = "campaign, occurrence, holder, lease_until, checkpoint, status, summary"

// AcquireRun takes the run (campaign, occurrence) for holder until until:
// a new run, a running one whose lease expired before now (take-over keeps
// the checkpoint) or one already held by holder. ok is false, with the run
// as it is, when it is done or live-held by another holder.
func (db *DB) AcquireRun(ctx context.Context, campaign string, occurrence time.Time, holder string, now, until time.Time) (Run, bool, error) {
	var run Run
	var ok bool
	err := db.tx(ctx, "acquire run", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, db.insertIgnore()+" INTO runs (campaign, occurrence, holder, lease_until, checkpoint, status) VALUES (?,?,?,?,0,'running')",
			campaign, db.tv(occurrence), holder, db.tv(until))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		var r runRow
		if err := tx.GetContext(ctx, &r, "SELECT "+runCols+" FROM runs WHERE campaign = ? AND occurrence = ?"+db.forUpdate(), campaign, db.tv(occurrence)); err != nil {
			return err
		}
		run, ok = r.run(), n == 1
		if ok || r.Status != RunRunning {
			return nil
		}
		if r.Holder != holder && r.LeaseUntil.After(now) {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE runs SET holder = ?, lease_until = ? WHERE campaign = ? AND occurrence = ?",
			holder, db.tv(until), campaign, db.tv(occurrence)); err != nil {
			return err
		}
		run.Holder, run.LeaseUntil, ok = holder, normTime(until), true
		return nil
	})
	if err != nil {
		return Run{}, false, err
	}
	return run, ok, nil
}

// GetRun returns the run (campaign, occurrence); wxcampaign.ENOTFOUND if none.
func (db *DB) GetRun(ctx context.Context, campaign string, occurrence time.Time) (Run, error) {
	var r runRow
	err := db.retry(ctx, "get run", func() error {
		return db.r.GetContext(ctx, &r, "SELECT "+runCols+" FROM runs WHERE campaign = ? AND occurrence = ?", campaign, db.tv(occurrence))
	})
	if isNoRows(err) {
		return Run{}, notFound("run %s at %s", campaign, occurrence.UTC().Format(time.RFC3339))
	}
	return r.run(), err
}

// ListRuns returns up to limit runs of campaign, newest occurrence first.
func (db *DB) ListRuns(ctx context.Context, campaign string, limit int) ([]Run, error) {
	var rows []runRow
	err := db.retry(ctx, "list runs", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, "SELECT "+runCols+" FROM runs WHERE campaign = ? ORDER BY occurrence DESC LIMIT ?", campaign, limit)
	})
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, err
}

// leaseUpdate runs an UPDATE guarded by holder and status running; no row
// means the lease is lost.
func (db *DB) leaseUpdate(ctx context.Context, name, set string, args ...any) error {
	return db.tx(ctx, name, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE runs SET "+set+" WHERE campaign = ? AND occurrence = ? AND holder = ? AND status = 'running'", args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrLeaseLost
		}
		return nil
	})
}

// ExtendRun moves holder's lease of the run to until; ErrLeaseLost if the
// run is no longer held by holder.
func (db *DB) ExtendRun(ctx context.Context, campaign string, occurrence time.Time, holder string, until time.Time) error {
	return db.leaseUpdate(ctx, "extend run", "lease_until = ?", db.tv(until), campaign, db.tv(occurrence), holder)
}

// Checkpoint records that every send up to grant id lastGrantID is
// recorded; it never moves back. ErrLeaseLost if not held by holder.
func (db *DB) Checkpoint(ctx context.Context, campaign string, occurrence time.Time, holder string, lastGrantID int64) error {
	return db.leaseUpdate(ctx, "checkpoint", "checkpoint = CASE WHEN checkpoint < ? THEN ? ELSE checkpoint END",
		lastGrantID, lastGrantID, campaign, db.tv(occurrence), holder)
}

// FinishRun marks the run done with summary. Finishing a run holder already
// finished is a no-op; ErrLeaseLost if another holder has it.
func (db *DB) FinishRun(ctx context.Context, campaign string, occurrence time.Time, holder string, summary string) error {
	err := db.leaseUpdate(ctx, "finish run", "status = 'done', summary = ?", summary, campaign, db.tv(occurrence), holder)
	if !errors.Is(err, ErrLeaseLost) {
		return err
	}
	r, gerr := db.GetRun(ctx, campaign, occurrence)
	if gerr == nil && r.Status == RunDone && r.Holder == holder {
		return nil
	}
	return err
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("store: %w", &applicationError{errorf(format, args...)})
}
