package engine

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

func parseSpec(t *testing.T, spec string, loc *time.Location) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok && loc != nil {
		ss.Location = loc
	}
	return s
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNextTick(t *testing.T) {
	sh := zone(t, "Asia/Shanghai")
	cases := []struct {
		spec string
		now  time.Time
		want time.Time
	}{
		{"@every 5m", time.Date(2026, 11, 22, 10, 3, 17, 0, time.UTC), time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)},
		{"@every 5m", time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC), time.Date(2026, 11, 22, 10, 10, 0, 0, time.UTC)},
		{"@every 2s", time.Date(2026, 11, 22, 10, 0, 1, 500, time.UTC), time.Date(2026, 11, 22, 10, 0, 2, 0, time.UTC)},
		{"*/10 * * * *", time.Date(2026, 11, 22, 10, 3, 0, 0, sh), time.Date(2026, 11, 22, 10, 10, 0, 0, sh)},
		{"CRON_TZ=Asia/Shanghai 0 9 * * *", time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, sh)},
	}
	for _, c := range cases {
		if got := nextTick(parseSpec(t, c.spec, nil), c.now); !got.Equal(c.want) {
			t.Errorf("%s after %s = %s, want %s", c.spec, c.now, got, c.want)
		}
	}
	// Two replicas starting at different moments agree on the occurrence.
	s := parseSpec(t, "@every 1m", nil)
	a := nextTick(s, time.Date(2026, 1, 1, 0, 0, 12, 0, time.UTC))
	b := nextTick(s, time.Date(2026, 1, 1, 0, 0, 47, 0, time.UTC))
	if !a.Equal(b) {
		t.Errorf("replicas disagree: %s vs %s", a, b)
	}
}

// TestNextTickDST: in America/New_York, 2026-03-08 02:00 EST jumps to
// 03:00 EDT and 2026-11-01 02:00 EDT falls back to 01:00 EST. Each local
// wall-clock occurrence runs once: a skipped time at the first instant after
// the gap, a repeated time at its first instant.
func TestNextTickDST(t *testing.T) {
	ny := zone(t, "America/New_York")
	edt := time.FixedZone("EDT", -4*3600)
	est := time.FixedZone("EST", -5*3600)
	cases := []struct {
		name string
		spec string
		now  time.Time
		want time.Time
	}{
		{"gap: 02:30 runs at 03:00 EDT", "30 2 * * *", time.Date(2026, 3, 7, 12, 0, 0, 0, ny), time.Date(2026, 3, 8, 3, 0, 0, 0, edt)},
		{"gap: from just before it", "30 2 * * *", time.Date(2026, 3, 8, 1, 59, 59, 0, est), time.Date(2026, 3, 8, 3, 0, 0, 0, edt)},
		{"gap: the next day is normal", "30 2 * * *", time.Date(2026, 3, 8, 3, 0, 0, 0, edt), time.Date(2026, 3, 9, 2, 30, 0, 0, edt)},
		{"gap: 02:00 folds onto 03:00", "0 2,3 * * *", time.Date(2026, 3, 8, 1, 0, 0, 0, est), time.Date(2026, 3, 8, 3, 0, 0, 0, edt)},
		{"gap: 03:00 after the folded 02:00 is the same run", "0 2,3 * * *", time.Date(2026, 3, 8, 3, 0, 0, 0, edt), time.Date(2026, 3, 9, 2, 0, 0, 0, edt)},
		{"repeat: 01:30 runs at the first (EDT)", "30 1 * * *", time.Date(2026, 10, 31, 12, 0, 0, 0, ny), time.Date(2026, 11, 1, 1, 30, 0, 0, edt)},
		{"repeat: not again at 01:30 EST", "30 1 * * *", time.Date(2026, 11, 1, 1, 30, 0, 0, edt), time.Date(2026, 11, 2, 1, 30, 0, 0, est)},
		{"repeat: started in the second hour", "30 1 * * *", time.Date(2026, 11, 1, 1, 10, 0, 0, est), time.Date(2026, 11, 2, 1, 30, 0, 0, est)},
		{"repeat: 01:00 EST itself is not a new occurrence", "0 * * * *", time.Date(2026, 11, 1, 1, 0, 0, 0, edt), time.Date(2026, 11, 1, 2, 0, 0, 0, est)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := nextTick(parseSpec(t, c.spec, ny), c.now.In(ny))
			if !got.Equal(c.want) {
				t.Errorf("%s after %s = %s, want %s", c.spec, c.now, got.In(ny), c.want)
			}
		})
	}

	// Over each transition day, every wall-clock occurrence runs once: no
	// instant twice, none skipped.
	count := func(spec string, from, to time.Time) (runs []time.Time) {
		s := parseSpec(t, spec, ny)
		for at := nextTick(s, from); at.Before(to); at = nextTick(s, at) {
			if len(runs) > 0 && !at.After(runs[len(runs)-1]) {
				t.Fatalf("%s: %s after %s", spec, at, runs[len(runs)-1])
			}
			runs = append(runs, at)
		}
		return runs
	}
	day := func(m time.Month, d int) (time.Time, time.Time) {
		return time.Date(2026, m, d, 0, 0, 0, 0, ny).Add(-time.Nanosecond), time.Date(2026, m, d+1, 0, 0, 0, 0, ny)
	}
	for _, tt := range []struct {
		spec  string
		month time.Month
		day   int
		want  int
	}{
		{"30 2 * * *", time.March, 8, 1},    // robfig/cron: 0
		{"30 1 * * *", time.November, 1, 1}, // robfig/cron: 2
		{"30 2 * * *", time.March, 9, 1},
		{"*/30 * * * *", time.March, 8, 46}, // 48 wall times; 02:00 and 02:30 fold onto 03:00
		{"*/30 * * * *", time.November, 1, 48},
		{"0 * * * *", time.November, 1, 24},
	} {
		from, to := day(tt.month, tt.day)
		if got := count(tt.spec, from, to); len(got) != tt.want {
			t.Errorf("%s on %s %d: %d runs, want %d: %v", tt.spec, tt.month, tt.day, len(got), tt.want, got)
		}
	}
}

