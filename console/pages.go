package console

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
)

//go:embed assets
var assets embed.FS

// pageSize is the rows of one page of runs or audit entries.
const pageSize = 50

// funcs are the pages' template functions; times read from the store (in
// UTC) show in loc, times already in a zone (a campaign's next runs) in
// theirs.
func funcs(loc *time.Location) template.FuncMap {
	return template.FuncMap{
		"time": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			if t.Location() == time.UTC {
				t = t.In(loc)
			}
			return t.Format("2006-01-02 15:04:05 MST")
		},
		"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
		"rate":  func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
		"count": func(r *store.RunReport, o string) int { return r.Count(o) },
	}
}

func parsePages(loc *time.Location) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs(loc)).ParseFS(assets, "assets/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: layout: %w", err)
	}
	names, err := fs.Glob(assets, "assets/page_*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		t, err := template.Must(layout.Clone()).ParseFS(assets, n)
		if err != nil {
			return nil, fmt.Errorf("console: %s: %w", n, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(n, "assets/page_"), ".html")] = t
	}
	return out, nil
}

func (s *Server) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(assets, "assets/static")
	m.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	m.HandleFunc("GET /login", s.loginForm)
	m.HandleFunc("POST /login", s.login)
	m.HandleFunc("POST /logout", s.need(false, s.logout))
	m.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/campaigns", http.StatusSeeOther)
	})
	m.HandleFunc("GET /campaigns", s.need(false, s.campaignsPage))
	m.HandleFunc("GET /campaigns/{name}", s.need(false, s.campaignPage))
	m.HandleFunc("GET /campaigns/{name}/preview", s.need(false, s.previewPage))
	m.HandleFunc("POST /campaigns/{name}/pause", s.need(true, s.pause))
	m.HandleFunc("POST /campaigns/{name}/resume", s.need(true, s.resume))
	m.HandleFunc("POST /quota/clear", s.need(true, s.clearQuota))
	m.HandleFunc("GET /runs", s.need(false, s.runsPage))
	m.HandleFunc("GET /runs/{id}", s.need(false, s.runPage))
	m.HandleFunc("POST /runs/{id}/retry", s.need(true, s.retry))
	m.HandleFunc("GET /audit", s.need(false, s.auditPage))
	s.mux = http.NewServeMux()
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm) // forms are a few fields
		}
		m.ServeHTTP(w, r)
	}))
}

// maxForm bounds the body of a console request.
const maxForm = 16 << 10

