package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
)

// Preview is a dry run shown as WeChat shows it: a card per message that
// would be sent (up to a sample) and the rest grouped by reason with
// examples.
type Preview struct {
	Campaign    string
	Description string
	Title       string // the template's title, or its id when none is synced
	At          time.Time
	Looked      int
	Limit       int  // the grants a page looks at, at most
	Capped      bool // the preview stopped at Limit
	Counts      map[string]int
	Cards       []Card
	MoreCards   int // would-be messages beyond the sample
	Groups      []Group
	Error       string
	// OpenID and User are the one-user view: every grant of this user
	// with every input of its decision.
	OpenID string
	User   []UserGrant
}

// UserGrant is one grant of the one-user view.
type UserGrant struct {
	GrantID    int64
	Outcome    string
	Reason     string
	Card       *Card
	Grant      string // the grant (scene, biz_no, vars, granted_at) as JSON
	FactKeys   string // JSON
	Facts      string // JSON: each fact's row, null when none matched
	When       string // the rule's value
	WhenError  string
	QuietHours string
	Caps       []engine.CapCheck
}

// Card is one subscription message as the WeChat client shows it.
type Card struct {
	GrantID int64
	OpenID  string
	Title   string
	Date    string
	Rows    []Row
	Page    string // "" = a card without the 进入小程序查看 link
}

// Row is one keyword row of a card: the template's label, or the key name
// where no label is synced.
type Row struct{ Label, Key, Value string }

// Group is the grants that were not sent for one reason.
type Group struct {
	Outcome  string
	Reason   string
	Count    int
	Examples []Example
}

// Example is one grant of a group.
type Example struct {
	GrantID int64
	OpenID  string
	Detail  string // the free-text detail of the reason (rule error, errmsg, ...)
}

// Collector turns a dry run's grant reports into a Preview.
type Collector struct {
	p        *Preview
	c        *campaigns.Campaign
	labels   map[string]string
	maxCards int
	limit    int
	cancel   context.CancelFunc
	groups   map[string]*Group
}

// NewCollector collects a preview of c at at, rendered with the template's
// title and labels. It keeps maxCards cards and five examples per reason;
// after limit grants (0 = no limit) it calls cancel to stop the run.
func NewCollector(c *campaigns.Campaign, tpl Template, at time.Time, maxCards, limit int, cancel context.CancelFunc) *Collector {
	title := tpl.Title
	if title == "" {
		title = c.Template.ID
	}
	return &Collector{
		p: &Preview{Campaign: c.Name, Description: c.Description, Title: title, At: at, Limit: limit, Counts: map[string]int{}},
		c: c, labels: tpl.Labels, maxCards: maxCards, limit: limit, cancel: cancel, groups: map[string]*Group{},
	}
}

// Report takes one grant report (engine.Options.Report).
func (k *Collector) Report(g engine.GrantReport) {
	p := k.p
	if k.limit > 0 && p.Looked >= k.limit {
		p.Capped = true
		if k.cancel != nil {
			k.cancel()
		}
		return
	}
	p.Looked++
	p.Counts[string(g.Outcome)]++
	if g.Explain != nil {
		k.explain(g)
	}
	if g.Outcome == wx.Sent {
		if len(p.Cards) >= k.maxCards {
			p.MoreCards++
			return
		}
		p.Cards = append(p.Cards, k.card(g))
		return
	}
	key := string(g.Outcome) + "\x00" + string(g.Reason)
	gr, ok := k.groups[key]
	if !ok {
		gr = &Group{Outcome: string(g.Outcome), Reason: string(g.Reason)}
		k.groups[key] = gr
	}
	gr.Count++
	if len(gr.Examples) < 5 {
		gr.Examples = append(gr.Examples, Example{GrantID: g.GrantID, OpenID: g.OpenID, Detail: g.Detail})
	}
}

func (k *Collector) card(g engine.GrantReport) Card {
	card := Card{GrantID: g.GrantID, OpenID: g.OpenID, Title: k.p.Title, Date: k.p.At.Format("2006年01月02日"), Page: g.Page}
	for _, f := range k.c.Data {
		label := k.labels[f.Key]
		if label == "" {
			label = f.Key
		}
		card.Rows = append(card.Rows, Row{Label: label, Key: f.Key, Value: g.Data[f.Key]})
	}
	return card
}

// explain keeps one grant of the one-user view (at most 50).
func (k *Collector) explain(g engine.GrantReport) {
	if len(k.p.User) >= 50 {
		return
	}
	x := g.Explain
	js := func(v any) string {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	}
	u := UserGrant{GrantID: g.GrantID, Outcome: string(g.Outcome), Reason: g.Why(),
		Grant:    js(map[string]any{"scene": x.Grant.Scene, "biz_no": x.Grant.BizNo, "vars": x.Grant.Vars, "granted_at": x.Grant.GrantedAt, "kind": x.Grant.Kind}),
		FactKeys: js(x.FactKeys), Facts: js(x.Facts), When: fmt.Sprint(x.When), WhenError: x.WhenError, QuietHours: x.QuietHours, Caps: x.Caps}
	if g.Outcome == wx.Sent {
		c := k.card(g)
		u.Card = &c
	}
	k.p.User = append(k.p.User, u)
}