func TestDSTNotes(t *testing.T) {
	ny := zone(t, "America/New_York")
	from, to := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		spec string
		loc  *time.Location
		want []string
	}{
		{"30 2 * * *", ny, []string{"2026-03-08 02:30 does not exist (clocks go forward): it runs at 03:00 EDT"}},
		{"30 1 * * *", ny, []string{"2026-11-01 01:30 happens twice (clocks go back): it runs once, at the first (01:30 EDT)"}},
		{"*/15 * * * *", ny, []string{
			"2026-03-08 02:00 does not exist (clocks go forward): it runs at 03:00 EDT",
			"2026-11-01 01:00 happens twice (clocks go back): it runs once, at the first (01:00 EDT)"}},
		{"0 12 * * *", ny, nil},
		{"30 2 * * 1", ny, nil}, // Mondays only: the Sunday jump misses it
		{"@every 1h", ny, nil},
		{"30 2 * * *", zone(t, "Asia/Shanghai"), nil},
		{"30 2 * * *", time.UTC, nil},
	}
	for _, c := range cases {
		notes := DSTNotes(parseSpec(t, c.spec, c.loc), c.loc, from, to)
		var got []string
		for _, n := range notes {
			got = append(got, n.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s in %s:\n got  %q\n want %q", c.spec, c.loc, got, c.want)
		}
	}
}

// fakeClock is the engine's injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// schedWorld is a store, the simulator and a clock shared by the
// schedulers ("daemons") of a test.
type schedWorld struct {
	t     *testing.T
	ctx   context.Context
	db    *store.DB
	sim   *wxsim.Server
	url   string
	clock *fakeClock
}

const (
	schedAppID  = "wxsched000000001"
	schedSecret = "sched-secret"
)

