package engine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/wxcampaign/wxcampaign/rules"
)

// loadFacts runs each fact query once for the batch; the result holds, per
// fact, the matched row of each item (nil when none). env is the calling
// evaluator's own; the fact cache is shared by the run's evaluators.
func (r *run) loadFacts(ctx context.Context, env *rules.Env, items []*item) (map[string][]map[string]any, error) {
	out := make(map[string][]map[string]any, len(r.c.Facts))
	if len(items) == 0 {
		return out, nil
	}
	now := r.e.cfg.Now()
	for _, f := range r.c.Facts {
		rows := make([]map[string]any, len(items))
		out[f.Name] = rows
		// The keys are computed (a rule expression per grant) before the
		// cache is locked: the lock covers the lookups only, so the run's
		// evaluators do not wait for each other's expressions.
		keys := make([]string, len(items)) // the grants' keys; "" for none
		typed := make([]any, len(items))
		for i, it := range items {
			env.Reset(&it.g, r.at)
			k, err := r.c.Program.FactKey(f.Name, env)
			if err != nil || k == nil {
				continue
			}
			keys[i], typed[i] = keyString(k), k
		}
		var args []any
		var asked map[string]map[string]any // rows of the keys queried
		r.factMu.Lock()
		r.facts.rotate(now)
		for i, s := range keys {
			if s == "" {
				continue
			}
			if row, ok := r.facts.get(f.Name, s); ok {
				rows[i], keys[i] = row, "" // cached: not asked
				continue
			}
			if asked == nil {
				asked = map[string]map[string]any{}
			}
			if _, ok := asked[s]; ok {
				continue
			}
			asked[s] = nil // no row, unless the result has one
			args = append(args, typed[i])
		}
		r.factMu.Unlock()
		if len(args) == 0 {
			continue
		}
		var res []map[string]any
		err := r.e.retry(ctx, "facts "+f.Name, func() error {
			var err error
			res, err = r.e.facts.Query(ctx, f.Query, args)
			return err
		})
		if err != nil {
			return nil, &StopError{Reason: fmt.Sprintf("fact %s: %v", f.Name, err)}
		}
		got := make(map[string]int, len(res))
		for _, row := range res {
			v, ok := row[f.Column]
			if !ok {
				return nil, &StopError{Reason: fmt.Sprintf("fact %s: column %q is not in the query's result", f.Name, f.Column)}
			}
			k := keyString(v)
			if got[k]++; got[k] > 1 {
				// Two rows for one key: which is meant is unknown, so
				// the grants of that key fail rather than use either.
				row = map[string]any{duplicateRows: got[k]}
			}
			asked[k] = row
		}
		r.factMu.Lock()
		for k, row := range asked {
			r.facts.put(f.Name, k, row)
		}
		r.factMu.Unlock()
		for i, k := range keys {
			if k != "" {
				rows[i] = asked[k]
			}
		}
	}
	return out, nil
}

// duplicateRows marks, in place of a fact row, a key the fact query
// returned several rows for; its value is how many.
const duplicateRows = "\x00duplicate rows"

// duplicateFact returns the detail of the first fact of row i that has
// several rows for the grant's key, or "".
func (r *run) duplicateFact(env *rules.Env, rows map[string][]map[string]any, i int) string {
	for _, f := range r.c.Facts {
		row := rows[f.Name][i]
		if n, ok := row[duplicateRows]; ok {
			k, _ := r.c.Program.FactKey(f.Name, env)
			return fmt.Sprintf("fact %s: %v rows for key %q", f.Name, n, keyString(k))
		}
	}
	return ""
}

// factCache keeps the fact rows a run has read, so that a key shared by
// many grants (a product saved by thousands of users) is queried once per
// window instead of once per batch. Entries live at most factTTL, so a long
// run still sees a price change or a paid order within that time; memory
// stays flat: two generations of at most factGen keys each, the older
// dropped when the newer fills.
type factCache struct {
	cur, old factGeneration
	since    time.Time
}

// factGeneration holds rows by fact name, then key (nested maps: no key is
// built per lookup), and how many keys it holds.
type factGeneration struct {
	rows map[string]map[string]map[string]any
	n    int
}

func (g *factGeneration) get(fact, key string) (map[string]any, bool) {
	row, ok := g.rows[fact][key]
	return row, ok
}

// len is the number of keys held.
func (g *factGeneration) len() int { return g.n }

const (
	factTTL = 30 * time.Second
	factGen = 25000
)

func (c *factCache) rotate(now time.Time) {
	switch {
	case c.cur.rows == nil || now.Sub(c.since) > factTTL:
		c.cur, c.old, c.since = factGeneration{rows: map[string]map[string]map[string]any{}}, factGeneration{}, now
	case c.cur.n >= factGen:
		c.old, c.cur = c.cur, factGeneration{rows: map[string]map[string]map[string]any{}}
	}
}

func (c *factCache) get(fact, key string) (map[string]any, bool) {
	if row, ok := c.cur.get(fact, key); ok {
		return row, true
	}
	return c.old.get(fact, key)
}

func (c *factCache) put(fact, key string, row map[string]any) {
	m := c.cur.rows[fact]
	if m == nil {
		m = map[string]map[string]any{}
		c.cur.rows[fact] = m
	}
	if _, ok := m[key]; !ok {
		c.cur.n++
	}
	m[key] = row
}

// keyString normalizes a fact key so that 42, int64(42) and "42" match.
func keyString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int:
		return strconv.Itoa(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}