// Finish returns the preview; err is the run's error (a stop at the limit
// is not one).
func (k *Collector) Finish(err error) *Preview {
	p := k.p
	if err != nil && !(p.Capped && errors.Is(err, context.Canceled)) {
		p.Error = err.Error()
	}
	for _, g := range k.groups {
		p.Groups = append(p.Groups, *g)
	}
	sort.Slice(p.Groups, func(i, j int) bool {
		if p.Groups[i].Count != p.Groups[j].Count {
			return p.Groups[i].Count > p.Groups[j].Count
		}
		return p.Groups[i].Reason < p.Groups[j].Reason
	})
	return p
}

// RunPreview runs a dry run of c at at through prev and collects it.
func RunPreview(ctx context.Context, prev Previewer, c *campaigns.Campaign, tpl Template, at time.Time, maxCards, limit int) *Preview {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	k := NewCollector(c, tpl, at, maxCards, limit, cancel)
	_, err := prev.Run(ctx, c, engine.Options{At: at, DryRun: true, Report: k.Report})
	return k.Finish(err)
}

// userPreviewTimeout bounds the one-user view: the engine walks every grant
// of the template to find the user's.
const userPreviewTimeout = 10 * time.Second

// RunUserPreview is the one-user view: a dry run of c at at restricted to
// openid, each grant with every input of its decision.
func RunUserPreview(ctx context.Context, prev Previewer, c *campaigns.Campaign, tpl Template, at time.Time, openid string) *Preview {
	ctx, cancel := context.WithTimeout(ctx, userPreviewTimeout)
	defer cancel()
	k := NewCollector(c, tpl, at, 50, 0, nil)
	k.p.OpenID = openid
	_, err := prev.Run(ctx, c, engine.Options{At: at, DryRun: true, OpenID: openid, Explain: true, Report: k.Report})
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("stopped after %v: the user's grants are found by walking the template's grants", userPreviewTimeout)
	}
	return k.Finish(err)
}

func (s *Server) previewPage(w http.ResponseWriter, r *http.Request) {
	c, _, ok := s.campaign(w, r)
	if !ok {
		return
	}
	loc := c.Location
	if loc == nil {
		loc = time.Local
	}
	at := s.cfg.Now().In(loc)
	if v := r.URL.Query().Get("at"); v != "" {
		t, err := parseAt(v, loc)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		at = t
	}
	limit := s.cfg.PreviewLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 || n > 100*s.cfg.PreviewLimit {
			s.fail(w, r, http.StatusBadRequest, fmt.Sprintf("limit=%q: want a number of grants from 1 to %d", v, 100*s.cfg.PreviewLimit))
			return
		}
		limit = n
	}
	_, tpl := s.title(r.Context(), c.Template.ID)
	var p *Preview
	openid := strings.TrimSpace(r.URL.Query().Get("openid"))
	if openid != "" {
		p = RunUserPreview(r.Context(), s.deps.Previewer, c, tpl, at, openid)
	} else {
		p = RunPreview(r.Context(), s.deps.Previewer, c, tpl, at, 12, limit)
	}
	status := http.StatusOK
	if p.Error != "" {
		status = http.StatusUnprocessableEntity
	}
	data := map[string]any{"P": p, "AtValue": at.Format("2006-01-02T15:04"), "Zone": loc.String()}
	if openid != "" {
		got, err := s.deps.Store.ReceivedBy(r.Context(), openid, s.cfg.Now().Add(-30*24*time.Hour), 100)
		if err != nil {
			s.storeFail(w, r, err)
			return
		}
		data["Received"] = got
	}
	if p.Capped && limit*10 <= 100*s.cfg.PreviewLimit {
		data["More"] = limit * 10
	}
	s.render(w, r, status, "preview", data)
}

// parseAt reads RFC 3339 or a datetime-local value (in loc).
func parseAt(v string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.In(loc), nil
	}
	for _, l := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("at=%q: want RFC 3339 (2026-11-22T10:00:00+08:00) or 2026-11-22T10:00", v)
}

// WritePreviewHTML writes p as one self-contained HTML page (styles
// inline, no script, no link out): `wxcampaign preview --html`.
func WritePreviewHTML(w io.Writer, p *Preview) error {
	css, err := assets.ReadFile("assets/static/style.css")
	if err != nil {
		return err
	}
	t, ok := standalone()
	if !ok {
		return errors.New("console: no standalone preview template")
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "standalone.html", map[string]any{"P": p, "CSS": cssHTML(css)}); err != nil {
		return fmt.Errorf("console: preview html: %w", err)
	}
	_, err = io.WriteString(w, b.String())
	return err
}
