package engine_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// pagesWorld is a world whose engine sends to a simulator that knows only
// the page pages/ok (any other page is 41030).
func pagesWorld(t *testing.T, nc storetest.NamedConfig, page string) (*world, *wxsim.Server, *engine.Engine, *campaigns.Campaign) {
	c := parseCampaign(t, fmt.Sprintf(`name: pages
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: tplPages
  kind: one_time
  page: '%s'
when: "true"
data:
  thing1: '"新品上架通知"'
per_user_per_run: 0
batch_size: 10
`, page))
	w := newWorld(t, nc, simTemplate(c))
	sim, err := wxsim.New(wxsim.Config{AppID: e2eAppID, Secret: e2eSecret, Templates: []wxsim.TemplateDef{simTemplate(c)}, Pages: []string{"pages/ok"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	client, err := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: e2eAppID, Secret: e2eSecret, Tokens: w.db,
		Holder: "pages", Logger: w.log, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Holder: "pages", AppID: e2eAppID, RetryBase: time.Millisecond, Concurrency: 8,
		Lease: 30 * time.Second, Now: w.clock.Now, Logger: w.log}, w.db, w.db.Facts(), wxsender.New(client))
	if err != nil {
		t.Fatal(err)
	}
	return w, sim, eng, c
}

// TestPageFromGrantData: a page built from one grant's data that WeChat
// refuses (41030) fails that grant only, the run goes on; the grant fails
// again in the next runs and, after three runs in a row, is set aside
// (skipped, set_aside) without another request. A constant page WeChat
// refuses is the campaign's fault: the run stops.
func TestPageFromGrantData(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		w, sim, eng, c := pagesWorld(t, nc, `"pages/" + grant.biz_no`)
		bad := w.subscribe("oBad", c.Template.ID, "gone", nil, false)
		sim.AddCredits("oBad", c.Template.ID, 5)
		for i := range 6 {
			u := fmt.Sprintf("oOK%d", i)
			w.subscribe(u, c.Template.ID, "ok", nil, false)
			sim.AddCredits(u, c.Template.ID, 1)
		}
		for run := range 4 {
			when := at(3, 10, 5*run)
			w.clock.Set(when)
			r := runWith(w.ctx, eng, c, engine.Options{At: when})
			if r.err != nil || r.sum.Status != "done" {
				t.Fatalf("run %d: %v, status %q", run, r.err, r.sum.Status)
			}
			rep, _ := r.report(bad)
			switch {
			case run < 3 && (rep.Outcome != wx.Failed || rep.Reason != wx.ReasonWeChat41030):
				t.Errorf("run %d: grant with a bad page: %s %s, want failed wechat_41030", run, rep.Outcome, rep.Why())
			case run == 3 && (rep.Outcome != wx.Skipped || rep.Reason != wx.ReasonSetAside || !strings.Contains(rep.Detail, "3 runs in a row: wechat_41030")):
				t.Errorf("run %d: grant with a bad page: %s %s, want skipped set_aside after 3 runs", run, rep.Outcome, rep.Why())
			}
			if run == 0 && r.sum.Counts[wx.Sent] != 6 {
				t.Errorf("run 0 sent %d, want the 6 good grants", r.sum.Counts[wx.Sent])
			}
		}
		if n := sim.Stats().Errors[41030]; n != 3 {
			t.Errorf("41030 answers = %d, want 3 (none after the grant was set aside)", n)
		}
	})
}

// TestConstantPageStops: a constant page that is not in the live version
// fails every send the same way: the campaign is misconfigured and the run
// stops instead of failing every grant.
func TestConstantPageStops(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		w, sim, eng, c := pagesWorld(t, nc, `"pages/missing"`)
		for i := range 40 {
			u := fmt.Sprintf("oU%02d", i)
			w.subscribe(u, c.Template.ID, "x", nil, false)
			sim.AddCredits(u, c.Template.ID, 1)
		}
		w.clock.Set(at(3, 10, 0))
		r := runWith(w.ctx, eng, c, engine.Options{At: at(3, 10, 0)})
		var se *engine.StopError
		if !errors.As(r.err, &se) || r.sum.Status != "stopped" {
			t.Fatalf("run: %v, status %q; want stopped", r.err, r.sum.Status)
		}
		if n := sim.Stats().Errors[41030]; n == 0 || n >= 40 {
			t.Errorf("41030 answers = %d, want a few before the stop", n)
		}
		if got := len(w.available(c.Template.ID)); got != 40 {
			t.Errorf("available after the stop = %d, want all 40", got)
		}
	})
}

// TestMarkFailureInterrupts: when the store cannot mark sends in flight,
// nothing is sent, the run is interrupted (not stopped: the occurrence
// resumes from its checkpoint) and every grant stays available.
func TestMarkFailureInterrupts(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		c := simpleCampaign(t, "news", "tplNews", "batch_size: 5\n")
		w := newWorld(t, nc, simTemplate(c))
		for i := range 12 {
			w.subscribe(fmt.Sprintf("oM%02d", i), c.Template.ID, "", nil, true)
		}
		hs := &hookStore{DB: w.db, beginErr: errors.New("disk full")}
		w.clock.Set(at(3, 10, 0))
		r := runWith(w.ctx, w.newEngineOn("e2e-markfail", hs), c, engine.Options{At: at(3, 10, 0)})
		if r.err == nil || !strings.Contains(r.err.Error(), "disk full") || r.sum.Status != "interrupted" {
			t.Fatalf("run: %v, status %q; want interrupted by the store's error", r.err, r.sum.Status)
		}
		if n := len(w.sim.Messages()); n != 0 {
			t.Errorf("%d messages sent without a mark", n)
		}
		if got := len(w.available(c.Template.ID)); got != 12 {
			t.Errorf("available = %d, want 12", got)
		}
		// The occurrence resumes at once with a working store.
		r = w.run(w.newEngine("e2e-resume"), c, at(3, 10, 0), false)
		if r.err != nil || r.sum.Counts[wx.Sent] != 12 {
			t.Errorf("resumed run: %v, %+v", r.err, r.sum)
		}
	})
}
