package store

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/wxcampaign/wxcampaign"
)

// Grant statuses.
const (
	StatusActive   = "active"
	StatusConsumed = "consumed"
	StatusRevoked  = "revoked"
)

// Subscription event results recorded in subscription_events.
const (
	EventReject = "reject"
	EventBan    = "ban"
	EventFilter = "filter"
)

// RecordResult says what recording one subscription result did.
type RecordResult = wxcampaign.RecordResult

// RecordSubscription records one wx.requestSubscribeMessage result at time
// at: a credit per accepted one-time template id (a repeated id counts
// once), a standing grant per accepted id listed in r.LongTermTemplateIDs
// (the caller decides the kinds before calling), an event per reject, ban
// and filter; a reject or ban revokes the user's long-term grants of that
// template. A requestId already recorded adds nothing and returns
// Duplicate=true, also under concurrency, with Conflict=true when the
// recorded result's content differs (wxcampaign.SubscriptionResult.Fingerprint).
// An invalid result is a wxcampaign.EINVALID error.
func (db *DB) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time) (RecordResult, error) {
	r.Normalize()
	if err := r.Validate(); err != nil {
		return RecordResult{}, fmt.Errorf("store: record subscription: %w", err)
	}
	var st batchStats
	err := db.tx(ctx, "record subscription", func(tx *sqlx.Tx) error {
		var err error
		st, err = db.writeBatch(ctx, tx, []*wxcampaign.SubscriptionResult{&r}, at, nil, nil)
		return err
	})
	if err != nil {
		return RecordResult{}, err
	}
	return RecordResult{Credits: st.credits, LongTerm: st.longTerm, Rejected: st.rejected, Duplicate: st.duplicates > 0, Conflict: st.conflicts > 0}, nil
}

