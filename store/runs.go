package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Run statuses.
const (
	RunRunning = "running"
	RunDone    = "done"
)

// Run is the lease of one campaign tick (campaign, occurrence) and its
// record: the id `wxcampaign runs` and the console name it by, and the
// report of its attempts.
type Run struct {
	ID         int64      `json:"id"`
	Campaign   string     `json:"campaign"`
	Occurrence time.Time  `json:"occurrence"`
	Holder     string     `json:"holder"`
	LeaseUntil time.Time  `json:"lease_until"`
	Checkpoint int64      `json:"checkpoint"` // last grant id whose send is recorded
	Status     string     `json:"status"`     // running or done
	Summary    string     `json:"summary"`    // the last attempt's status: done, stopped, paused until ...
	Report     *RunReport `json:"report,omitempty"`
	FinishedAt time.Time  `json:"finished_at,omitempty"`
}

type runRow struct {
	ID         sql.NullInt64  `db:"id"`
	Report     sql.NullString `db:"report"`
	FinishedAt dbTime         `db:"finished_at"`
	Campaign   string         `db:"campaign"`
	Occurrence dbTime         `db:"occurrence"`
	Holder     string         `db:"holder"`
	LeaseUntil dbTime         `db:"lease_until"`
	Checkpoint int64          `db:"checkpoint"`
	Status     string         `db:"status"`
	Summary    sql.NullString `db:"summary"`
}

func (r runRow) run() Run {
	run := Run{ID: r.ID.Int64, Campaign: r.Campaign, Occurrence: r.Occurrence.Time, Holder: r.Holder, LeaseUntil: r.LeaseUntil.Time,
		Checkpoint: r.Checkpoint, Status: r.Status, Summary: r.Summary.String, FinishedAt: r.FinishedAt.Time}
	if r.Report.Valid && r.Report.String != "" {
		var rep RunReport
		if json.Unmarshal([]byte(r.Report.String), &rep) == nil {
			run.Report = &rep
		}
	}
	return run
}

const runCols = "id, report, finished_at, campaign, occurrence, holder, lease_until, checkpoint, status, summary"

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

// RunReport is what a run's attempts did, stored with the run: counts per
// outcome and per "outcome: reason", duration and rate, the replicas that
// ran it and the error of each failed attempt. A retried run adds up.
type RunReport struct {
	Status   string         `json:"status"`
	Looked   int            `json:"looked"`
	Counts   map[string]int `json:"counts"`
	Reasons  map[string]int `json:"reasons"`
	Duration time.Duration  `json:"duration_ns"`
	// Rate is messages sent per second over every attempt's duration.
	Rate     float64  `json:"messages_per_second"`
	Replicas []string `json:"replicas"`
	Attempts int      `json:"attempts"`
	Errors   []string `json:"errors,omitempty"`
}

// Count returns the count of outcome o ("sent", "skipped", ...).
func (r *RunReport) Count(o string) int {
	if r == nil {
		return 0
	}
	return r.Counts[o]
}

