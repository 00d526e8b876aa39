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

// CounterKey names the counter a take of l for (openid, template) counts
// in: the scope's key and the window. The store's decision and a preview's
// own count of its simulated takes use it alike.
func (l Limit) CounterKey(openid, template string) string {
	k, _, err := scopeKey(l.Scope, openid, template)
	if err != nil {
		k = "?|" + l.Scope
	}
	return k + "|" + l.Window.String()
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
	OpenID     string
	TemplateID string
	Limits     []Limit
}

// CapUsage is a limit and how many takes are in its window.
type CapUsage struct {
	Limit Limit `json:"limit"`
	Used  int   `json:"used"`
}

// Scope bits of a send_log row (its scopes column): the cap scopes the
// send counts for, those of the limits it was taken with.
const (
	bitUserTemplate = 1
	bitUser         = 2
	bitTemplate     = 4
)

// capStripes is the number of lock rows (cap_keys) the users' caps are
// spread over on MySQL: a take locks the stripe of its openid, so two
// processes taking caps of one user are serialized, and the lock rows
// exist after the first sends (no lock row written per new user).
const capStripes = 1024

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

// capPlan is what BeginSends and CheckCaps need to know about a batch: the
// one definition of the cap decision, shared by the atomic take and the
// preview's read-only check.
type capPlan struct {
	locks     []string         // lock rows (u#stripe, t|template), sorted
	openids   []string         // distinct users with user or user_template limits
	templates []string         // distinct templates with template limits
	windows   []time.Duration  // distinct windows
	reqKeys   [][]string       // per request, per limit: counting key
	reqBits   []int            // per request: the scopes its take counts for
	counts    map[string][]int // per counting key, per window index
}