// headers are set on every page: no script, nothing from elsewhere, no
// framing, nothing cached.
func headers(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, page string, data map[string]any) {
	t, ok := s.pages[page]
	if !ok {
		http.Error(w, "no page "+page, http.StatusInternalServerError)
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["User"] = userOf(r)
	data["Page"] = page
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout.html", data); err != nil {
		s.log.WithError(err).WithField("page", page).Error("console: render")
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	headers(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// fail answers with status and a reason a person can act on.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, reason string) {
	s.render(w, r, status, "error", map[string]any{"Status": status, "StatusText": http.StatusText(status), "Reason": reason})
}

// storeFail answers a store error: its code decides the status; internal
// detail stays in the log.
func (s *Server) storeFail(w http.ResponseWriter, r *http.Request, err error) {
	switch wx.ErrorCode(err) {
	case wx.ENOTFOUND:
		s.fail(w, r, http.StatusNotFound, wx.ErrorMessage(err))
	case wx.ECONFLICT:
		s.fail(w, r, http.StatusConflict, wx.ErrorMessage(err))
	default:
		s.log.WithError(err).WithField("path", r.URL.Path).Error("console: store")
		s.fail(w, r, http.StatusServiceUnavailable, "the store did not answer; try again")
	}
}

func (s *Server) audit(ctx context.Context, actor, action, target, detail string) {
	if err := s.deps.Store.AddAudit(context.WithoutCancel(ctx), store.AuditEntry{At: s.cfg.Now(), Actor: actor, Action: action, Target: target, Detail: detail}); err != nil {
		s.log.WithError(err).Error("console: audit")
	}
}

// campaignRow is one line of the campaigns page.
type campaignRow struct {
	C        *campaigns.Campaign
	Title    string
	Words    string
	Zone     string
	Next     []time.Time
	Pause    *store.CampaignPause
	Last     *store.Run
	Enabled  bool
	Template string
}

func (s *Server) title(ctx context.Context, id string) (string, Template) {
	if s.deps.Templates != nil {
		if t, ok := s.deps.Templates.Template(ctx, id); ok {
			if t.Title != "" {
				return t.Title, t
			}
			return id, t
		}
	}
	return id, Template{}
}

func (s *Server) row(ctx context.Context, c *campaigns.Campaign, pauses map[string]store.CampaignPause, now time.Time) (campaignRow, error) {
	title, _ := s.title(ctx, c.Template.ID)
	loc := c.Location
	if loc == nil {
		loc = time.Local
	}
	row := campaignRow{C: c, Title: title, Words: scheduleWords(c.Schedule), Zone: loc.String(), Enabled: c.Enabled, Template: c.Template.ID}
	if c.Cron != nil {
		t := now.In(loc)
		for range 3 {
			t = engine.NextTick(c.Cron, t)
			if t.IsZero() {
				break
			}
			row.Next = append(row.Next, t)
		}
	}
	if p, ok := pauses[c.Name]; ok {
		row.Pause = &p
	}
	last, err := s.deps.Store.RunsPage(ctx, store.RunFilter{Campaign: c.Name, Limit: 1})
	if err != nil {
		return row, err
	}
	if len(last) == 1 {
		row.Last = &last[0]
	}
	return row, nil
}

func (s *Server) campaignsPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	pauses, err := s.deps.Store.CampaignPauses(ctx)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	now := s.cfg.Now()
	var rows []campaignRow
	for _, c := range s.set.Load().list {
		row, err := s.row(ctx, c, pauses, now)
		if err != nil {
			s.storeFail(w, r, err)
			return
		}
		rows = append(rows, row)
	}
	data := map[string]any{"Rows": rows}
	if s.cfg.AppID != "" {
		if until, why, err := s.deps.Store.PausedUntil(ctx, "quota:"+s.cfg.AppID, now); err == nil && !until.IsZero() {
			data["Quota"] = map[string]any{"Until": until, "Reason": why}
		}
	}
	s.render(w, r, http.StatusOK, "campaigns", data)
}

func (s *Server) campaign(w http.ResponseWriter, r *http.Request) (*campaigns.Campaign, string, bool) {
	name := r.PathValue("name")
	set := s.set.Load()
	c, ok := set.byName[name]
	if !ok {
		s.fail(w, r, http.StatusNotFound, fmt.Sprintf("no campaign %q is loaded", name))
		return nil, "", false
	}
	return c, set.source[name], true
}

// before reads the keyset parameter of a paginated page.
func before(r *http.Request) (int64, error) {
	v := r.URL.Query().Get("before")
	if v == "" {
		return 0, nil
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("before=%q: want a positive id (the link of the next page)", v)
	}
	return id, nil
}

func (s *Server) campaignPage(w http.ResponseWriter, r *http.Request) {
	c, src, ok := s.campaign(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	b, err := before(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	pauses, err := s.deps.Store.CampaignPauses(ctx)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	row, err := s.row(ctx, c, pauses, s.cfg.Now())
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	runs, err := s.deps.Store.RunsPage(ctx, store.RunFilter{Campaign: c.Name, BeforeID: b, Limit: pageSize})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	chartRuns := runs
	if len(chartRuns) > 30 {
		chartRuns = chartRuns[:30]
	}
	data := map[string]any{"Row": row, "Runs": runs, "Source": src, "Chart": chart(chartRuns, c.Location)}
	if len(runs) == pageSize {
		data["Next"] = runs[len(runs)-1].ID
	}
	s.render(w, r, http.StatusOK, "campaign", data)
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	c, _, ok := s.campaign(w, r)
	if !ok {
		return
	}
	u := userOf(r)
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if len(reason) > 255 {
		s.fail(w, r, http.StatusBadRequest, "reason: at most 255 bytes")
		return
	}
	if _, err := s.deps.Store.PauseCampaign(r.Context(), c.Name, u.Name, reason, s.cfg.Now()); err != nil {
		s.storeFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/campaigns/"+url.PathEscape(c.Name), http.StatusSeeOther)
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	c, _, ok := s.campaign(w, r)
	if !ok {
		return
	}
	if _, err := s.deps.Store.ResumeCampaign(r.Context(), c.Name, userOf(r).Name, s.cfg.Now()); err != nil {
		s.storeFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/campaigns/"+url.PathEscape(c.Name), http.StatusSeeOther)
}

func (s *Server) clearQuota(w http.ResponseWriter, r *http.Request) {
	if s.cfg.AppID == "" {
		s.fail(w, r, http.StatusNotFound, "no appid configured: there is no quota pause")
		return
	}
	if _, err := s.deps.Store.ClearPause(r.Context(), "quota:"+s.cfg.AppID, userOf(r).Name, s.cfg.Now()); err != nil {
		s.storeFail(w, r, err)
		return
	}
	http.Redirect(w, r, "/campaigns", http.StatusSeeOther)
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	b, err := before(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	campaign := r.URL.Query().Get("campaign")
	runs, err := s.deps.Store.RunsPage(r.Context(), store.RunFilter{Campaign: campaign, BeforeID: b, Limit: pageSize})
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	data := map[string]any{"Runs": runs, "Campaign": campaign}
	if len(runs) == pageSize {
		data["Next"] = runs[len(runs)-1].ID
	}
	s.render(w, r, http.StatusOK, "runs", data)
}

func runID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("run id %q: want a positive number", r.PathValue("id"))
	}
	return id, nil
}

// reasonLine is one reason of a run with its count.
type reasonLine struct {
	Reason string
	Count  int
}

func (s *Server) runPage(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	run, err := s.deps.Store.GetRunByID(r.Context(), id)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	var reasons []reasonLine
	if run.Report != nil {
		for k, n := range run.Report.Reasons {
			reasons = append(reasons, reasonLine{k, n})
		}
		sort.Slice(reasons, func(i, j int) bool {
			if reasons[i].Count != reasons[j].Count {
				return reasons[i].Count > reasons[j].Count
			}
			return reasons[i].Reason < reasons[j].Reason
		})
	}
	retryable, why := run.Retryable(s.cfg.Now())
	s.render(w, r, http.StatusOK, "run", map[string]any{"Run": run, "Reasons": reasons, "Retryable": retryable && s.deps.Retrier != nil, "Why": why})
}

func (s *Server) retry(w http.ResponseWriter, r *http.Request) {
	id, err := runID(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if s.deps.Retrier == nil {
		s.fail(w, r, http.StatusNotImplemented, "this console cannot run campaigns: use `wxcampaign runs retry`")
		return
	}
	run, err := s.deps.Retrier.Retry(r.Context(), id)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	s.audit(r.Context(), userOf(r).Name, "retry", fmt.Sprintf("run %d (%s %s)", id, run.Campaign, run.Occurrence.Format(time.RFC3339)), fmt.Sprintf("from checkpoint %d", run.Checkpoint))
	http.Redirect(w, r, "/runs/"+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request) {
	b, err := before(r)
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	entries, err := s.deps.Store.AuditPage(r.Context(), b, pageSize)
	if err != nil {
		s.storeFail(w, r, err)
		return
	}
	data := map[string]any{"Entries": entries}
	if len(entries) == pageSize {
		data["Next"] = entries[len(entries)-1].ID
	}
	s.render(w, r, http.StatusOK, "audit", data)
}

// scheduleWords says a schedule in words where it has a common shape.
func scheduleWords(spec string) string {
	spec = strings.TrimSpace(spec)
	if d, ok := strings.CutPrefix(spec, "@every "); ok {
		return "every " + d
	}
	switch spec {
	case "@hourly":
		return "every hour"
	case "@daily", "@midnight":
		return "every day at 00:00"
	}
	f := strings.Fields(spec)
	if len(f) != 5 || f[2] != "*" || f[3] != "*" {
		return spec
	}
	min, hour, dow := f[0], f[1], f[4]
	days := "every day"
	switch dow {
	case "*":
	case "1-5":
		days = "on weekdays"
	default:
		return spec
	}
	if n, ok := strings.CutPrefix(min, "*/"); ok && hour == "*" {
		return "every " + n + " minutes" + strings.TrimPrefix(" "+days, " every day")
	}
	m, err1 := strconv.Atoi(min)
	h, err2 := strconv.Atoi(hour)
	if err1 == nil && err2 == nil {
		return fmt.Sprintf("%s at %02d:%02d", days, h, m)
	}
	if err1 == nil && hour == "*" {
		return fmt.Sprintf("every hour at :%02d", m)
	}
	return spec
}

// standalone is the template of `preview --html`.
var standaloneT = sync.OnceValues(func() (*template.Template, error) {
	return template.New("standalone.html").Funcs(funcs(time.Local)).ParseFS(assets, "assets/layout.html", "assets/standalone.html")
})

func standalone() (*template.Template, bool) {
	t, err := standaloneT()
	return t, err == nil
}

// cssHTML marks the embedded style sheet as CSS for the standalone page.
func cssHTML(b []byte) template.CSS { return template.CSS(b) } //nolint:gosec // our own embedded file
