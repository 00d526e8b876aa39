package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
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

// Reason is the reason code of a send refused by l.
func (l Limit) Reason() wxcampaign.Reason {
	switch l.Scope {
	case ScopeUser:
		return wxcampaign.ReasonCappedUser
	case ScopeTemplate:
		return wxcampaign.ReasonCappedTemplate
	}
	return wxcampaign.ReasonCappedUserTemplate
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

// Scope bits of a cap_takes row: the scopes the take counts for.
const (
	bitUserTemplate = 1
	bitUser         = 2
	bitTemplate     = 4
)

// scopeKey is the in-memory counting key of a scope, and its bit.
func scopeKey(scope, openid, template string) (string, int, error) {
	switch scope {
	case ScopeUserTemplate:
		return "ut|" + openid + "|" + template, bitUserTemplate, nil
	case ScopeUser:
		return "u|" + openid, bitUser, nil
	case ScopeTemplate:
		return "t|" + template, bitTemplate, nil
	}
	return "", 0, wxcampaign.Errorf(wxcampaign.EINVALID, "unknown cap scope %q (want user_template, user or template)", scope)
}

// capPlan is what TakeCaps and CheckCaps need to know about a batch.
type capPlan struct {
	locks     []string         // lock rows (u|openid, t|template), sorted
	openids   []string         // distinct users with user or user_template limits
	templates []string         // distinct templates with template limits
	windows   []time.Duration  // distinct windows
	reqKeys   [][]string       // per request, per limit: counting key
	reqBits   []int            // per request: the scopes its take counts for
	counts    map[string][]int // per counting key, per window index
	refs      map[string]bool  // refs already taken
}

// capTake is one cap_takes row to write.
type capTake struct {
	openid, template, ref string
	scopes                int
}

func planCaps(reqs []CapRequest) (*capPlan, error) {
	p := &capPlan{counts: map[string][]int{}, refs: map[string]bool{}}
	seen := map[string]bool{}
	add := func(list *[]string, kind, v string) {
		if !seen[kind+v] {
			seen[kind+v] = true
			*list = append(*list, v)
		}
	}
	for _, r := range reqs {
		ks := make([]string, len(r.Limits))
		bits := 0
		for j, l := range r.Limits {
			if l.Window <= 0 {
				return nil, &applicationError{wxcampaign.Errorf(wxcampaign.EINVALID, "cap %s: window must be positive", l.Scope)}
			}
			k, bit, err := scopeKey(l.Scope, r.OpenID, r.TemplateID)
			if err != nil {
				return nil, &applicationError{err}
			}
			ks[j] = k
			bits |= bit
			if !slices.Contains(p.windows, l.Window) {
				p.windows = append(p.windows, l.Window)
			}
			// The user's lock row covers user_template as well: every
			// take that counts for (openid, template) locks u|openid.
			if bit == bitTemplate {
				add(&p.templates, "t", r.TemplateID)
				add(&p.locks, "l", "t|"+r.TemplateID)
			} else {
				add(&p.openids, "u", r.OpenID)
				add(&p.locks, "l", "u|"+r.OpenID)
			}
		}
		p.reqKeys = append(p.reqKeys, ks)
		p.reqBits = append(p.reqBits, bits)
	}
	slices.Sort(p.locks)
	for _, ks := range p.reqKeys {
		for _, k := range ks {
			if p.counts[k] == nil {
				p.counts[k] = make([]int, len(p.windows))
			}
		}
	}
	return p, nil
}

// load reads the current counts and the refs already taken.
func (p *capPlan) load(ctx context.Context, db *DB, q sqlx.QueryerContext, reqs []CapRequest, now time.Time) error {
	// Every window is a conditional sum over the range of the longest one.
	longest := slices.Max(p.windows)
	var sel strings.Builder
	for wi := range p.windows {
		fmt.Fprintf(&sel, ", SUM(CASE WHEN taken_at > ? THEN 1 ELSE 0 END) AS n%d", wi)
	}
	type query struct {
		values []string
		sql    string
		add    func(vals []string, ns []int)
	}
	addTo := func(k string, ns []int) {
		if c := p.counts[k]; c != nil {
			for wi, n := range ns {
				c[wi] += n
			}
		}
	}
	queries := []query{
		// user_template and user: a covering range scan of cap_takes_user
		// per openid.
		{p.openids, "SELECT openid, template_id, scopes" + sel.String() + " FROM cap_takes WHERE taken_at > ? AND openid IN %s GROUP BY openid, template_id, scopes",
			func(vals []string, ns []int) {
				bits, _ := strconv.Atoi(vals[2])
				if bits&bitUserTemplate != 0 {
					addTo("ut|"+vals[0]+"|"+vals[1], ns)
				}
				if bits&bitUser != 0 {
					addTo("u|"+vals[0], ns)
				}
			}},
		// template: a covering range scan of cap_takes_template.
		{p.templates, "SELECT template_id" + sel.String() + " FROM cap_takes WHERE taken_at > ? AND scopes & 4 <> 0 AND template_id IN %s GROUP BY template_id",
			func(vals []string, ns []int) { addTo("t|"+vals[0], ns) }},
	}
	for _, qu := range queries {
		for _, c := range chunks(len(qu.values), maxIDsPerStatement) {
			part := qu.values[c[0]:c[1]]
			args := make([]any, 0, len(p.windows)+1+len(part))
			for _, w := range p.windows {
				args = append(args, db.tv(now.Add(-w)))
			}
			args = append(args, db.tv(now.Add(-longest)))
			for _, v := range part {
				args = append(args, v)
			}
			rows, err := q.QueryxContext(ctx, fmt.Sprintf(qu.sql, in(len(part))), args...)
			if err != nil {
				return fmt.Errorf("count cap takes: %w", err)
			}
			cols, err := rows.Columns()
			if err != nil {
				rows.Close()
				return fmt.Errorf("count cap takes: %w", err)
			}
			nv := len(cols) - len(p.windows)
			vals := make([]string, nv)
			ns := make([]int, len(p.windows))
			dest := make([]any, len(cols))
			for i := range vals {
				dest[i] = &vals[i]
			}
			for wi := range ns {
				dest[nv+wi] = &ns[wi]
			}
			for rows.Next() {
				if err := rows.Scan(dest...); err != nil {
					rows.Close()
					return fmt.Errorf("count cap takes: %w", err)
				}
				qu.add(vals, ns)
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("count cap takes: %w", err)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("count cap takes: %w", err)
			}
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
// request nil or the failing limit, the usage seen by each request, and the
// takes to write (one per request taken).
func (p *capPlan) decide(reqs []CapRequest) ([]*Limit, [][]CapUsage, []capTake) {
	out := make([]*Limit, len(reqs))
	usage := make([][]CapUsage, len(reqs))
	var takes []capTake
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
				out[i] = &u.Limit
				break
			}
		}
		if out[i] != nil {
			continue
		}
		if r.Ref != "" {
			p.refs[r.Ref] = true
		}
		if len(r.Limits) == 0 {
			continue // nothing to count
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
		}
		takes = append(takes, capTake{openid: r.OpenID, template: r.TemplateID, ref: r.Ref, scopes: p.reqBits[i]})
	}
	return out, usage, takes
}

// TakeCaps, for each request in order, takes one unit of every limit if all
// of them hold at now, else takes nothing for it. It returns per request nil
// (taken) or the first failing limit (its Reason is the outcome's code).
// A Ref already taken counts as taken (retries are safe). One transaction
// per call; a take is one cap_takes row, and the lock rows (u|openid for
// user and user_template limits, t|template for template limits) are
// locked in sorted order, so it is atomic across processes.
func (db *DB) TakeCaps(ctx context.Context, now time.Time, reqs []CapRequest) ([]*Limit, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	if _, err := planCaps(reqs); err != nil {
		return nil, fmt.Errorf("store: take caps: %w", err)
	}
	var out []*Limit
	err := db.tx(ctx, "take caps", func(tx *sqlx.Tx) error {
		p, _ := planCaps(reqs)
		// Create and lock the lock rows in one statement, in sorted order
		// (no lock-order deadlocks): an INSERT ... ON DUPLICATE KEY UPDATE
		// takes an exclusive lock on an existing key row as well, so there
		// is no shared-to-exclusive upgrade. SQLite: the write transaction
		// is the lock.
		upsert := "INSERT INTO cap_keys (scope_key) VALUES %s ON DUPLICATE KEY UPDATE scope_key = scope_key"
		if db.sqlite() {
			upsert = "INSERT OR IGNORE INTO cap_keys (scope_key) VALUES %s"
		}
		for _, c := range chunks(len(p.locks), maxIDsPerStatement) {
			part := p.locks[c[0]:c[1]]
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
		var takes []capTake
		out, _, takes = p.decide(reqs)
		at := db.tv(now)
		for _, c := range chunks(len(takes), maxIDsPerStatement) {
			var q strings.Builder
			q.WriteString("INSERT INTO cap_takes (openid, template_id, scopes, ref, taken_at) VALUES ")
			args := make([]any, 0, 5*(c[1]-c[0]))
			for i, t := range takes[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?)")
				args = append(args, t.openid, t.template, t.scopes, t.ref, at)
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
// limit or nil, and per limit the count in its window before that request
// (earlier requests of the batch that would be taken are counted).
func (db *DB) CheckCaps(ctx context.Context, now time.Time, reqs []CapRequest) ([]*Limit, [][]CapUsage, error) {
	if len(reqs) == 0 {
		return nil, nil, nil
	}
	var out []*Limit
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
