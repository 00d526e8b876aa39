package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// Options configure a demo run.
type Options struct {
	Store     store.Config
	Campaigns []*campaigns.Campaign // the example campaigns
	At        time.Time             // the demo's "now"; zero = today 10:30 in the campaigns' zone
	Size      Size
	Out       io.Writer
	Logger    logrus.FieldLogger
}

// Result is what the demo did, for tests.
type Result struct {
	Previews, Sends map[string]engine.Summary
	Delivered       []wxsim.Delivered
	Eligible        map[string]int
}

const (
	demoAppID  = "wxdemo0000000001"
	demoSecret = "demo-secret-not-for-production"
)

// Run seeds the store, starts the simulator on a free loopback port, then
// previews and sends each campaign and prints what the simulator received.
func Run(ctx context.Context, o Options) (*Result, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	log := o.Logger
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	if len(o.Campaigns) == 0 {
		return nil, errors.New("demo: no campaigns")
	}
	tpl, err := templatesOf(o.Campaigns)
	if err != nil {
		return nil, err
	}
	loc := o.Campaigns[0].Location
	at := o.At
	if at.IsZero() {
		n := time.Now().In(loc)
		at = time.Date(n.Year(), n.Month(), n.Day(), 10, 30, 0, 0, loc)
	}
	sz := o.Size
	if sz.Products == 0 {
		sz = DefaultSize
	}

	db, err := store.Open(ctx, o.Store)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "== seeding demo data (demo time %s)\n", at.Format("2006-01-02 15:04 MST"))
	data, err := Seed(ctx, db.SQLX(), at, tpl, sz)
	if err != nil {
		return nil, err
	}
	kinds := map[string]wx.Kind{}
	for _, c := range o.Campaigns {
		kinds[c.Template.ID] = c.Template.Kind
	}
	rep, err := db.Import(ctx, bytes.NewReader(data.JSONL()), store.ImportOptions{KindOf: func(id string) wx.Kind {
		if k, ok := kinds[id]; ok {
			return k
		}
		return wx.OneTime
	}})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "imported %d subscription results: %d one-time credits, %d bad lines\n", rep.Imported, rep.Credits, len(rep.Bad))

	// The simulator, in process, knows the campaigns' templates and the
	// users' one-time credits, like WeChat would.
	sim, err := wxsim.New(wxsim.Config{AppID: demoAppID, Secret: demoSecret, Templates: simTemplates(o.Campaigns), LooseCredits: false})
	if err != nil {
		return nil, err
	}
	for _, c := range data.Credits {
		sim.AddCredits(c.OpenID, c.TemplateID, 1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: sim.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "WeChat simulator listening on %s\n", base)

	client, err := wechat.New(wechat.Config{BaseURL: base, AppID: demoAppID, Secret: demoSecret, Tokens: db, Logger: log})
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(engine.Config{AppID: demoAppID, Concurrency: 32, RetryBase: 50 * time.Millisecond, Logger: log}, db, db.Facts(), wxsender.New(client))
	if err != nil {
		return nil, err
	}
	res := &Result{Previews: map[string]engine.Summary{}, Sends: map[string]engine.Summary{}, Eligible: data.Eligible}
	for _, c := range o.Campaigns {
		fmt.Fprintf(out, "\n== %s (%s): %s\n", c.Name, c.Template.Kind, c.Description)
		p, err := eng.Run(ctx, c, engine.Options{At: at, DryRun: true})
		if err != nil {
			return nil, fmt.Errorf("preview %s: %w", c.Name, err)
		}
		res.Previews[c.Name] = p
		fmt.Fprintf(out, "preview: %s\n", counts(p))
		s, err := eng.Run(ctx, c, engine.Options{At: at})
		if err != nil {
			return nil, fmt.Errorf("send %s: %w", c.Name, err)
		}
		res.Sends[c.Name] = s
		fmt.Fprintf(out, "send:    %s  (%s, %.0f messages/s)\n", counts(s), s.Duration.Round(time.Millisecond), s.PerSecond)
		tw := tabwriter.NewWriter(out, 2, 4, 2, ' ', 0)
		for _, rc := range s.SortedReasons() {
			fmt.Fprintf(tw, "  %d\t%s\n", rc.Count, rc.Reason)
		}
		tw.Flush()
	}
	res.Delivered = sim.Messages()
	printDelivered(out, res.Delivered, o.Campaigns)
	return res, nil
}

func counts(s engine.Summary) string {
	var parts []string
	for _, o := range []wx.Outcome{wx.Sent, wx.Skipped, wx.Deferred, wx.Failed, wx.Unknown} {
		if n := s.Counts[o]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o, n))
		}
	}
	if len(parts) == 0 {
		return "no grants"
	}
	return strings.Join(parts, ", ")
}

func templatesOf(cs []*campaigns.Campaign) (Templates, error) {
	var t Templates
	for _, c := range cs {
		switch c.Name {
		case "price-drop":
			t.PriceDrop = c.Template.ID
		case "activity-launched":
			t.Activity = c.Template.ID
		case "order-unpaid":
			t.Order = c.Template.ID
		case "appointment-reminder":
			t.Appointment = c.Template.ID
		}
	}
	if t.PriceDrop == "" || t.Activity == "" || t.Order == "" || t.Appointment == "" {
		return t, errors.New("demo: the campaigns must include price-drop, activity-launched, order-unpaid and appointment-reminder (configs/campaigns)")
	}
	return t, nil
}

// simTemplates describes the campaigns' templates to the simulator: the
// keys each campaign renders are the template's keys.
func simTemplates(cs []*campaigns.Campaign) []wxsim.TemplateDef {
	var defs []wxsim.TemplateDef
	for _, c := range cs {
		d := wxsim.TemplateDef{ID: c.Template.ID, Title: c.Description, Kind: string(c.Template.Kind), Enums: c.Enums}
		for _, f := range c.Data {
			d.Keys = append(d.Keys, f.Key)
		}
		defs = append(defs, d)
	}
	return defs
}

func printDelivered(out io.Writer, ms []wxsim.Delivered, cs []*campaigns.Campaign) {
	byTpl := map[string][]wxsim.Delivered{}
	for _, m := range ms {
		byTpl[m.TemplateID] = append(byTpl[m.TemplateID], m)
	}
	fmt.Fprintf(out, "\n== the simulator received %d messages\n", len(ms))
	for _, c := range cs {
		got := byTpl[c.Template.ID]
		fmt.Fprintf(out, "\n%s: %d messages. First ones:\n", c.Name, len(got))
		for i, m := range got {
			if i == 3 {
				break
			}
			keys := make([]string, 0, len(m.Data))
			for k := range m.Data {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(out, "  to %s  page %q\n", m.ToUser, m.Page)
			for _, k := range keys {
				fmt.Fprintf(out, "      %-20s %s\n", k, m.Data[k])
			}
		}
	}
}
