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
	"sync"
	"time"

	"github.com/jmoiron/sqlx"
	"golang.org/x/sync/errgroup"

	"github.com/wxcampaign/wxcampaign"
)

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

	// Writer: one transaction for all, or one per batch with up to
	// importWriters batches written at once (writeBatches).
	g.Go(func() error {
		var total batchStats
		defer func() {
			rep.Imported, rep.Duplicates, rep.Credits, rep.LongTerm, rep.Rejected =
				total.imported, total.duplicates, total.credits, total.longTerm, total.rejected
		}()
		if !opt.AllOrNothing {
			var err error
			total, err = db.writeBatches(gctx, batches, opt, stopReader)
			return err
		}
		all, err := db.w.BeginTxx(gctx, db.txOpts)
		if err != nil {
			stopReader()
			return fmt.Errorf("store: import: begin: %w", err)
		}
		defer func() { _ = all.Rollback() }()
		for b := range batches {
			st, err := db.writeBatch(gctx, all, b, opt.Now(), opt.KindOf, nil)
			if err != nil {
				stopReader()
				return fmt.Errorf("store: import: %w", err)
			}
			total.add(st)
		}
		if rep.BadCount > 0 || readFailed { // read after the channel closed: no race
			return nil
		}
		if err := all.Commit(); err != nil {
			return fmt.Errorf("store: import: commit: %w", err)
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

// importWriters is how many batches an import writes at once on MySQL
// (each in its own transaction and connection): the server works on one
// batch while the client sends the next. SQLite has one writer.
const importWriters = 2

// batchJob is one batch of writeBatches.
type batchJob struct {
	rs   []*wxcampaign.SubscriptionResult
	ids  map[string]struct{} // its request ids
	deps []*batchJob         // batches that must commit first
	done chan struct{}       // closed when written or given up
	ok   bool                // committed; read after done
}

// writeBatches writes the batches, each in its own transaction, up to
// importWriters at once, with the result of writing them one after the
// other in order: a batch waits for every earlier batch still in flight
// that shares a request id with it (the first line of a request id wins),
// and a batch with long-term grants or rejects waits for the previous such
// batch (a reject revokes the long-term grants before it, not after).
// Batches of one-time credits only, the common import, go in parallel. On
// the first error no further batch starts and stop is called (the rest of
// the channel is drained); it returns what was committed.
func (db *DB) writeBatches(ctx context.Context, batches <-chan []*wxcampaign.SubscriptionResult, opt ImportOptions, stop func()) (batchStats, error) {
	writers := importWriters
	if db.sqlite() {
		writers = 1
	}
	var (
		mu       sync.Mutex
		total    batchStats
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	sem := make(chan struct{}, writers)
	var inFlight []*batchJob // dispatched, maybe not done
	var lastOrdered *batchJob
	for b := range batches {
		if failed() {
			continue // drain: the collector must not block
		}
		job := &batchJob{rs: b, ids: make(map[string]struct{}, len(b)), done: make(chan struct{})}
		for _, r := range b {
			job.ids[r.RequestID] = struct{}{}
		}
		live := inFlight[:0]
		for _, j := range inFlight {
			select {
			case <-j.done:
				continue
			default:
			}
			live = append(live, j)
			if sharesID(j.ids, b) {
				job.deps = append(job.deps, j)
			}
		}
		inFlight = append(live, job)
		if orderedBatch(b, opt.KindOf) {
			if lastOrdered != nil {
				job.deps = append(job.deps, lastOrdered)
			}
			lastOrdered = job
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			defer close(job.done)
			for _, d := range job.deps {
				<-d.done
				if !d.ok {
					return
				}
			}
			if failed() {
				return
			}
			var st batchStats
			err := db.tx(ctx, "import", func(tx *sqlx.Tx) error {
				var err error
				st, err = db.writeBatch(ctx, tx, job.rs, opt.Now(), opt.KindOf, nil)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					stop()
				}
				return
			}
			job.ok = true
			total.add(st)
		}()
	}
	wg.Wait()
	return total, firstErr
}

// sharesID reports whether a result of rs has a request id in ids.
func sharesID(ids map[string]struct{}, rs []*wxcampaign.SubscriptionResult) bool {
	for _, r := range rs {
		if _, ok := ids[r.RequestID]; ok {
			return true
		}
	}
	return false
}

// orderedBatch reports whether rs has a long-term grant or a reject or
// ban (which revokes long-term grants): such batches are written in order.
func orderedBatch(rs []*wxcampaign.SubscriptionResult, kindOf func(string) wxcampaign.Kind) bool {
	for _, r := range rs {
		if len(r.RejectTemplateIDs) > 0 || len(r.BanTemplateIDs) > 0 || len(r.LongTermTemplateIDs) > 0 {
			return true
		}
		if kindOf != nil {
			for _, id := range r.AgreeTemplateIDs {
				if kindOf(id) == wxcampaign.LongTerm {
					return true
				}
			}
		}
	}
	return false
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