func newSchedWorld(t *testing.T, db *store.DB, cs ...*campaigns.Campaign) *schedWorld {
	t.Helper()
	var tpls []wxsim.TemplateDef
	for _, c := range cs {
		tpls = append(tpls, wxsim.TemplateDef{ID: c.Template.ID, Title: c.Name, Kind: string(c.Template.Kind), Keys: []string{"thing1"}})
	}
	sim, err := wxsim.New(wxsim.Config{AppID: schedAppID, Secret: schedSecret, Templates: tpls})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	w := &schedWorld{t: t, ctx: ctx, db: db, sim: sim, url: srv.URL, clock: &fakeClock{}}
	// One long-term grant per campaign: every run sends it one message.
	for _, c := range cs {
		if _, err := db.RecordSubscription(ctx, wx.SubscriptionResult{OpenID: "o-" + c.Name, Scene: "s",
			AgreeTemplateIDs: []string{c.Template.ID}, LongTermTemplateIDs: []string{c.Template.ID}, RequestID: "r-" + c.Name},
			time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// daemon starts a scheduler of its own engine (a process) with cs.
func (w *schedWorld) daemon(holder string, cs ...*campaigns.Campaign) *Scheduler {
	w.t.Helper()
	log := logrus.New()
	log.SetOutput(io.Discard)
	client, err := wechat.New(wechat.Config{BaseURL: w.url, AppID: schedAppID, Secret: schedSecret, Tokens: w.db, Holder: holder, Logger: log})
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := New(Config{Holder: holder, AppID: schedAppID, Now: w.clock.Now, Logger: log, Lease: 30 * time.Second, RetryBase: time.Millisecond}, w.db, w.db.Facts(), clientSender{client})
	if err != nil {
		w.t.Fatal(err)
	}
	s := NewScheduler(e)
	s.Start(w.ctx)
	s.Apply(cs)
	w.t.Cleanup(s.Stop)
	return s
}

// occurrences returns the occurrences campaign ran, oldest first, waiting
// until the runs in progress are done.
func (w *schedWorld) occurrences(campaign string) []time.Time {
	w.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		runs, err := w.db.ListRuns(w.ctx, campaign, 100)
		if err != nil {
			w.t.Fatal(err)
		}
		done := true
		var out []time.Time
		for i := len(runs) - 1; i >= 0; i-- {
			done = done && runs[i].Status == store.RunDone
			out = append(out, runs[i].Occurrence)
		}
		if done || time.Now().After(deadline) {
			return out
		}
	}
}

// waitRuns waits until campaign has n done runs.
func (w *schedWorld) waitRuns(campaign string, n int) []time.Time {
	w.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := w.occurrences(campaign)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
	}
}

func (w *schedWorld) messages(tpl string) int {
	n := 0
	for _, m := range w.sim.Messages() {
		if m.TemplateID == tpl {
			n++
		}
	}
	return n
}

func schedCampaign(t *testing.T, name, schedule, tz, extra string) *campaigns.Campaign {
	t.Helper()
	src := fmt.Sprintf(`name: %s
schedule: %q
timezone: %s
template:
  id: tpl-%s
  kind: long_term
repeat: every_run
when: "true"
data:
  thing1: '"hello"'
%s`, name, schedule, tz, name, extra)
	c, err := campaigns.Parse(name+".yaml", []byte(src), campaigns.Defaults{})
	if err != nil {
		t.Fatalf("%v\n%s", err, src)
	}
	return c
}

// settle is how long a test waits to see that nothing runs.
const settle = 400 * time.Millisecond

// TestSchedulerMisfire: a daemon stopped across a tick and restarted inside
// misfire_window runs the latest missed occurrence once, even with two
// replicas starting together; restarted outside the window it runs none;
// with misfire: skip none; a campaign that never ran misses nothing.
func TestSchedulerMisfire(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		sh := zone(t, "Asia/Shanghai")
		day := func(d, h, m int) time.Time { return time.Date(2024, 6, d, h, m, 0, 0, sh) }
		daily := schedCampaign(t, "daily", "0 9 * * *", "Asia/Shanghai", "")
		skip := schedCampaign(t, "daily-skip", "0 9 * * *", "Asia/Shanghai", "misfire: skip\n")
		fresh := schedCampaign(t, "fresh", "0 9 * * *", "Asia/Shanghai", "")
		w := newSchedWorld(t, db, daily, skip, fresh)

		// Day 3: the daemon runs the 09:00 tick.
		w.clock.Set(day(3, 9, 0).Add(-150 * time.Millisecond))
		d := w.daemon("a", daily, skip)
		w.waitRuns(daily.Name, 1)
		w.waitRuns(skip.Name, 1)
		d.Stop()

		// Down across day 4's 09:00; back at 09:40, two replicas at once:
		// one run of the missed occurrence between them.
		w.clock.Set(day(4, 9, 40))
		w.daemon("b", daily, skip, fresh)
		w.daemon("c", daily, skip, fresh)
		w.waitRuns(daily.Name, 2)
		time.Sleep(settle)
		got := w.occurrences(daily.Name)
		if len(got) != 2 || !got[1].Equal(day(4, 9, 0)) {
			t.Errorf("run_once restarted 40m late: runs %v, want day 3 and day 4 09:00", got)
		}
		if n := w.messages(daily.Template.ID); n != 2 {
			t.Errorf("run_once: %d messages, want 2 (one per occurrence)", n)
		}
		if got := w.occurrences(skip.Name); len(got) != 1 {
			t.Errorf("misfire skip: runs %v, want only day 3", got)
		}
		if got := w.occurrences(fresh.Name); len(got) != 0 {
			t.Errorf("a campaign that never ran ran a missed occurrence: %v", got)
		}

		// Down across day 5's 09:00; back at 10:30, 90m late: outside
		// the default 1h window, nothing runs.
		w.clock.Set(day(5, 10, 30))
		w.daemon("d", daily)
		time.Sleep(settle)
		if got := w.occurrences(daily.Name); len(got) != 2 {
			t.Errorf("restarted outside the window: runs %v, want 2", got)
		}

		// A wider window catches it.
		wide := schedCampaign(t, "daily", "0 9 * * *", "Asia/Shanghai", "misfire_window: 2h\n")
		w.daemon("e", wide)
		got = w.waitRuns(daily.Name, 3)
		if len(got) != 3 || !got[2].Equal(day(5, 9, 0)) {
			t.Errorf("misfire_window 2h, 90m late: runs %v, want day 5 09:00 last", got)
		}
		// Restarting again runs nothing more: the occurrence ran.
		w.daemon("f", wide)
		time.Sleep(settle)
		if got := w.occurrences(daily.Name); len(got) != 3 {
			t.Errorf("second restart: runs %v, want 3", got)
		}
		if n := w.messages(daily.Template.ID); n != 3 {
			t.Errorf("%d messages, want 3", n)
		}
	})
}

