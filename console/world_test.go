package console_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/console"
	"github.com/wxcampaign/wxcampaign/demo"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// Tokens of the test console.
const (
	viewerToken   = "viewer-token-0123456789abcdef"
	operatorToken = "operator-token-0123456789abcdef"
)

// labels are the account's template titles and keyword labels, as
// getTemplateList gives them for the four example templates.
var labels = staticTemplates{
	"d0_umabytLc1yf58s4hLFGxgdNGs1bBjMDbcstf1ckd": {Title: "活动上线通知", Labels: map[string]string{"thing1": "活动名称", "time2": "开始时间", "thing3": "活动地点"}},
	"uADOMWfzyYDtnQvmgJ4doSCIcC4d4ST-60hIDDrUZvw": {Title: "预约开始提醒", Labels: map[string]string{"thing1": "服务项目", "time2": "开始时间", "thing3": "服务地点"}},
	"t3IrG3Mi4aWEoR05B1yMmeFHGPMhEu-55k_Xr8Fvmu0": {Title: "订单未支付提醒", Labels: map[string]string{"character_string1": "订单号", "amount2": "订单金额", "thing3": "商品名称", "thing4": "温馨提示"}},
	"bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c": {Title: "商品降价提醒", Labels: map[string]string{"thing1": "商品名称", "amount2": "现价", "amount3": "原价", "thing4": "温馨提示"}},
}

type staticTemplates map[string]console.Template

func (s staticTemplates) Template(_ context.Context, id string) (console.Template, bool) {
	t, ok := s[id]
	return t, ok
}

// world is the console on a real store with the demo data, the example
// campaigns, an engine sending to the simulator, and a run history.
type world struct {
	db   *store.DB
	eng  *engine.Engine
	cs   []*campaigns.Campaign
	byID map[string]*campaigns.Campaign
	at   time.Time
	con  *console.Server
	srv  *httptest.Server
	log  *logrus.Logger
}

// retrier is the daemon's retry in miniature: reopen, then run.
type retrier struct{ w *world }

func (r *retrier) Retry(ctx context.Context, id int64) (store.Run, error) {
	run, err := r.w.db.ReopenRun(ctx, id, time.Now())
	if err != nil {
		return run, err
	}
	sum, err := r.w.eng.Run(ctx, r.w.byID[run.Campaign], engine.Options{At: run.Occurrence})
	r.w.record(sum, err)
	return run, nil
}

func (w *world) record(sum engine.Summary, err error) {
	if err != nil && sum.Status == "already run" {
		return
	}
	_ = w.db.RecordRunReport(context.Background(), sum.Campaign, sum.Occurrence, console.Report(sum, w.eng.Holder()), time.Now())
}

func newWorld(t *testing.T, cfg store.Config) *world {
	t.Helper()
	ctx := context.Background()
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	w := &world{db: storetest.Open(t, cfg), at: time.Date(2026, 11, 22, 10, 30, 0, 0, sh), byID: map[string]*campaigns.Campaign{}}
	w.log = logrus.New()
	w.log.SetOutput(io.Discard)
	w.cs, err = campaigns.LoadPaths([]string{filepath.Join("..", "configs", "campaigns")}, campaigns.Defaults{Location: sh})
	if err != nil {
		t.Fatal(err)
	}
	var tpl demo.Templates
	var defs []wxsim.TemplateDef
	kinds := map[string]wx.Kind{}
	for _, c := range w.cs {
		w.byID[c.Name] = c
		kinds[c.Template.ID] = c.Template.Kind
		def := wxsim.TemplateDef{ID: c.Template.ID, Kind: string(c.Template.Kind)}
		for _, f := range c.Data {
			def.Keys = append(def.Keys, f.Key)
		}
		defs = append(defs, def)
		switch c.Name {
		case "price-drop":
			tpl.PriceDrop = c.Template.ID
		case "activity-launched":
			tpl.Activity = c.Template.ID
		case "order-unpaid":
			tpl.Order = c.Template.ID
		case "appointment-reminder":
			tpl.Appointment = c.Template.ID
		}
	}
	size := demo.Size{Products: 40, PriceGrants: 300, Activities: 5, ActGrants: 120, Orders: 120, Appointments: 60, DropShare: 0.3, Seed: 1}
	data, err := demo.Seed(ctx, w.db.SQLX(), w.at, tpl, size)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.Import(ctx, bytes.NewReader(data.JSONL()), store.ImportOptions{
		Now:    func() time.Time { return w.at.Add(-2 * time.Hour) },
		KindOf: func(id string) wx.Kind { return kinds[id] },
	}); err != nil {
		t.Fatal(err)
	}
	sim, err := wxsim.New(wxsim.Config{AppID: "wxconsoletest", Secret: "console-test-secret", Templates: defs})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range data.Credits {
		sim.AddCredits(c.OpenID, c.TemplateID, 1)
	}
	simSrv := httptest.NewServer(sim.Handler())
	t.Cleanup(simSrv.Close)
	client, err := wechat.New(wechat.Config{BaseURL: simSrv.URL, AppID: "wxconsoletest", Secret: "console-test-secret", Tokens: w.db, Logger: w.log})
	if err != nil {
		t.Fatal(err)
	}
	w.eng, err = engine.New(engine.Config{AppID: "wxconsoletest", Concurrency: 8, RetryBase: time.Millisecond, Logger: w.log}, w.db, w.db.Facts(), wxsender.New(client))
	if err != nil {
		t.Fatal(err)
	}
	// A run history: order-unpaid and activity-launched every 10 minutes
	// of the hour before the demo time.
	for i := 6; i >= 1; i-- {
		for _, name := range []string{"order-unpaid", "activity-launched"} {
			sum, err := w.eng.Run(ctx, w.byID[name], engine.Options{At: w.at.Add(-time.Duration(i) * 10 * time.Minute)})
			if err != nil {
				t.Fatalf("run %s: %v", name, err)
			}
			w.record(sum, err)
		}
	}
	w.con, err = console.New(console.Config{
		Tokens: []console.Token{{Name: "vera", Token: viewerToken, Role: console.RoleViewer}, {Name: "oscar", Token: operatorToken, Role: console.RoleOperator}},
		AppID:  "wxconsoletest", Now: func() time.Time { return w.at }, Location: sh, Logger: w.log,
	}, console.Deps{Store: w.db, Previewer: w.eng, Retrier: &retrier{w: w}, Templates: labels})
	if err != nil {
		t.Fatal(err)
	}
	w.con.SetCampaigns(w.cs)
	w.srv = httptest.NewServer(w.con.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

// login returns an HTTP client holding a session of token.
func (w *world) login(t *testing.T, token string) *http.Client {
	t.Helper()
	c := &http.Client{}
	jar := newJar(t, w.srv.URL)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(w.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csrf := jar.value("wxc_login")
	resp, err = c.PostForm(w.srv.URL+"/login", map[string][]string{"token": {token}, "csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || jar.value("wxc_session") == "" {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return c
}

type jar struct {
	*cookiejar.Jar
	u *url.URL
}

func newJar(t *testing.T, base string) *jar {
	j, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(base)
	return &jar{Jar: j, u: u}
}

func (j *jar) value(name string) string {
	for _, c := range j.Cookies(j.u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}