func planCaps(reqs []CapRequest) (*capPlan, error) {
	p := &capPlan{counts: map[string][]int{}}
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
			// The user's stripe covers user_template as well: every take
			// that counts for (openid, template) locks it.
			if bit == bitTemplate {
				add(&p.templates, "t", r.TemplateID)
				add(&p.locks, "l", "t|"+r.TemplateID)
			} else {
				add(&p.openids, "u", r.OpenID)
				add(&p.locks, "l", fmt.Sprintf("u#%04d", stripe(r.OpenID)))
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

// stripe is the lock stripe of an openid (FNV-1a).
func stripe(openid string) int {
	h := uint32(2166136261)
	for i := 0; i < len(openid); i++ {
		h ^= uint32(openid[i])
		h *= 16777619
	}
	return int(h % capStripes)
}

// rangeDiveKeys bounds the keys of an IN list so that MySQL and MariaDB
// estimate its ranges by index dives: from eq_range_index_dive_limit keys
// on (200 by default) they use the index statistics, and MariaDB 10.11
// then chose a scan of the whole send_log_user index over 200 lookups.
const rangeDiveKeys = 128

// takesCap reports whether a send_log row of status keeps its cap take: a
// send that went out or may have gone out. A row deleted (nothing was sent)
// or failed (WeChat refused it) gives its take back: FinishSends sets its
// scopes to 0, so the counts read scopes alone and the cap indexes carry
// no status (migration 00015).
func takesCap(status string) bool {
	switch status {
	case StatusInflight, string(wxcampaign.Sent), string(wxcampaign.Unknown):
		return true
	}
	return false
}

// load reads the current counts from the send log.
func (p *capPlan) load(ctx context.Context, db *DB, q sqlx.QueryerContext, now time.Time) error {
	if len(p.windows) == 0 {
		return nil
	}
	// Every window is a conditional sum over the range of the longest one.
	longest := slices.Max(p.windows)
	var sel strings.Builder
	for wi := range p.windows {
		fmt.Fprintf(&sel, ", SUM(CASE WHEN started_at > ? THEN 1 ELSE 0 END) AS n%d", wi)
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
	// At most rangeDiveKeys keys a statement, and the index forced: past
	// eq_range_index_dive_limit (200 by default) MariaDB estimates a range
	// from the index statistics, which for a send_log that was small when
	// the run began made it scan the whole index (1,800 rows read per mark
	// group at 50 ms, 2.5 per grant sent).
	queries := []query{
		// user_template and user: a covering range scan of send_log_user
		// per openid.
		{p.openids, "SELECT openid, template_id, scopes" + sel.String() + " FROM send_log" + db.forceIndex("send_log_user") + " WHERE openid IN %s AND started_at > ? AND scopes & 3 <> 0 GROUP BY openid, template_id, scopes",
			func(vals []string, ns []int) {
				bits, _ := strconv.Atoi(vals[2])
				if bits&bitUserTemplate != 0 {
					addTo("ut|"+vals[0]+"|"+vals[1], ns)
				}
				if bits&bitUser != 0 {
					addTo("u|"+vals[0], ns)
				}
			}},
		// template: a covering range scan of send_log_template.
		{p.templates, "SELECT template_id" + sel.String() + " FROM send_log" + db.forceIndex("send_log_template") + " WHERE template_id IN %s AND started_at > ? AND scopes & 4 <> 0 GROUP BY template_id",
			func(vals []string, ns []int) { addTo("t|"+vals[0], ns) }},
	}
	for _, qu := range queries {
		for _, c := range chunks(len(qu.values), rangeDiveKeys) {
			part := qu.values[c[0]:c[1]]
			args := make([]any, 0, len(p.windows)+1+len(part))
			for _, w := range p.windows {
				args = append(args, db.tv(now.Add(-w)))
			}
			for _, v := range part {
				args = append(args, v)
			}
			args = append(args, db.tv(now.Add(-longest)))
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
	return nil
}

// lock locks the plan's lock rows in sorted order (no lock-order
// deadlocks), creating those that do not exist yet. SQLite: the write
// transaction is the lock.
func (p *capPlan) lock(ctx context.Context, db *DB, tx *sqlx.Tx) error {
	if db.sqlite() || len(p.locks) == 0 {
		return nil
	}
	for _, c := range chunks(len(p.locks), maxIDsPerStatement) {
		part := p.locks[c[0]:c[1]]
		args := make([]any, len(part))
		for i, k := range part {
			args[i] = k
		}
		var got []string
		if err := tx.SelectContext(ctx, &got, "SELECT scope_key FROM cap_keys WHERE scope_key IN "+in(len(part))+" ORDER BY scope_key FOR UPDATE", args...); err != nil {
			return fmt.Errorf("lock cap keys: %w", err)
		}
		if len(got) == len(part) {
			continue
		}
		// First use of a stripe or template: create its row (locked by
		// the insert). Rows only ever accumulate: 1,024 stripes plus one
		// per template.
		var missing []any
		for _, k := range part {
			if !slices.Contains(got, k) {
				missing = append(missing, k)
			}
		}
		if _, err := insertRows(ctx, tx, "INSERT INTO cap_keys (scope_key)", "(?)", " ON DUPLICATE KEY UPDATE scope_key = scope_key",
			len(missing), len(missing), func(a []any, i int) []any { return append(a, missing[i]) }); err != nil {
			return fmt.Errorf("create cap keys: %w", err)
		}
	}
	return nil
}

// decide walks the requests in order, simulating the takes, and returns per
// request nil or the failing limit, and the usage seen by each request.
func (p *capPlan) decide(reqs []CapRequest) ([]*Limit, [][]CapUsage) {
	out := make([]*Limit, len(reqs))
	usage := make([][]CapUsage, len(reqs))
	for i, r := range reqs {
		usage[i] = make([]CapUsage, len(r.Limits))
		for j, l := range r.Limits {
			usage[i][j] = CapUsage{Limit: l, Used: p.counts[p.reqKeys[i][j]][slices.Index(p.windows, l.Window)]}
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
	}
	return out, usage
}

// CheckCaps is the read-only cap decision of BeginSends, for previews: per
// request the failing limit or nil, and per limit the count in its window
// before that request (earlier requests of the batch that would be taken
// are counted).
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
		if err := p.load(ctx, db, db.r, now); err != nil {
			return err
		}
		out, usage = p.decide(reqs)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return out, usage, nil
}