// TestSchedulerDST runs the scheduler over both transitions of
// America/New_York: "30 2 * * *" runs on the spring-forward day (at 03:00
// EDT), "30 1 * * *" runs once on the fall-back day, also when a daemon
// (re)starts during the repeated hour.
func TestSchedulerDST(t *testing.T) {
	edt := time.FixedZone("EDT", -4*3600)
	est := time.FixedZone("EST", -5*3600)
	gap := schedCampaign(t, "gap", "30 2 * * *", "America/New_York", "")
	fold := schedCampaign(t, "fold", "30 1 * * *", "America/New_York", "")
	w := newSchedWorld(t, storetest.Open(t, storetest.SQLite(t)), gap, fold)

	w.clock.Set(time.Date(2026, 3, 8, 1, 59, 59, 850_000_000, est))
	w.daemon("a", gap)
	if got := w.waitRuns(gap.Name, 1); len(got) != 1 || !got[0].Equal(time.Date(2026, 3, 8, 3, 0, 0, 0, edt)) {
		t.Errorf("spring forward: runs %v, want one at 03:00 EDT", got)
	}

	w.clock.Set(time.Date(2026, 11, 1, 1, 29, 59, 850_000_000, edt))
	w.daemon("b", fold)
	w.waitRuns(fold.Name, 1)
	// An hour later the wall clock shows 01:29:59 again; a daemon started
	// now neither schedules 01:30 EST nor takes 01:30 EDT as missed.
	w.clock.Set(time.Date(2026, 11, 1, 1, 29, 59, 850_000_000, est))
	w.daemon("c", fold)
	time.Sleep(settle)
	if got := w.occurrences(fold.Name); len(got) != 1 || !got[0].Equal(time.Date(2026, 11, 1, 1, 30, 0, 0, edt)) {
		t.Errorf("fall back: runs %v, want one at 01:30 EDT", got)
	}
	if n := w.messages(fold.Template.ID); n != 1 {
		t.Errorf("fall back: %d messages, want 1", n)
	}
}

// TestMissedInLoop: while the scheduler runs, a run that outlasts the next
// ticks leaves them missed; the policy runs the latest of them once, within
// the window.
func TestMissedInLoop(t *testing.T) {
	sh := zone(t, "Asia/Shanghai")
	tm := func(h, m int) time.Time { return time.Date(2024, 6, 3, h, m, 0, 0, sh) }
	s := &Scheduler{}
	cases := []struct {
		name      string
		extra     string
		last, now time.Time
		want      time.Time
	}{
		{"nothing missed", "", tm(10, 0), tm(10, 5), time.Time{}},
		{"two ticks missed: the latest", "", tm(10, 0), tm(10, 25), tm(10, 20)},
		{"the tick at now", "", tm(10, 0), tm(10, 30), tm(10, 30)},
		{"skip", "misfire: skip\n", tm(10, 0), tm(10, 25), time.Time{}},
		{"inside a 15m window", "misfire_window: 15m\n", tm(10, 0), tm(10, 59), tm(10, 50)},
		{"outside a 5m window", "misfire_window: 5m\n", tm(10, 0), tm(10, 58), time.Time{}},
	}
	for _, c := range cases {
		camp := schedCampaign(t, "loop", "*/10 * * * *", "Asia/Shanghai", c.extra)
		if got := s.missed(context.Background(), camp, c.last, c.now); !got.Equal(c.want) {
			t.Errorf("%s: missed = %v, want %v", c.name, got, c.want)
		}
	}
}

// clientSender adapts the WeChat client for this internal test (package
// engine cannot import wechat/wxsender, which imports engine). The
// scheduler tests expect no send to fail, so errors are passed on as they
// are.
type clientSender struct{ c *wechat.Client }

func (s clientSender) Send(ctx context.Context, m Message) (int64, error) {
	return s.c.Send(ctx, wechat.Message{ToUser: m.To, TemplateID: m.Template, Page: m.Page, Data: m.Data,
		State: m.Options["state"], Lang: m.Options["lang"]})
}