// RecordSubscriptions records rs in order in one transaction (group
// commit) and returns one RecordResult per element, as RecordSubscription
// does; a requestId repeated earlier in rs is a duplicate too. An invalid
// element is a wxcampaign.EINVALID error and nothing is recorded.
func (db *DB) RecordSubscriptions(ctx context.Context, rs []wxcampaign.SubscriptionResult, at time.Time) ([]RecordResult, error) {
	ptrs := make([]*wxcampaign.SubscriptionResult, len(rs))
	for i := range rs {
		rs[i].Normalize()
		if err := rs[i].Validate(); err != nil {
			return nil, fmt.Errorf("store: record subscriptions: result %d: %w", i, err)
		}
		ptrs[i] = &rs[i]
	}
	out := make([]RecordResult, len(rs))
	if len(rs) == 0 {
		return out, nil
	}
	err := db.tx(ctx, "record subscriptions", func(tx *sqlx.Tx) error {
		_, err := db.writeBatch(ctx, tx, ptrs, at, nil, out)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

type batchStats struct {
	imported, duplicates, conflicts, credits, longTerm, rejected int
}

func (s *batchStats) add(o batchStats) {
	s.imported += o.imported
	s.duplicates += o.duplicates
	s.conflicts += o.conflicts
	s.credits += o.credits
	s.longTerm += o.longTerm
	s.rejected += o.rejected
}

// kindFunc resolves the kind of an agreed template id of r.
func kindFunc(r *wxcampaign.SubscriptionResult, kindOf func(string) wxcampaign.Kind) func(string) wxcampaign.Kind {
	return func(id string) wxcampaign.Kind {
		if slices.Contains(r.LongTermTemplateIDs, id) {
			return wxcampaign.LongTerm
		}
		if kindOf != nil && kindOf(id) == wxcampaign.LongTerm {
			return wxcampaign.LongTerm
		}
		return wxcampaign.OneTime
	}
}

type userTemplate struct{ openid, template string }

// writeBatch records results in tx. Results are applied in order; a result
// whose requestId is already stored (or repeated earlier in the batch) is a
// duplicate and adds nothing.
func (db *DB) writeBatch(ctx context.Context, tx *sqlx.Tx, rs []*wxcampaign.SubscriptionResult, at time.Time, kindOf func(string) wxcampaign.Kind, per []RecordResult) (batchStats, error) {
	var st batchStats
	var pos map[*wxcampaign.SubscriptionResult]int // for per: result -> index
	if per != nil {
		pos = make(map[*wxcampaign.SubscriptionResult]int, len(rs))
		for i, r := range rs {
			pos[r] = i
			per[i] = RecordResult{Duplicate: true} // until recorded below
		}
	}
	// 1. Claim the request ids with this call's token and the results'
	// fingerprints; a repeated id with another fingerprint is a conflict.
	conflict := func(r *wxcampaign.SubscriptionResult) {
		st.conflicts++
		if per != nil {
			per[pos[r]].Conflict = true
		}
	}
	seen := make(map[string]string, len(rs)) // request id -> fingerprint
	fresh := make([]*wxcampaign.SubscriptionResult, 0, len(rs))
	fps := make(map[*wxcampaign.SubscriptionResult]string, len(rs))
	for _, r := range rs {
		r.Normalize() // a repeated template id counts once
		fp := r.Fingerprint()
		if first, ok := seen[r.RequestID]; ok {
			st.duplicates++
			if first != fp {
				conflict(r)
			}
			continue
		}
		seen[r.RequestID] = fp
		fps[r] = fp
		fresh = append(fresh, r)
	}
	token := newToken()
	var inserted int64
	bulk := db.useBulk(len(fresh))
	if bulk {
		var body tsv
		for _, r := range fresh {
			body.str(r.RequestID)
			body.str(fps[r])
			body.end()
		}
		// The token is hex (newToken): safe as a literal.
		n, err := db.loadData(ctx, tx, "subscription_requests", []string{"request_id", "fingerprint"}, "token = '"+token+"'", &body)
		if err != nil {
			return st, fmt.Errorf("claim request ids: %w", err)
		}
		inserted = n
	} else {
		n, err := insertRows(ctx, tx, db.insertIgnore()+" INTO subscription_requests (request_id, token, fingerprint)", "(?,?,?)", "",
			len(fresh), 2000, func(a []any, i int) []any { return append(a, fresh[i].RequestID, token, fps[fresh[i]]) })
		if err != nil {
			return st, fmt.Errorf("claim request ids: %w", err)
		}
		inserted = n
	}
	if int(inserted) < len(fresh) {
		ours := make(map[string]bool, inserted)
		stored := make(map[string]string) // fingerprints of ids claimed before
		for _, c := range chunks(len(fresh), maxIDsPerStatement) {
			args := []any{}
			for _, r := range fresh[c[0]:c[1]] {
				args = append(args, r.RequestID)
			}
			var rows []struct {
				ID          string `db:"request_id"`
				Token       string `db:"token"`
				Fingerprint string `db:"fingerprint"`
			}
			if err := tx.SelectContext(ctx, &rows, "SELECT request_id, token, fingerprint FROM subscription_requests WHERE request_id IN "+in(c[1]-c[0]), args...); err != nil {
				return st, fmt.Errorf("find claimed request ids: %w", err)
			}
			for _, row := range rows {
				if row.Token == token {
					ours[row.ID] = true
				} else {
					stored[row.ID] = row.Fingerprint
				}
			}
		}
		kept := fresh[:0]
		for _, r := range fresh {
			if ours[r.RequestID] {
				kept = append(kept, r)
				continue
			}
			st.duplicates++
			if fp := stored[r.RequestID]; fp != "" && fp != fps[r] {
				conflict(r)
			}
		}
		fresh = kept
	}
	st.imported = len(fresh)
	if len(fresh) == 0 {
		return st, nil
	}

	// 2. Build grant and event rows in order; a later reject in the batch
	// revokes earlier long-term grants of the batch in memory.
	type grantRow struct {
		r      *wxcampaign.SubscriptionResult
		tmpl   string
		kind   wxcampaign.Kind
		vars   any
		status string
	}
	type eventRow struct {
		r      *wxcampaign.SubscriptionResult
		tmpl   string
		result string
	}
	var grants []grantRow
	var events []eventRow
	var revokes []userTemplate
	revokeSeen := map[userTemplate]bool{}
	longTermAt := map[userTemplate][]int{} // active long-term grants of the batch
	for _, r := range fresh {
		var pr *RecordResult
		if per != nil {
			pr = &per[pos[r]]
			pr.Duplicate = false
		} else {
			pr = &RecordResult{}
		}
		var vars any
		if len(r.ExtraVariableMap) > 0 {
			b, err := json.Marshal(r.ExtraVariableMap)
			if err != nil {
				return st, fmt.Errorf("encode extraVariableMap of %q: %w", r.RequestID, err)
			}
			vars = string(b)
		}
		kind := kindFunc(r, kindOf)
		for _, id := range r.AgreeTemplateIDs {
			k := kind(id)
			grants = append(grants, grantRow{r: r, tmpl: id, kind: k, vars: vars, status: StatusActive})
			if k == wxcampaign.LongTerm {
				ut := userTemplate{r.OpenID, id}
				longTermAt[ut] = append(longTermAt[ut], len(grants)-1)
				st.longTerm++
				pr.LongTerm++
			} else {
				st.credits++
				pr.Credits++
			}
		}
		for _, list := range []struct {
			ids    []string
			result string
		}{{r.RejectTemplateIDs, EventReject}, {r.BanTemplateIDs, EventBan}, {r.FilterTemplateIDs, EventFilter}} {
			for _, id := range list.ids {
				events = append(events, eventRow{r: r, tmpl: id, result: list.result})
				st.rejected++
				pr.Rejected++
				if list.result == EventFilter {
					continue
				}
				ut := userTemplate{r.OpenID, id}
				for _, i := range longTermAt[ut] {
					grants[i].status = StatusRevoked
				}
				delete(longTermAt, ut)
				if !revokeSeen[ut] {
					revokeSeen[ut] = true
					revokes = append(revokes, ut)
				}
			}
		}
	}

	// 3. Revoke stored long-term grants (before inserting this batch's).
	for _, c := range chunks(len(revokes), 200) {
		var q strings.Builder
		// lt_openid is set on long-term grants only (index grants_long_term).
		q.WriteString("UPDATE grants SET status = 'revoked' WHERE lt_openid IS NOT NULL AND status = 'active' AND (")
		args := make([]any, 0, 2*(c[1]-c[0]))
		for i, ut := range revokes[c[0]:c[1]] {
			if i > 0 {
				q.WriteString(" OR ")
			}
			q.WriteString("(lt_openid = ? AND template_id = ?)")
			args = append(args, ut.openid, ut.template)
		}
		q.WriteByte(')')
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return st, fmt.Errorf("revoke long-term grants: %w", err)
		}
	}

	// 4. Insert grants and events in multi-row statements.
	atv := db.tv(at)
	if bulk {
		var body tsv
		for _, g := range grants {
			body.str(g.r.OpenID)
			body.str(g.tmpl)
			body.str(string(g.kind))
			body.str(g.r.Scene)
			body.str(g.r.BusNo)
			if g.vars == nil {
				body.null()
			} else {
				body.str(g.vars.(string))
			}
			body.str(g.r.RequestID)
			body.str(g.status)
			if g.kind == wxcampaign.LongTerm {
				body.str(g.r.OpenID)
			} else {
				body.null()
			}
			body.end()
		}
		// granted_at is the same for the whole batch: a temporal literal in
		// SET spares parsing it on every row.
		if _, err := db.loadData(ctx, tx, "grants", []string{"openid", "template_id", "kind", "scene", "biz_no", "vars", "request_id", "status", "lt_openid"},
			"granted_at = TIMESTAMP'"+normTime(at).Format(sqliteTimeFormat)+"'", &body); err != nil {
			return st, fmt.Errorf("insert grants: %w", err)
		}
		body = tsv{}
		for _, e := range events {
			body.str(e.r.RequestID)
			body.str(e.r.OpenID)
			body.str(e.tmpl)
			body.str(e.result)
			body.str(e.r.Scene)
			body.str(e.r.BusNo)
			body.time(at)
			body.end()
		}
		if _, err := db.loadData(ctx, tx, "subscription_events", []string{"request_id", "openid", "template_id", "result", "scene", "biz_no", "at"}, "", &body); err != nil {
			return st, fmt.Errorf("insert subscription events: %w", err)
		}
		return st, nil
	}
	if _, err := insertRows(ctx, tx, "INSERT INTO grants (openid, template_id, kind, scene, biz_no, vars, granted_at, request_id, status, lt_openid)", "(?,?,?,?,?,?,?,?,?,?)", "",
		len(grants), 1000, func(a []any, i int) []any {
			g := grants[i]
			var lt any
			if g.kind == wxcampaign.LongTerm {
				lt = g.r.OpenID
			}
			return append(a, g.r.OpenID, g.tmpl, string(g.kind), g.r.Scene, g.r.BusNo, g.vars, atv, g.r.RequestID, g.status, lt)
		}); err != nil {
		return st, fmt.Errorf("insert grants: %w", err)
	}
	if _, err := insertRows(ctx, tx, "INSERT INTO subscription_events (request_id, openid, template_id, result, scene, biz_no, at)", "(?,?,?,?,?,?,?)", "",
		len(events), 1000, func(a []any, i int) []any {
			e := events[i]
			return append(a, e.r.RequestID, e.r.OpenID, e.tmpl, e.result, e.r.Scene, e.r.BusNo, atv)
		}); err != nil {
		return st, fmt.Errorf("insert subscription events: %w", err)
	}
	return st, nil
}

// ImportOptions tune Import.
type ImportOptions struct {
	// AllOrNothing imports nothing if any line is bad (one transaction).
	AllOrNothing bool
	// BatchSize is the number of lines per transaction (default 5000).
	BatchSize int
	// Now stamps granted_at (default time.Now).
	Now func() time.Time
	// KindOf says which template ids are long-term (nil: one-time unless
	// the line lists them in longTermTemplateIds).
	KindOf func(string) wxcampaign.Kind
}

// LineError is a bad line of an import.
type LineError struct {
	Line int    `json:"line"`
	Err  string `json:"error"`
}

// ImportReport counts what Import did.
type ImportReport struct {
	Lines      int         `json:"lines"`      // lines read
	Imported   int         `json:"imported"`   // results recorded
	Duplicates int         `json:"duplicates"` // results whose requestId was already recorded
	Credits    int         `json:"credits"`    // one-time credits created
	LongTerm   int         `json:"long_term"`  // long-term grants created
	Rejected   int         `json:"rejected"`   // reject, ban and filter entries recorded
	Blank      int         `json:"blank"`      // empty or whitespace-only lines
	BadCount   int         `json:"bad_count"`  // bad lines, all of them
	Bad        []LineError `json:"bad"`        // the first MaxReportedBadLines bad lines
}

// MaxReportedBadLines bounds ImportReport.Bad; BadCount counts all.
const MaxReportedBadLines = 10000

// maxLineBytes bounds one JSON line.
const maxLineBytes = 1 << 20

// ParseLine decodes one JSON Lines entry strictly: unknown fields and
// trailing data are errors, and the result must pass Validate. The common
// shape takes a fast path without reflection (parseFast); everything else
// goes through encoding/json with DisallowUnknownFields.
func ParseLine(line []byte) (*wxcampaign.SubscriptionResult, error) {
	r, ok := parseFast(line)
	if !ok {
		var err error
		if r, err = parseStrict(line); err != nil {
			return nil, err
		}
	}
	if err := r.Validate(); err != nil {
		return nil, errors.New(wxcampaign.ErrorMessage(err))
	}
	return r, nil
}

// parseStrict is encoding/json with unknown fields and trailing data as
// errors.
func parseStrict(line []byte) (*wxcampaign.SubscriptionResult, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	var r wxcampaign.SubscriptionResult
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("invalid JSON: trailing data after the object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: trailing data after the object")
	}
	return &r, nil
}

// Import records JSON Lines of SubscriptionResult from r in batches (one
// transaction per batch, multi-row INSERTs; with AllOrNothing one
// transaction for all). Bad lines (invalid JSON, unknown fields, failed
// Validate, longer than 1 MiB) are reported with their line numbers and the
// rest is imported; with AllOrNothing nothing is imported if any line is
// bad. A batch is never half-written. The returned error is for read or
// database failures; the report then counts what was committed.
func (db *DB) Import(ctx context.Context, r io.Reader, opt ImportOptions) (ImportReport, error) {
	if opt.BatchSize <= 0 {
		opt.BatchSize = 5000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	var rep ImportReport
	batches := make(chan []*wxcampaign.SubscriptionResult, 2)
	// The writer uses ctx: a read error still lets it commit the whole
	// batches it was handed. A writer failure stops the reader (rctx).
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	var g errgroup.Group
	gctx := ctx
	readFailed := false // set by the collector before it closes batches

	// Writer: one transaction per batch, or one for all.
	g.Go(func() error {
		var all *sqlx.Tx
		if opt.AllOrNothing {
			var err error
			all, err = db.w.BeginTxx(gctx, db.txOpts)
			if err != nil {
				return fmt.Errorf("store: import: begin: %w", err)
			}
			defer func() { _ = all.Rollback() }()
		}
		var total batchStats
		defer func() {
			rep.Imported, rep.Duplicates, rep.Credits, rep.LongTerm, rep.Rejected =
				total.imported, total.duplicates, total.credits, total.longTerm, total.rejected
		}()
		for b := range batches {
			var st batchStats
			var err error
			if all != nil {
				st, err = db.writeBatch(gctx, all, b, opt.Now(), opt.KindOf, nil)
				if err != nil {
					err = fmt.Errorf("store: import: %w", err)
				}
			} else {
				err = db.tx(gctx, "import", func(tx *sqlx.Tx) error {
					var err error
					st, err = db.writeBatch(gctx, tx, b, opt.Now(), opt.KindOf, nil)
					return err
				})
			}
			if err != nil {
				stopReader()
				return err
			}
			total.add(st)
		}
		if all != nil {
			if rep.BadCount > 0 || readFailed { // read after the channel closed: no race
				return nil
			}
			if err := all.Commit(); err != nil {
				return fmt.Errorf("store: import: commit: %w", err)
			}
		}
		return nil
	})

	// Reader: split the input into chunks of lines; parsers decode them in
	// parallel; the collector takes the chunks in input order, counts,
	// reports bad lines and hands over batches.
	chunksOrdered := make(chan *lineChunk, 2*importParsers())
	work := make(chan *lineChunk, 2*importParsers())
	var readErr error // set by the reader before it closes chunksOrdered
	g.Go(func() error {
		defer close(work)
		defer close(chunksOrdered)
		readErr = readChunks(rctx, r, work, chunksOrdered)
		if readErr != nil && rctx.Err() != nil && ctx.Err() == nil {
			return nil // stopped by the writer, which reports its error
		}
		return readErr
	})
	for range importParsers() {
		g.Go(func() error {
			for c := range work {
				c.parse()
			}
			return nil
		})
	}
	g.Go(func() (err error) {
		stopped := false // by rctx: the reader may still be running
		defer func() {
			readFailed = err != nil || stopped || readErr != nil
			close(batches)
		}()
		// Stopped by the writer's failure (rctx), the writer reports it;
		// stopped by the caller (ctx), ctx.Err().
		halt := func() error {
			stopped = true
			return ctx.Err()
		}
		batch := make([]*wxcampaign.SubscriptionResult, 0, opt.BatchSize)
		bad := func(line int, msg string) {
			rep.BadCount++
			if len(rep.Bad) < MaxReportedBadLines {
				rep.Bad = append(rep.Bad, LineError{Line: line, Err: msg})
			}
		}
		send := func() error {
			if len(batch) == 0 {
				return nil
			}
			if opt.AllOrNothing && rep.BadCount > 0 {
				batch = batch[:0] // nothing will be committed: stop writing
				return nil
			}
			select {
			case batches <- batch:
			case <-rctx.Done():
				return halt()
			}
			batch = make([]*wxcampaign.SubscriptionResult, 0, opt.BatchSize)
			return nil
		}
		for c := range chunksOrdered {
			select {
			case <-c.done:
			case <-rctx.Done():
				return halt()
			}
			for i := range c.n {
				rep.Lines++
				switch {
				case c.errs[i] != "":
					bad(c.first+i, c.errs[i])
				case c.res[i] == nil:
					rep.Blank++
				default:
					batch = append(batch, c.res[i])
					if len(batch) >= opt.BatchSize {
						if err := send(); err != nil {
							return err
						}
					}
				}
			}
		}
		if readErr != nil {
			return nil // the reader reports it; the partial batch is not written
		}
		return send()
	})
	err := g.Wait()
	if opt.AllOrNothing && (err != nil || rep.BadCount > 0) {
		rep.Imported, rep.Duplicates, rep.Credits, rep.LongTerm, rep.Rejected = 0, 0, 0, 0, 0
	}
	return rep, err
}

// importParsers is the number of goroutines decoding JSON lines.
func importParsers() int { return max(1, runtime.GOMAXPROCS(0)) }

// linesPerChunk is the unit of work of the import's parsers.
const linesPerChunk = 256

// lineChunk is consecutive input lines and, once done is closed, their
// parsed results: per line a result, or an error text, or neither (blank).
type lineChunk struct {
	first    int    // line number of the first line
	n        int    // lines
	buf      []byte // the lines' bytes
	ends     []int  // end offset of each line in buf
	overflow []bool // line longer than maxLineBytes (not kept in buf)
	res      []*wxcampaign.SubscriptionResult
	errs     []string
	done     chan struct{}
}

func (c *lineChunk) add(line []byte, overflow bool) {
	if !overflow {
		c.buf = append(c.buf, line...)
	}
	c.ends = append(c.ends, len(c.buf))
	c.overflow = append(c.overflow, overflow)
	c.n++
}

// parse decodes every line of c and closes done.
func (c *lineChunk) parse() {
	c.res = make([]*wxcampaign.SubscriptionResult, c.n)
	c.errs = make([]string, c.n)
	start := 0
	for i := range c.n {
		line := c.buf[start:c.ends[i]]
		start = c.ends[i]
		switch {
		case c.overflow[i]:
			c.errs[i] = "line longer than 1 MiB"
		case len(bytes.TrimSpace(line)) == 0:
		default:
			res, err := ParseLine(line)
			if err != nil {
				c.errs[i] = err.Error()
			} else {
				c.res[i] = res
			}
		}
	}
	close(c.done)
}

// readChunks splits r into chunks of lines and hands each to the parsers
// (work) and, in input order, to the collector (ordered). It returns a
// read error with the line number where it happened.
func readChunks(ctx context.Context, r io.Reader, work, ordered chan<- *lineChunk) error {
	br := bufio.NewReaderSize(r, 256<<10)
	lines := 0
	newChunk := func() *lineChunk {
		return &lineChunk{first: lines + 1, buf: make([]byte, 0, 64<<10), done: make(chan struct{})}
	}
	c := newChunk()
	flush := func() error {
		if c.n == 0 {
			return nil
		}
		for _, ch := range []chan<- *lineChunk{ordered, work} {
			select {
			case ch <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		c = newChunk()
		return nil
	}
	var long []byte
	overflow := false
	for {
		part, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(long)+len(part) <= maxLineBytes+1 {
				long = append(long, part...)
			} else {
				overflow = true
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			if ferr := flush(); ferr != nil {
				return ferr
			}
			return fmt.Errorf("store: import: read line %d: %w", lines+1, err)
		}
		if len(part) == 0 && len(long) == 0 && !overflow && errors.Is(err, io.EOF) {
			break
		}
		line := part
		if len(long) > 0 || overflow {
			line = append(long, part...)
			long = long[:0]
		}
		if len(line) > maxLineBytes+1 {
			overflow = true
		}
		lines++
		c.add(line, overflow)
		overflow = false
		if c.n >= linesPerChunk {
			if err := flush(); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
	}
	return flush()
}
