package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Cap scopes.
const (
	ScopeUserTemplate = "user_template" // per (openid, template)
	ScopeUser         = "user"          // per openid, all templates
	ScopeTemplate     = "template"      // per template, all users
)

// Limit is a sliding-window frequency cap: at most Max takes per Window.
type Limit struct {
	Scope  string        `json:"scope"` // user_template, user or template
	Max    int           `json:"max"`
	Window time.Duration `json:"window"`
}

// String describes the limit, e.g. "user_template 1/24h".
func (l Limit) String() string {
	return fmt.Sprintf("%s %d/%s", l.Scope, l.Max, FormatWindow(l.Window))
}

// FormatWindow writes a window the way campaign files do: 30m, 24h, 7d.
func FormatWindow(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d > day && d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute && d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}

// CapRequest asks to take one unit of every limit for one send.
type CapRequest struct {
	Ref        string // unique id of the take, e.g. campaign|occurrence|grant
	OpenID     string
	TemplateID string
	Limits     []Limit
}

// CapUsage is a limit and how many takes are in its window.
type CapUsage struct {
	Limit Limit `json:"limit"`
	Used  int   `json:"used"`
}

func scopeKey(scope, openid, template string) (string, error) {
	switch scope {
	case ScopeUserTemplate:
		return "ut|" + openid + "|" + template, nil
	case ScopeUser:
		return "u|" + openid, nil
	case ScopeTemplate:
		return "t|" + template, nil
	}
	return "", wxcampaign.Errorf(wxcampaign.EINVALID, "unknown cap scope %q (want user_template, user or template)", scope)
}

// capPlan is what TakeCaps and CheckCaps need to know about a batch.
type capPlan struct {
	keys    []string         // distinct scope keys, sorted
	windows []time.Duration  // distinct windows
	reqKeys [][]string       // per request, per limit
	counts  map[string][]int // per key, per window index
	refs    map[string]bool  // refs already taken
}

func planCaps(reqs []CapRequest) (*capPlan, error) {
	p := &capPlan{counts: map[string][]int{}, refs: map[string]bool{}}
	seenKey := map[string]bool{}
	for _, r := range reqs {
		ks := make([]string, len(r.Limits))
		for j, l := range r.Limits {
			if l.Window <= 0 {
				return nil, &applicationError{wxcampaign.Errorf(wxcampaign.EINVALID, "cap %s: window must be positive", l.Scope)}
			}
			k, err := scopeKey(l.Scope, r.OpenID, r.TemplateID)
			if err != nil {
				return nil, &applicationError{err}
			}
			ks[j] = k
			if !seenKey[k] {
				seenKey[k] = true
				p.keys = append(p.keys, k)
			}
			if !slices.Contains(p.windows, l.Window) {
				p.windows = append(p.windows, l.Window)
			}
		}
		p.reqKeys = append(p.reqKeys, ks)
	}
	slices.Sort(p.keys)
	for _, k := range p.keys {
		p.counts[k] = make([]int, len(p.windows))
	}
	return p, nil
}

// load reads the current counts and the refs already taken.
func (p *capPlan) load(ctx context.Context, db *DB, q sqlx.QueryerContext, reqs []CapRequest, now time.Time) error {
	// One statement per chunk of keys for every window: the longest window
	// bounds the range, each window is a conditional sum.
	longest := slices.Max(p.windows)
	var sel strings.Builder
	for wi := range p.windows {
		fmt.Fprintf(&sel, ", SUM(CASE WHEN taken_at > ? THEN 1 ELSE 0 END) AS n%d", wi)
	}
	for _, c := range chunks(len(p.keys), maxIDsPerStatement) {
		part := p.keys[c[0]:c[1]]
		args := make([]any, 0, len(p.windows)+1+len(part))
		for _, w := range p.windows {
			args = append(args, db.tv(now.Add(-w)))
		}
		args = append(args, db.tv(now.Add(-longest)))
		for _, k := range part {
			args = append(args, k)
		}
		rows, err := q.QueryxContext(ctx, "SELECT scope_key"+sel.String()+" FROM cap_takes WHERE taken_at > ? AND scope_key IN "+in(len(part))+" GROUP BY scope_key", args...)
		if err != nil {
			return fmt.Errorf("count cap takes: %w", err)
		}
		dest := make([]any, 1+len(p.windows))
		var key string
		ns := make([]int, len(p.windows))
		dest[0] = &key
		for wi := range ns {
			dest[wi+1] = &ns[wi]
		}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("count cap takes: %w", err)
			}
			copy(p.counts[key], ns)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("count cap takes: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("count cap takes: %w", err)
		}
	}
	refs := make([]string, 0, len(reqs))
	for _, r := range reqs {
		if r.Ref != "" {
			refs = append(refs, r.Ref)
		}
	}
	for _, c := range chunks(len(refs), maxIDsPerStatement) {
		part := refs[c[0]:c[1]]
		args := make([]any, len(part))
		for i, r := range part {
			args[i] = r
		}
		var got []string
		if err := sqlx.SelectContext(ctx, q, &got, "SELECT DISTINCT ref FROM cap_takes WHERE ref IN "+in(len(part)), args...); err != nil {
			return fmt.Errorf("find cap refs: %w", err)
		}
		for _, r := range got {
			p.refs[r] = true
		}
	}
	return nil
}