// add merges attempt a into r.
func (r *RunReport) add(a RunReport) {
	if r.Counts == nil {
		r.Counts = map[string]int{}
	}
	if r.Reasons == nil {
		r.Reasons = map[string]int{}
	}
	r.Status = a.Status
	r.Looked += a.Looked
	for k, n := range a.Counts {
		r.Counts[k] += n
	}
	for k, n := range a.Reasons {
		r.Reasons[k] += n
	}
	r.Duration += a.Duration
	for _, rep := range a.Replicas {
		if !contains(r.Replicas, rep) {
			r.Replicas = append(r.Replicas, rep)
		}
	}
	r.Attempts++
	r.Errors = append(r.Errors, a.Errors...)
	if len(r.Errors) > 20 {
		r.Errors = r.Errors[len(r.Errors)-20:]
	}
	r.Rate = 0
	if secs := r.Duration.Seconds(); secs > 0 {
		r.Rate = float64(r.Counts[string(wxcampaign.Sent)]) / secs
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// RecordRunReport adds one attempt's report to the run (campaign,
// occurrence) and stamps it finished at. ENOTFOUND if the run has no row
// (a preview, or an attempt that never took the lease).
func (db *DB) RecordRunReport(ctx context.Context, campaign string, occurrence time.Time, attempt RunReport, at time.Time) error {
	return db.tx(ctx, "record run report", func(tx *sqlx.Tx) error {
		var cur sql.NullString
		err := tx.GetContext(ctx, &cur, "SELECT report FROM runs WHERE campaign = ? AND occurrence = ?"+db.forUpdate(), campaign, db.tv(occurrence))
		if isNoRows(err) {
			return notFound("run %s at %s", campaign, occurrence.UTC().Format(time.RFC3339))
		}
		if err != nil {
			return err
		}
		var rep RunReport
		if cur.Valid && cur.String != "" {
			if err := json.Unmarshal([]byte(cur.String), &rep); err != nil {
				return fmt.Errorf("stored report: %w", err)
			}
		}
		rep.add(attempt)
		b, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE runs SET report = ?, finished_at = ? WHERE campaign = ? AND occurrence = ?",
			string(b), db.tv(at), campaign, db.tv(occurrence))
		return err
	})
}

// RunFilter selects a page of runs, newest id first.
type RunFilter struct {
	Campaign string // "" = every campaign
	BeforeID int64  // keyset: only runs with a smaller id; 0 = from the newest
	Limit    int    // default 50, at most 1000
}

// RunsPage returns a page of runs by f, newest first; the next page starts
// before the last run's id.
func (db *DB) RunsPage(ctx context.Context, f RunFilter) ([]Run, error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 1000)
	q := "SELECT " + runCols + " FROM runs WHERE id IS NOT NULL"
	var args []any
	if f.Campaign != "" {
		q += " AND campaign = ?"
		args = append(args, f.Campaign)
	}
	if f.BeforeID > 0 {
		q += " AND id < ?"
		args = append(args, f.BeforeID)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	var rows []runRow
	err := db.retry(ctx, "runs page", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, q, args...)
	})
	out := make([]Run, len(rows))
	for i, r := range rows {
		out[i] = r.run()
	}
	return out, err
}

// GetRunByID returns the run with id; ENOTFOUND if none.
func (db *DB) GetRunByID(ctx context.Context, id int64) (Run, error) {
	var r runRow
	err := db.retry(ctx, "get run", func() error {
		return db.r.GetContext(ctx, &r, "SELECT "+runCols+" FROM runs WHERE id = ?", id)
	})
	if isNoRows(err) {
		return Run{}, notFound("run %d", id)
	}
	return r.run(), err
}

// State is the run's state in one word or phrase: running, or the status
// its last attempt finished with (done, stopped, paused until ...).
func (r Run) State() string {
	if r.Status == RunRunning || r.Summary == "" {
		return r.Status
	}
	return r.Summary
}

// Retryable reports whether a run may be retried at now, and why not: a
// run that stopped (a misconfiguration since fixed, a quota pause) or was
// interrupted and left its lease may; one that finished or that another
// process holds may not.
func (r Run) Retryable(now time.Time) (bool, string) {
	switch {
	case r.Status == RunRunning && r.LeaseUntil.After(now):
		return false, fmt.Sprintf("run %d is running (held by %s until %s)", r.ID, r.Holder, r.LeaseUntil.Format(time.RFC3339))
	case r.Status == RunRunning:
		return true, ""
	case r.Summary == RunDone:
		return false, fmt.Sprintf("run %d finished (done): nothing to retry", r.ID)
	}
	return true, ""
}

// ReopenRun makes a stopped run takeable again, keeping its checkpoint: the
// next AcquireRun of (campaign, occurrence) resumes after the checkpoint.
// ECONFLICT when the run finished or is held (see Run.Retryable).
func (db *DB) ReopenRun(ctx context.Context, id int64, now time.Time) (Run, error) {
	var run Run
	err := db.tx(ctx, "reopen run", func(tx *sqlx.Tx) error {
		var r runRow
		err := tx.GetContext(ctx, &r, "SELECT "+runCols+" FROM runs WHERE id = ?"+db.forUpdate(), id)
		if isNoRows(err) {
			return notFound("run %d", id)
		}
		if err != nil {
			return err
		}
		run = r.run()
		if ok, why := run.Retryable(now); !ok {
			return fmt.Errorf("store: %w", &applicationError{wxcampaign.Errorf(wxcampaign.ECONFLICT, "%s", why)})
		}
		past := now.Add(-time.Second)
		if _, err := tx.ExecContext(ctx, "UPDATE runs SET status = 'running', lease_until = ? WHERE id = ?", db.tv(past), id); err != nil {
			return err
		}
		run.Status, run.LeaseUntil = RunRunning, normTime(past)
		return nil
	})
	if err != nil {
		return Run{}, err
	}
	return run, nil
}