// decide walks the requests in order, simulating the takes, and returns per
// request "" or the failing limit, the usage seen by each request, and the
// takes to write (scope key, ref).
func (p *capPlan) decide(reqs []CapRequest) ([]string, [][]CapUsage, [][2]string) {
	out := make([]string, len(reqs))
	usage := make([][]CapUsage, len(reqs))
	var takes [][2]string
	for i, r := range reqs {
		usage[i] = make([]CapUsage, len(r.Limits))
		for j, l := range r.Limits {
			usage[i][j] = CapUsage{Limit: l, Used: p.counts[p.reqKeys[i][j]][slices.Index(p.windows, l.Window)]}
		}
		if r.Ref != "" && p.refs[r.Ref] {
			continue // already taken by an earlier call or earlier in this one
		}
		for _, u := range usage[i] {
			if u.Used >= u.Limit.Max {
				out[i] = "capped: " + u.Limit.String()
				break
			}
		}
		if out[i] != "" {
			continue
		}
		if r.Ref != "" {
			p.refs[r.Ref] = true
		}
		var done []string
		for _, k := range p.reqKeys[i] {
			if slices.Contains(done, k) {
				continue
			}
			done = append(done, k)
			for wi := range p.windows {
				p.counts[k][wi]++
			}
			takes = append(takes, [2]string{k, r.Ref})
		}
	}
	return out, usage, takes
}

// TakeCaps, for each request in order, takes one unit of every limit if all
// of them hold at now, else takes nothing for it. It returns per request ""
// (taken) or the first failing limit, e.g. "capped: user_template 1/24h".
// A Ref already taken counts as taken (retries are safe). One transaction
// per call; the scope keys are locked in sorted order, so it is atomic
// across processes.
func (db *DB) TakeCaps(ctx context.Context, now time.Time, reqs []CapRequest) ([]string, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if _, err := planCaps(reqs); err != nil {
		return nil, fmt.Errorf("store: take caps: %w", err)
	}
	var out []string
	err := db.tx(ctx, "take caps", func(tx *sqlx.Tx) error {
		p, _ := planCaps(reqs)
		// Create and lock the key rows in one statement, in sorted order
		// (no lock-order deadlocks): an INSERT ... ON DUPLICATE KEY UPDATE
		// takes an exclusive lock on an existing key row as well, so there
		// is no shared-to-exclusive upgrade. SQLite: the write transaction
		// is the lock.
		upsert := "INSERT INTO cap_keys (scope_key) VALUES %s ON DUPLICATE KEY UPDATE scope_key = scope_key"
		if db.sqlite() {
			upsert = "INSERT OR IGNORE INTO cap_keys (scope_key) VALUES %s"
		}
		for _, c := range chunks(len(p.keys), maxIDsPerStatement) {
			part := p.keys[c[0]:c[1]]
			args := make([]any, len(part))
			for i, k := range part {
				args[i] = k
			}
			vals := strings.TrimSuffix(strings.Repeat("(?),", len(part)), ",")
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(upsert, vals), args...); err != nil {
				return fmt.Errorf("lock cap keys: %w", err)
			}
		}
		if err := p.load(ctx, db, tx, reqs, now); err != nil {
			return err
		}
		var takes [][2]string
		out, _, takes = p.decide(reqs)
		for _, c := range chunks(len(takes), maxIDsPerStatement) {
			var q strings.Builder
			q.WriteString("INSERT INTO cap_takes (scope_key, ref, taken_at) VALUES ")
			args := make([]any, 0, 3*(c[1]-c[0]))
			for i, t := range takes[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?)")
				args = append(args, t[0], t[1], db.tv(now))
			}
			if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
				return fmt.Errorf("insert cap takes: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReturnCaps gives back the takes with these refs (sends that proved
// nothing was delivered).
func (db *DB) ReturnCaps(ctx context.Context, refs []string) error {
	return db.tx(ctx, "return caps", func(tx *sqlx.Tx) error {
		for _, c := range chunks(len(refs), maxIDsPerStatement) {
			part := refs[c[0]:c[1]]
			args := make([]any, len(part))
			for i, r := range part {
				args[i] = r
			}
			if _, err := tx.ExecContext(ctx, "DELETE FROM cap_takes WHERE ref IN "+in(len(part)), args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// CheckCaps is the read-only TakeCaps for previews: per request the failing
// limit or "", and per limit the count in its window before that request
// (earlier requests of the batch that would be taken are counted).
func (db *DB) CheckCaps(ctx context.Context, now time.Time, reqs []CapRequest) ([]string, [][]CapUsage, error) {
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	var out []string
	var usage [][]CapUsage
	err := db.retry(ctx, "check caps", func() error {
		p, err := planCaps(reqs)
		if err != nil {
			return err
		}
		if err := p.load(ctx, db, db.r, reqs, now); err != nil {
			return err
		}
		out, usage, _ = p.decide(reqs)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, usage, nil
}

// PruneCaps deletes takes older than before (older than the longest window
// in use) and returns how many it deleted.
func (db *DB) PruneCaps(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := db.tx(ctx, "prune caps", func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, "DELETE FROM cap_takes WHERE taken_at < ?", db.tv(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}
