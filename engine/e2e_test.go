package engine_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestE2E runs every end-to-end scenario on SQLite and on MariaDB.
func TestE2E(t *testing.T) {
	scenarios := []struct {
		name string
		fn   func(t *testing.T, nc storetest.NamedConfig)
	}{
		{"price_drop", testPriceDrop},
		{"activity_launched", testActivityLaunched},
		{"order_unpaid_fires_once", testOrderUnpaid},
		{"user_cap_across_campaigns", testUserCapAcrossCampaigns},
		{"cap_under_concurrent_runs", testCapConcurrentRuns},
		{"quiet_hours_defer", testQuietHours},
		{"same_tick_twice", testSameTickTwice},
		{"two_engines_race", testTwoEnginesRace},
		{"grant_gone_43101", testGrantGone},
		{"preview_matches_send", testPreviewMatchesSend},
		{"misconfigured_template_40037", testMisconfiguredTemplate},
		{"quota_45009_pause", testQuotaPause},
		{"retryable_faults", testRetryableFaults},
		{"token_expiry_refresh", testTokenExpiry},
		{"ambiguous_timeout", testAmbiguousTimeout},
		{"ambiguous_holds_the_user", testAmbiguousHold},
		{"preview_matches_send_overlapping_limits", testPreviewOverlappingLimits},
		{"shutdown_mid_dispatch", testShutdownMidDispatch},
		{"shutdown_mid_claim", testShutdownMidClaim},
		{"concurrent_campaigns_one_user", testConcurrentCampaignsOneUser},
		{"many_grants_one_user_one_run", testManyGrantsOneUser},
		{"checkpoint_cadence", testCheckpointCadence},
	}
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		for _, sc := range scenarios {
			t.Run(sc.name, func(t *testing.T) { sc.fn(t, nc) })
		}
	})
}

// ---- price drop world -------------------------------------------------

type product struct {
	id, name string
	price    float64
	stock    int
}

var products = []product{
	{"p1", "无线降噪耳机", 12.50, 5},
	{"p2", "机械键盘", 99.00, 0}, // out of stock: never eligible
	{"p3", "保温杯", 30.00, 3},
	{"p4", "有机燕麦片", 8.80, 10},
}

// priceDeltas are the saved price minus the current price, by user.
var priceDeltas = []float64{2.5, 0, -1, 0.01, 10}

// priceUser is one subscriber of the price-drop template.
type priceUser struct {
	openid  string
	grant   int64
	product product
	saved   string // the saved price, as the mini program recorded it
}

// eligible is the price-drop rule written independently of the campaign:
// in stock and cheaper now than the saved price.
func (u priceUser) eligible() bool {
	saved, _ := strconv.ParseFloat(u.saved, 64)
	return u.product.stock > 0 && u.product.price < saved
}

// wantData is the exact data the user must receive.
func (u priceUser) wantData() map[string]string {
	return map[string]string{
		"thing1":  u.product.name,
		"amount2": fmt.Sprintf("¥%.2f", u.product.price),
		"amount3": "¥" + u.saved,
		"thing4":  "降价了，快来看看",
	}
}

// priceCampaign is the price-drop campaign on template tpl, with extra
// YAML appended (limits, quiet hours, batch size).
func priceCampaign(t testing.TB, name, tpl, extra string) *campaigns.Campaign {
	return parseCampaign(t, fmt.Sprintf(`name: %s
description: 商品降价提醒
schedule: "*/10 * * * *"
timezone: Asia/Shanghai
template:
  id: %s
  kind: one_time
  page: `+testenv.PriceDropPage+`
  state: formal
  lang: zh_CN
`+testenv.PriceDropRule+testenv.PriceDropData+`overflow: truncate
%s`, name, tpl, extra))
}

// seedProducts creates the products fact table.
func (w *world) seedProducts() {
	w.exec(testenv.ProductsDDL)
	for _, p := range products {
		w.exec(`INSERT INTO products (id, name, price, stock) VALUES (?,?,?,?)`, p.id, p.name, p.price, p.stock)
	}
}

// seedPriceUsers subscribes n users (openid prefix pfx) to tpl, user i
// watching products[i%4] at a saved price of price+priceDeltas[i%5]. Every
// user gets a credit in the simulator unless noCredit says otherwise.
func (w *world) seedPriceUsers(tpl, pfx string, n int, noCredit func(i int) bool) []priceUser {
	w.t.Helper()
	var us []priceUser
	for i := range n {
		p := products[i%len(products)]
		u := priceUser{openid: fmt.Sprintf("%s%03d", pfx, i), product: p, saved: fmt.Sprintf("%.2f", p.price+priceDeltas[i%len(priceDeltas)])}
		credit := noCredit == nil || !noCredit(i)
		u.grant = w.subscribe(u.openid, tpl, p.id, map[string]any{"saved_price": u.saved}, credit)
		us = append(us, u)
	}
	return us
}

func eligibleOpenIDs(us []priceUser) []string {
	var out []string
	for _, u := range us {
		if u.eligible() {
			out = append(out, u.openid)
		}
	}
	return out
}

// checkPriceMessages asserts that every message of tpl carries exactly the
// data and page its user must get.
func (w *world) checkPriceMessages(tpl string, us []priceUser) {
	w.t.Helper()
	byOpenID := map[string]priceUser{}
	for _, u := range us {
		byOpenID[u.openid] = u
	}
	for _, m := range w.sim.Messages() {
		if m.TemplateID != tpl {
			continue
		}
		u, ok := byOpenID[m.ToUser]
		if !ok {
			w.t.Errorf("message to unknown user %s", m.ToUser)
			continue
		}
		if want := u.wantData(); !mapsEqual(m.Data, want) {
			w.t.Errorf("data to %s:\n got  %v\n want %v", u.openid, m.Data, want)
		}
		if want := "pages/goods/detail?id=" + u.product.id; m.Page != want {
			w.t.Errorf("page to %s = %q, want %q", u.openid, m.Page, want)
		}
		if m.State != "formal" || m.Lang != "zh_CN" {
			w.t.Errorf("state/lang to %s = %q/%q, want formal/zh_CN", u.openid, m.State, m.Lang)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// ---- scenarios ----------------------------------------------------------

func testPriceDrop(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 7\nlimits:\n  - {scope: user_template, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oPrice", 40, nil)
	want := eligibleOpenIDs(us)
	if len(want) == 0 || len(want) == len(us) {
		t.Fatalf("bad fixture: %d of %d eligible", len(want), len(us))
	}

	r := w.mustRun(c, at(3, 10, 0))
	equalSets(t, "price drop recipients", w.recipients(c.Template.ID), want)
	w.checkPriceMessages(c.Template.ID, us)

	// The data of one user, spelt out.
	m := w.messageTo("oPrice000", c.Template.ID) // p1 at 12.50, saved 15.00
	if m.Data["amount2"] != "¥12.50" || m.Data["amount3"] != "¥15.00" || m.Data["thing1"] != "无线降噪耳机" {
		t.Errorf("oPrice000 data = %v", m.Data)
	}

	if r.sum.Status != "done" || r.sum.Looked != len(us) || r.sum.Counts[wx.Sent] != len(want) ||
		r.sum.Counts[wx.Skipped] != len(us)-len(want) || r.sum.Reasons["skipped: rule_false"] != len(us)-len(want) {
		t.Errorf("summary = %+v", r.sum)
	}
	for _, u := range us {
		rep, ok := r.report(u.grant)
		switch {
		case !ok:
			t.Errorf("no report for grant %d", u.grant)
		case u.eligible() && (rep.Outcome != wx.Sent || rep.MsgID == 0):
			t.Errorf("grant %d of %s: %s %q msgid %d, want sent with a msgid", u.grant, u.openid, rep.Outcome, rep.Reason, rep.MsgID)
		case !u.eligible() && rep.Outcome != wx.Skipped:
			t.Errorf("grant %d of %s: %s %q, want skipped", u.grant, u.openid, rep.Outcome, rep.Reason)
		}
	}
	// The sent grants are consumed, the others still available.
	var notSent []int64
	for _, u := range us {
		if !u.eligible() {
			notSent = append(notSent, u.grant)
		}
	}
	if got := w.available(c.Template.ID); !slices.Equal(got, notSent) {
		t.Errorf("available after the run = %v, want %v", got, notSent)
	}
	noDuplicates(t, w.sim)
}

func testActivityLaunched(t *testing.T, nc storetest.NamedConfig) {
	c := parseCampaign(t, `name: activity-launched
description: 活动上线通知
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: tplActivity
  kind: one_time
  page: '"pages/activity/detail?id=" + grant.biz_no'
facts:
  activity:
    query: SELECT id, title, status, start_at, place FROM activities WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: activity != nil && activity.status == "launched"
data:
  thing1: activity.title
  time2: datetime(activity.start_at)
  thing3: activity.place
overflow: truncate
batch_size: 4
`)
	w := newWorld(t, nc, simTemplate(c))
	w.exec(`CREATE TABLE activities (id VARCHAR(64) PRIMARY KEY, title VARCHAR(100), status VARCHAR(16), start_at DATETIME, place VARCHAR(100))`)
	w.exec(`INSERT INTO activities VALUES (?,?,?,?,?)`, "a1", "冬季新品发布会", "launched", sqlTime(at(5, 19, 30)), "上海国际会议中心")
	w.exec(`INSERT INTO activities VALUES (?,?,?,?,?)`, "a2", "春季发布会", "draft", sqlTime(at(6, 9, 0)), "北京798艺术区")
	var want []string
	for i := range 10 {
		id := fmt.Sprintf("oAct1_%02d", i)
		w.subscribe(id, c.Template.ID, "a1", nil, true)
		want = append(want, id)
	}
	for i := range 8 {
		w.subscribe(fmt.Sprintf("oAct2_%02d", i), c.Template.ID, "a2", nil, true)
	}
	w.subscribe("oActMissing", c.Template.ID, "a404", nil, true) // no such activity

	r := w.mustRun(c, at(3, 10, 0))
	equalSets(t, "activity recipients", w.recipients(c.Template.ID), want)
	wantData := map[string]string{"thing1": "冬季新品发布会", "time2": "2024年6月5日 19:30", "thing3": "上海国际会议中心"}
	for _, m := range w.sim.Messages() {
		if !mapsEqual(m.Data, wantData) || m.Page != "pages/activity/detail?id=a1" {
			t.Errorf("message to %s: data %v page %q, want %v page pages/activity/detail?id=a1", m.ToUser, m.Data, m.Page, wantData)
		}
	}
	if r.sum.Counts[wx.Sent] != 10 || r.sum.Reasons["skipped: rule_false"] != 9 {
		t.Errorf("summary = %+v", r.sum)
	}
	// The draft's subscribers keep their grants for the launch.
	if got := len(w.available(c.Template.ID)); got != 9 {
		t.Errorf("available after the run = %d, want 9", got)
	}
	// Launching the draft reaches its subscribers at the next tick, and
	// the first activity's subscribers hear nothing more.
	w.exec(`UPDATE activities SET status = 'launched' WHERE id = 'a2'`)
	r = w.mustRun(c, at(3, 10, 5))
	if r.sum.Counts[wx.Sent] != 8 {
		t.Errorf("second run summary = %+v", r.sum)
	}
	if got := len(w.sim.Messages()); got != 18 {
		t.Errorf("messages = %d, want 18", got)
	}
	noDuplicates(t, w.sim)
}

func testOrderUnpaid(t *testing.T, nc storetest.NamedConfig) {
	c := parseCampaign(t, `name: order-unpaid
description: 订单未支付提醒
schedule: "@every 5m"
timezone: Asia/Shanghai
template:
  id: tplOrder
  kind: one_time
  page: '"pages/order/detail?id=" + grant.biz_no'
facts:
  order:
    query: >-
      SELECT id, openid, status, amount, product_name, created_at
      FROM orders WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: >-
  order != nil && order.openid == grant.openid &&
  order.status == "unpaid" && now - order.created_at > duration("30m")
data:
  character_string1: order.id
  amount2: money(order.amount)
  thing3: order.product_name
  thing4: '"订单待支付，请尽快完成付款"'
overflow: truncate
limits:
  - {scope: user_template, max: 1, window: 1d}
quiet_hours: {from: "23:00", to: "07:30", action: defer}
batch_size: 5
`)
	w := newWorld(t, nc, simTemplate(c))
	w.exec(`CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY, openid VARCHAR(64), status VARCHAR(16), amount DECIMAL(10,2), product_name VARCHAR(100), created_at DATETIME)`)
	T := at(3, 10, 0)
	order := func(id, openid, status string, amount float64, created time.Time) {
		w.exec(`INSERT INTO orders VALUES (?,?,?,?,?,?)`, id, openid, status, amount, "保温杯", sqlTime(created))
	}
	var old, young []string
	for i := range 8 {
		u := fmt.Sprintf("oOld%02d", i)
		order("o-old-"+strconv.Itoa(i), u, "unpaid", 12.5+float64(i), T.Add(-time.Hour))
		w.subscribe(u, c.Template.ID, "o-old-"+strconv.Itoa(i), nil, true)
		old = append(old, u)
	}
	for i := range 4 {
		u := fmt.Sprintf("oYoung%02d", i)
		order("o-young-"+strconv.Itoa(i), u, "unpaid", 20, T.Add(-10*time.Minute))
		w.subscribe(u, c.Template.ID, "o-young-"+strconv.Itoa(i), nil, true)
		young = append(young, u)
	}
	order("o-paid", "oPaid", "paid", 9.9, T.Add(-time.Hour))
	w.subscribe("oPaid", c.Template.ID, "o-paid", nil, true)
	order("o-other", "oOwner", "unpaid", 9.9, T.Add(-time.Hour))
	w.subscribe("oStranger", c.Template.ID, "o-other", nil, true) // not the buyer
	// A user who subscribed twice for one order: one reminder only.
	order("o-twice", "oTwice", "unpaid", 66, T.Add(-time.Hour))
	w.subscribe("oTwice", c.Template.ID, "o-twice", nil, true)
	twice2 := w.subscribe("oTwice", c.Template.ID, "o-twice", nil, true)

	// T: the old unpaid orders.
	r := w.mustRun(c, T)
	wantT := append(slices.Clone(old), "oTwice")
	equalSets(t, "recipients at T", w.recipients(c.Template.ID), wantT)
	m := w.messageTo("oOld00", c.Template.ID)
	if want := map[string]string{"character_string1": "o-old-0", "amount2": "¥12.50", "thing3": "保温杯", "thing4": "订单待支付，请尽快完成付款"}; !mapsEqual(m.Data, want) {
		t.Errorf("oOld00 data = %v, want %v", m.Data, want)
	}
	if rep, _ := r.report(twice2); rep.Outcome != wx.Skipped || rep.Reason != wx.ReasonPerUserPerRun {
		t.Errorf("second grant of oTwice at T: %s %q, want skipped by in-run dedup", rep.Outcome, rep.Reason)
	}

	// T+5m, another occurrence: nothing fires again, the young orders are
	// only 15 minutes old.
	r = w.mustRun(c, T.Add(5*time.Minute))
	if n := r.sum.Counts[wx.Sent]; n != 0 {
		t.Errorf("sent at T+5m = %d, want 0 (summary %+v)", n, r.sum)
	}
	if rep, _ := r.report(twice2); rep.Outcome != wx.Skipped || rep.Reason != wx.ReasonCappedUserTemplate || rep.Detail != "user_template 1/24h" {
		t.Errorf("second grant of oTwice at T+5m: %s %q, want capped", rep.Outcome, rep.Reason)
	}
	equalSets(t, "recipients after T+5m", w.recipients(c.Template.ID), wantT)

	// T+25m: the young orders are 35 minutes old now.
	w.mustRun(c, T.Add(25*time.Minute))
	equalSets(t, "recipients after T+25m", w.recipients(c.Template.ID), append(wantT, young...))
	// The young ones paying would not have mattered any more; one more
	// tick sends nothing.
	r = w.mustRun(c, T.Add(30*time.Minute))
	if n := r.sum.Counts[wx.Sent]; n != 0 {
		t.Errorf("sent at T+30m = %d, want 0", n)
	}
	noDuplicates(t, w.sim)
}

// simpleCampaign is a campaign on tpl without facts whose rule takes every
// grant; extra YAML is appended.
func simpleCampaign(t testing.TB, name, tpl, extra string) *campaigns.Campaign {
	return parseCampaign(t, fmt.Sprintf(`name: %s
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: %s
  kind: one_time
when: "true"
data:
  thing1: '"新品上架通知"'
%s`, name, tpl, extra))
}

func testUserCapAcrossCampaigns(t *testing.T, nc storetest.NamedConfig) {
	a := simpleCampaign(t, "news-a", "tplNewsA", "limits:\n  - {scope: user, max: 1, window: 24h}\n")
	b := simpleCampaign(t, "news-b", "tplNewsB", "limits:\n  - {scope: user, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(a), simTemplate(b))
	var users []string
	for i := range 12 {
		u := fmt.Sprintf("oCap%02d", i)
		users = append(users, u)
		w.subscribe(u, a.Template.ID, "", nil, true)
		w.subscribe(u, b.Template.ID, "", nil, true)
	}
	T := at(3, 10, 0)
	ra := w.mustRun(a, T)
	if ra.sum.Counts[wx.Sent] != 12 {
		t.Fatalf("campaign a: %+v", ra.sum)
	}
	rb := w.mustRun(b, T.Add(5*time.Minute))
	if rb.sum.Counts[wx.Sent] != 0 || rb.sum.Looked != 12 {
		t.Errorf("campaign b summary = %+v, want 12 looked, 0 sent", rb.sum)
	}
	for _, rep := range rb.reports {
		if rep.Outcome != wx.Skipped || rep.Reason != wx.ReasonCappedUser || rep.Detail != "user 1/24h" {
			t.Errorf("campaign b grant %d: %s %q, want skipped capped_user: user 1/24h", rep.GrantID, rep.Outcome, rep.Why())
		}
	}
	if got := w.recipients(b.Template.ID); len(got) != 0 {
		t.Errorf("campaign b delivered to %v", got)
	}
	// Capped grants stay available: after the window b reaches everyone.
	if got := len(w.available(b.Template.ID)); got != 12 {
		t.Errorf("b grants available = %d, want 12", got)
	}
	rb = w.mustRun(b, T.Add(24*time.Hour+5*time.Minute))
	if rb.sum.Counts[wx.Sent] != 12 {
		t.Errorf("campaign b a day later: %+v", rb.sum)
	}
	equalSets(t, "b recipients a day later", w.recipients(b.Template.ID), users)
	noDuplicates(t, w.sim)
}

func testCapConcurrentRuns(t *testing.T, nc storetest.NamedConfig) {
	c := simpleCampaign(t, "flash", "tplFlash", "batch_size: 10\nlimits:\n  - {scope: user, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	var users []string
	for i := range 15 {
		u := fmt.Sprintf("oRace%02d", i)
		users = append(users, u)
		for range 3 {
			w.subscribe(u, c.Template.ID, "", nil, true)
		}
	}
	engines := []*engine.Engine{w.eng, w.newEngine("e2e-b")}
	T := at(3, 10, 0)
	w.clock.Set(T)
	results := make([]runResult, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			when := T.Add(time.Duration(i) * time.Minute)
			results[i] = runWith(w.ctx, engines[i%2], c, engine.Options{At: when})
		}()
	}
	wg.Wait()
	sent := 0
	for i, r := range results {
		if r.err != nil {
			t.Errorf("run %d: %v", i, r.err)
		}
		sent += r.sum.Counts[wx.Sent]
	}
	// The cap allows one message per user in 24h, whatever runs race.
	equalSets(t, "recipients", w.recipients(c.Template.ID), users)
	if sent != len(users) {
		t.Errorf("sent over all runs = %d, want %d", sent, len(users))
	}
	if got := len(w.available(c.Template.ID)); got != 2*len(users) {
		t.Errorf("available = %d, want %d", got, 2*len(users))
	}
}

func testQuietHours(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 9\nquiet_hours: {from: \"22:00\", to: \"08:00\", action: defer}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oQuiet", 30, nil)
	want := eligibleOpenIDs(us)

	night := w.mustRun(c, at(3, 23, 0))
	if n := len(w.sim.Messages()); n != 0 {
		t.Fatalf("delivered %d messages in quiet hours", n)
	}
	for _, u := range us {
		rep, _ := night.report(u.grant)
		if u.eligible() && (rep.Outcome != wx.Deferred || rep.Why() != "quiet_hours: until 08:00") {
			t.Errorf("grant %d at 23:00: %s %q, want deferred \"quiet hours until 08:00\"", u.grant, rep.Outcome, rep.Reason)
		}
		if !u.eligible() && rep.Outcome != wx.Skipped {
			t.Errorf("grant %d at 23:00: %s %q, want skipped", u.grant, rep.Outcome, rep.Reason)
		}
	}
	if night.sum.Counts[wx.Deferred] != len(want) {
		t.Errorf("deferred = %d, want %d", night.sum.Counts[wx.Deferred], len(want))
	}
	if got := len(w.available(c.Template.ID)); got != len(us) {
		t.Errorf("available after the night run = %d, want %d (deferred grants stay)", got, len(us))
	}
	// 07:59 is still quiet; 08:00 is the first tick after the window.
	w.mustRun(c, at(4, 7, 50))
	if n := len(w.sim.Messages()); n != 0 {
		t.Fatalf("delivered %d messages at 07:50", n)
	}
	morning := w.mustRun(c, at(4, 8, 0))
	if morning.sum.Counts[wx.Sent] != len(want) {
		t.Errorf("sent at 08:00 = %d, want %d", morning.sum.Counts[wx.Sent], len(want))
	}
	equalSets(t, "recipients at 08:00", w.recipients(c.Template.ID), want)
	w.checkPriceMessages(c.Template.ID, us)
	noDuplicates(t, w.sim)
}

func testSameTickTwice(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oTick", 20, nil)
	want := eligibleOpenIDs(us)
	T := at(3, 10, 0)
	w.mustRun(c, T)
	equalSets(t, "first run", w.recipients(c.Template.ID), want)

	// A new eligible grant arrives; the same tick again does nothing.
	late := w.subscribe("oLate", c.Template.ID, "p1", map[string]any{"saved_price": "20.00"}, true)
	r := w.run(nil, c, T, false)
	if !errors.Is(r.err, engine.ErrAlreadyRun) {
		t.Fatalf("second run at the same tick: err = %v, want ErrAlreadyRun", r.err)
	}
	if r.sum.Looked != 0 || len(r.reports) != 0 {
		t.Errorf("second run looked at %d grants", r.sum.Looked)
	}
	// Another engine (another process) gets the same answer.
	r = w.run(w.newEngine("e2e-b"), c, T, false)
	if !errors.Is(r.err, engine.ErrAlreadyRun) {
		t.Fatalf("other engine at the same tick: err = %v, want ErrAlreadyRun", r.err)
	}
	equalSets(t, "after the repeated tick", w.recipients(c.Template.ID), want)
	// The next tick sends the late grant only.
	r = w.mustRun(c, T.Add(10*time.Minute))
	if rep, _ := r.report(late); rep.Outcome != wx.Sent || r.sum.Counts[wx.Sent] != 1 {
		t.Errorf("next tick: late grant %s %q, summary %+v", rep.Outcome, rep.Reason, r.sum)
	}
	noDuplicates(t, w.sim)
}

func testTwoEnginesRace(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 6\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	a, b := w.eng, w.newEngine("e2e-b")
	var want []string
	for tick := range 3 {
		us := w.seedPriceUsers(c.Template.ID, fmt.Sprintf("oRace%d_", tick), 20, nil)
		want = append(want, eligibleOpenIDs(us)...)
		when := at(3, 10, 10*tick)
		w.clock.Set(when)
		var ra, rb runResult
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); ra = runWith(w.ctx, a, c, engine.Options{At: when}) }()
		go func() { defer wg.Done(); rb = runWith(w.ctx, b, c, engine.Options{At: when}) }()
		wg.Wait()
		okA, okB := ra.err == nil, rb.err == nil
		if okA == okB {
			t.Fatalf("tick %d: errors %v and %v, want exactly one ErrAlreadyRun", tick, ra.err, rb.err)
		}
		for _, r := range []runResult{ra, rb} {
			if r.err != nil && !errors.Is(r.err, engine.ErrAlreadyRun) {
				t.Fatalf("tick %d: %v", tick, r.err)
			}
		}
		equalSets(t, fmt.Sprintf("recipients after tick %d", tick), w.recipients(c.Template.ID), want)
	}
	noDuplicates(t, w.sim)
}

func testGrantGone(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 8\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	// Users 0 and 4 (both eligible) have a grant in the store but their
	// credit is gone at WeChat (used up elsewhere, or cancelled).
	gone := func(i int) bool { return i == 0 || i == 4 }
	us := w.seedPriceUsers(c.Template.ID, "oGone", 30, gone)
	var want []string
	var goneGrants []int64
	for i, u := range us {
		switch {
		case gone(i):
			if !u.eligible() {
				t.Fatalf("bad fixture: user %d is not eligible", i)
			}
			goneGrants = append(goneGrants, u.grant)
		case u.eligible():
			want = append(want, u.openid)
		}
	}
	r := w.mustRun(c, at(3, 10, 0))
	if r.sum.Status != "done" {
		t.Errorf("status = %q, want done", r.sum.Status)
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	avail := w.available(c.Template.ID)
	for _, id := range goneGrants {
		rep, _ := r.report(id)
		if rep.Outcome != wx.Failed || rep.Reason != wx.ReasonWeChat43101 || !strings.HasPrefix(rep.Detail, "43101") {
			t.Errorf("grant %d: %s %q, want failed 43101", id, rep.Outcome, rep.Reason)
		}
		if slices.Contains(avail, id) {
			t.Errorf("grant %d is still available after 43101", id)
		}
	}
	if r.sum.Counts[wx.Failed] != 2 || r.sum.Counts[wx.Sent] != len(want) {
		t.Errorf("summary = %+v", r.sum)
	}
	// A later run does not try them again.
	r = w.mustRun(c, at(3, 10, 10))
	if r.sum.Counts[wx.Failed] != 0 || r.sum.Counts[wx.Sent] != 0 {
		t.Errorf("later run = %+v", r.sum)
	}
	if n := w.sim.Stats().Errors[43101]; n != 2 {
		t.Errorf("43101 answers = %d, want 2", n)
	}
}

func testPreviewMatchesSend(t *testing.T, nc storetest.NamedConfig) {
	// The campaign has every kind of skip: rule false, in-run dedup, a
	// user cap that another campaign already used (2-day window), and a
	// global template cap that runs out across batches.
	previewMatchesSend(t, nc, `batch_size: 6
limits:
  - {scope: user, max: 1, window: 2d}
  - {scope: template, max: 9, window: 24h}
`)
}

func testPreviewOverlappingLimits(t *testing.T, nc storetest.NamedConfig) {
	// Two limits of one scope and window are one take per message, in a
	// preview as in a live run.
	previewMatchesSend(t, nc, `batch_size: 6
limits:
  - {scope: user, max: 1, window: 2d}
  - {scope: template, max: 9, window: 24h}
  - {scope: template, max: 12, window: 24h}
`)
}

func previewMatchesSend(t *testing.T, nc storetest.NamedConfig, limits string) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", limits)
	warm := simpleCampaign(t, "warm-up", "tplWarm", "limits:\n  - {scope: user, max: 1, window: 2d}\n")
	w := newWorld(t, nc, simTemplate(c), simTemplate(warm))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oPrev", 40, nil)
	// Users 0 and 3 (eligible) subscribed twice: one message per run.
	w.seedPriceUsers(c.Template.ID, "oPrev", 4, func(int) bool { return true })
	w.sim.AddCredits("oPrev000", c.Template.ID, 1)
	w.sim.AddCredits("oPrev003", c.Template.ID, 1)
	// Users 3 and 8 (both eligible) got another campaign's message
	// yesterday: the 2-day user cap holds them back.
	for _, u := range []string{"oPrev003", "oPrev008"} {
		w.subscribe(u, warm.Template.ID, "", nil, true)
	}
	w.mustRun(warm, at(2, 12, 0))
	T := at(3, 10, 0)

	before := w.tableDump()
	msgs := len(w.sim.Messages())
	preview := w.run(nil, c, T, true)
	if preview.err != nil {
		t.Fatalf("preview: %v", preview.err)
	}
	after := w.tableDump()
	for tb, dump := range before {
		if after[tb] != dump {
			t.Errorf("preview wrote to table %s:\nbefore %s\nafter  %s", tb, dump, after[tb])
		}
	}
	if len(after) != len(before) {
		t.Errorf("tables before %d, after %d", len(before), len(after))
	}
	if n := len(w.sim.Messages()); n != msgs {
		t.Errorf("preview sent %d messages", n-msgs)
	}
	if preview.sum.Status != "preview" || !preview.sum.DryRun {
		t.Errorf("preview summary = %+v", preview.sum)
	}

	// The same preview counting only the repeat users from the first
	// batch on (a long preview's memory saver) decides alike.
	leanEngine := w.newEngine("e2e-lean")
	engine.SetRepeatAfter(leanEngine, 0)
	lean := w.run(leanEngine, c, T, true)
	if lean.err != nil {
		t.Fatalf("preview counting repeat users only: %v", lean.err)
	}

	send := w.mustRun(c, T)
	if len(lean.reports) != len(send.reports) {
		t.Fatalf("preview counting repeat users only reported %d grants, send %d", len(lean.reports), len(send.reports))
	}
	if len(preview.reports) != len(send.reports) || len(send.reports) != len(us)+4 {
		t.Fatalf("preview reported %d grants, send %d, want %d", len(preview.reports), len(send.reports), len(us)+4)
	}
	sendBy := map[int64]engine.GrantReport{}
	for _, r := range send.reports {
		sendBy[r.GrantID] = r
	}
	reasons := map[string]bool{}
	for _, p := range lean.reports {
		if s := sendBy[p.GrantID]; p.Outcome != s.Outcome || p.Reason != s.Reason || p.Detail != s.Detail {
			t.Errorf("grant %d (%s): preview counting repeat users only %s %q, send %s %q", p.GrantID, p.OpenID, p.Outcome, p.Why(), s.Outcome, s.Why())
		}
	}
	for _, p := range preview.reports {
		s := sendBy[p.GrantID]
		if p.Outcome != s.Outcome || p.Reason != s.Reason || p.Detail != s.Detail {
			t.Errorf("grant %d (%s): preview %s %q, send %s %q", p.GrantID, p.OpenID, p.Outcome, p.Why(), s.Outcome, s.Why())
		}
		if p.Outcome == wx.Sent && !mapsEqual(p.Data, s.Data) {
			t.Errorf("grant %d: preview data %v, send data %v", p.GrantID, p.Data, s.Data)
		}
		reasons[string(s.Outcome)+": "+s.Why()] = true
	}
	// The fixture must really exercise each kind of skip.
	for _, want := range []string{"sent: ok", "skipped: rule_false", "skipped: capped_user: user 1/2d", "skipped: capped_template: template 9/24h",
		"skipped: per_user_per_run"} {
		if !reasons[want] {
			t.Errorf("no grant ended %q; reasons: %v", want, send.sum.Reasons)
		}
	}
	if send.sum.Counts[wx.Sent] != 9 || len(w.recipients(c.Template.ID)) != 9 {
		t.Errorf("sent %d (delivered %d), want 9 (the template cap)", send.sum.Counts[wx.Sent], len(w.recipients(c.Template.ID)))
	}
}

func testMisconfiguredTemplate(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplNotAtWeChat", "batch_size: 5\nlimits:\n  - {scope: user, max: 1, window: 24h}\n")
	w := newWorld(t, nc) // the simulator knows no template
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oMis", 20, nil)
	all := w.available(c.Template.ID)
	r := w.run(nil, c, at(3, 10, 0), false)
	var se *engine.StopError
	if !errors.As(r.err, &se) {
		t.Fatalf("run: err = %v, want a StopError", r.err)
	}
	if !strings.Contains(se.Reason, "40037") || !strings.Contains(se.Reason, "price-drop") {
		t.Errorf("stop reason %q does not name the campaign and 40037", se.Reason)
	}
	if r.sum.Status != "stopped" || r.sum.Counts[wx.Sent] != 0 {
		t.Errorf("summary = %+v", r.sum)
	}
	if n := len(w.sim.Messages()); n != 0 {
		t.Errorf("delivered %d", n)
	}
	// Nothing consumed, no send recorded (a send_log row is also the cap take).
	if got := w.available(c.Template.ID); !slices.Equal(got, all) || len(all) != len(us) {
		t.Errorf("available after the stop = %v, want all %v", got, all)
	}
	for _, q := range []string{"SELECT COUNT(*) FROM send_log", "SELECT COUNT(*) FROM grants WHERE status <> 'active'"} {
		var n int
		if err := w.db.SQLX().GetContext(w.ctx, &n, q); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s = %d, want 0", q, n)
		}
	}
}

func testQuotaPause(t *testing.T, nc storetest.NamedConfig) {
	// The cap must be given back for every grant the pause held back, or
	// the next morning (within 24h) would find them capped.
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 8\nlimits:\n  - {scope: user_template, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oQuota", 60, nil)
	want := eligibleOpenIDs(us)
	const quota = 15
	if len(want) <= quota || len(want) > 2*quota {
		t.Fatalf("bad fixture: %d eligible", len(want))
	}
	w.sim.SetFaults(wxsim.Faults{QuotaAfter: quota})

	r := w.mustRun(c, at(3, 10, 0))
	if !strings.HasPrefix(r.sum.Status, "paused until 2024-06-04T00:00:00+08:00") {
		t.Errorf("status = %q, want paused until midnight in Shanghai", r.sum.Status)
	}
	if got := len(w.recipients(c.Template.ID)); got != quota || r.sum.Counts[wx.Sent] != quota {
		t.Fatalf("delivered %d, reported sent %d, want %d", got, r.sum.Counts[wx.Sent], quota)
	}
	if r.sum.Reasons["deferred: quota_paused"] == 0 {
		t.Errorf("no grant deferred by 45009: %v", r.sum.Reasons)
	}
	remaining := len(us) - quota
	if got := len(w.available(c.Template.ID)); got != remaining {
		t.Errorf("available after the pause = %d, want %d", got, remaining)
	}

	// Later the same day, on another engine: the pause is shared and
	// nothing is sent (nor even tried).
	reqs := w.sim.Stats().Requests
	r = w.run(w.newEngine("e2e-b"), c, at(3, 10, 10), false)
	if r.err != nil || !strings.HasPrefix(r.sum.Status, "paused until") || r.sum.Counts[wx.Sent] != 0 {
		t.Errorf("run in the pause: err %v, summary %+v", r.err, r.sum)
	}
	if n := w.sim.Stats().Requests; n != reqs {
		t.Errorf("%d send requests during the pause", n-reqs)
	}

	// A new quota day: the rest goes out, once.
	w.sim.ResetQuota()
	r = w.mustRun(c, at(4, 8, 0))
	if r.sum.Status != "done" || r.sum.Counts[wx.Sent] != len(want)-quota {
		t.Errorf("next day: summary %+v, want %d sent", r.sum, len(want)-quota)
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	w.checkPriceMessages(c.Template.ID, us)
	noDuplicates(t, w.sim)
}

func testRetryableFaults(t *testing.T, nc storetest.NamedConfig) {
	// A deferred grant's cap is given back, or the next tick would find it
	// capped.
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 16\nlimits:\n  - {scope: user_template, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oFault", 100, nil)
	want := eligibleOpenIDs(us)
	w.sim.SetFaults(wxsim.Faults{SystemBusy: 0.3, HTTP503: 0.2, Seed: 42})

	// A grant whose five tries all fail (p ≈ 0.44^5) is deferred and
	// stays available; the next tick takes it. Each grant is delivered
	// exactly once.
	sent := 0
	for tick := range 6 {
		r := w.mustRun(c, at(3, 10, 10*tick))
		sent += r.sum.Counts[wx.Sent]
		for reason, n := range r.sum.Reasons {
			if !strings.HasPrefix(reason, "sent:") && reason != "skipped: rule_false" && reason != "deferred: retries_exhausted" {
				t.Errorf("tick %d: %d grants ended %q", tick, n, reason)
			}
		}
		if sent == len(want) {
			break
		}
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	if sent != len(want) {
		t.Errorf("reported sent %d, want %d", sent, len(want))
	}
	w.checkPriceMessages(c.Template.ID, us)
	noDuplicates(t, w.sim)
	st := w.sim.Stats()
	if st.Errors[-1] == 0 || st.HTTP[503] == 0 {
		t.Errorf("faults were not injected: %+v", st)
	}
	if st.Overlaps != 0 {
		t.Errorf("%d concurrent sends to one openid (43108)", st.Overlaps)
	}
}

func testTokenExpiry(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 10\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oTok", 100, nil)
	want := eligibleOpenIDs(us)
	// WeChat expires the token in use after every 20 deliveries: the
	// client drops it (also from the shared store), fetches another and
	// retries once. (Far more often, a retry could meet the next expiry
	// too, which the engine rightly takes for a configuration error.)
	w.sim.SetFaults(wxsim.Faults{ExpireTokenEvery: 20})
	r := w.mustRun(c, at(3, 10, 0))
	if r.sum.Counts[wx.Sent] != len(want) || r.sum.Status != "done" {
		t.Errorf("summary = %+v, want %d sent", r.sum, len(want))
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	noDuplicates(t, w.sim)
	st := w.sim.Stats()
	if st.Errors[42001] == 0 || st.TokensIssued < int64(len(want)/20)+1 {
		t.Errorf("token expiry not exercised: %+v", st)
	}
}

func testAmbiguousTimeout(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 10\n")
	w := newWorld(t, nc, simTemplate(c))
	w.timeout = 300 * time.Millisecond
	w.eng = w.newEngine("e2e-short-timeout")
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oAmb", 40, nil)
	want := eligibleOpenIDs(us)
	// A quarter of the deliveries have their reply held past the client's
	// timeout: the message arrived, the engine cannot know. It must not
	// retry (a second message) and must consume the grant as unknown.
	w.sim.SetFaults(wxsim.Faults{WithholdAfterDeliver: 0.25, WithholdFor: 5 * time.Second, Seed: 3})
	r := w.mustRun(c, at(3, 10, 0))
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	noDuplicates(t, w.sim)
	unknown := r.sum.Counts[wx.Unknown]
	if withheld := int(w.sim.Stats().Withheld); unknown < withheld || withheld == 0 {
		t.Errorf("unknown = %d, withheld replies = %d", unknown, withheld)
	}
	if unknown+r.sum.Counts[wx.Sent] != len(want) {
		t.Errorf("summary = %+v, want sent+unknown = %d", r.sum, len(want))
	}
	avail := w.available(c.Template.ID)
	for _, rep := range r.reports {
		if rep.Outcome == wx.Unknown && slices.Contains(avail, rep.GrantID) {
			t.Errorf("grant %d ended unknown and is still available", rep.GrantID)
		}
	}
	// The next tick sends nothing more.
	r = w.mustRun(c, at(3, 10, 10))
	if r.sum.Counts[wx.Sent]+r.sum.Counts[wx.Unknown] != 0 {
		t.Errorf("next tick = %+v", r.sum)
	}
	noDuplicates(t, w.sim)
}

// testAmbiguousHold: after a send to a user that may have arrived (its
// reply held past the client's timeout), the user's next grant is not sent
// in that run (WeChat may still be processing the first: 43108); it is
// deferred, still available, and a run after the hold sends it.
func testAmbiguousHold(t *testing.T, nc storetest.NamedConfig) {
	c := simpleCampaign(t, "news", "tplNews", "batch_size: 10\nper_user_per_run: 0\n")
	w := newWorld(t, nc, simTemplate(c))
	w.timeout = 300 * time.Millisecond
	w.eng = w.newEngine("e2e-hold")
	first := w.subscribe("oHold", c.Template.ID, "", nil, true)
	second := w.subscribe("oHold", c.Template.ID, "", nil, true)
	w.sim.SetFaults(wxsim.Faults{WithholdAfterDeliver: 1, WithholdFor: 2 * time.Second})
	r := w.mustRun(c, at(3, 10, 0))
	if rep, _ := r.report(first); rep.Outcome != wx.Unknown || rep.Reason != wx.ReasonAmbiguous {
		t.Errorf("first grant: %s %s, want unknown ambiguous", rep.Outcome, rep.Why())
	}
	if rep, _ := r.report(second); rep.Outcome != wx.Deferred || rep.Reason != wx.ReasonAmbiguousHold {
		t.Errorf("second grant: %s %s, want deferred ambiguous_hold", rep.Outcome, rep.Why())
	}
	if st := w.sim.Stats(); st.Requests != 1 || st.Overlaps != 0 {
		t.Errorf("simulator saw %d requests, %d overlapping, want 1 and 0", st.Requests, st.Overlaps)
	}
	if !slices.Contains(w.available(c.Template.ID), second) {
		t.Errorf("the held grant is not available")
	}
	w.sim.SetFaults(wxsim.Faults{})
	r = w.mustRun(c, at(3, 10, 5)) // the hold (1 min) has passed
	if rep, _ := r.report(second); rep.Outcome != wx.Sent {
		t.Errorf("second grant after the hold: %s %s, want sent", rep.Outcome, rep.Why())
	}
}

// checkSettled asserts that an interrupted run left nothing half-done: no
// send in flight (the send_log row is the claim), exactly one cap take per delivered
// message, and every consumed grant delivered.
func (w *world) checkSettled(tpl string) {
	w.t.Helper()
	delivered := len(w.recipients(tpl))
	if n := w.count("SELECT COUNT(*) FROM send_log WHERE status = 'inflight'"); n != 0 {
		w.t.Errorf("%d sends left in flight", n)
	}
	// A cap take is a send_log row that went out or may have.
	if n := w.count("SELECT COUNT(*) FROM send_log WHERE scopes <> 0 AND status IN ('inflight', 'sent', 'unknown')"); n != delivered {
		w.t.Errorf("cap takes = %d, delivered = %d", n, delivered)
	}
	if n := w.count("SELECT COUNT(*) FROM grants WHERE status = 'consumed'"); n != delivered {
		w.t.Errorf("consumed grants = %d, delivered = %d", n, delivered)
	}
}

func testShutdownMidDispatch(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 10\nlimits:\n  - {scope: user_template, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oStop", 80, nil)
	want := eligibleOpenIDs(us)
	w.sim.SetFaults(wxsim.Faults{Latency: 20 * time.Millisecond})
	T := at(3, 10, 0)
	w.clock.Set(T)
	ctx, cancel := context.WithCancel(w.ctx)
	defer cancel()
	go func() { // SIGTERM once some messages are out
		for len(w.sim.Messages()) < 5 && ctx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	r := runWith(ctx, w.eng, c, engine.Options{At: T})
	if r.err == nil || r.sum.Status != "interrupted" {
		t.Fatalf("interrupted run: err %v, status %q", r.err, r.sum.Status)
	}
	got := len(w.recipients(c.Template.ID))
	if got == 0 || got == len(want) {
		t.Fatalf("delivered %d of %d before the stop: the test did not stop mid-run", got, len(want))
	}
	if r.sum.Counts[wx.Sent] != got {
		t.Errorf("reported sent %d, delivered %d", r.sum.Counts[wx.Sent], got)
	}
	w.checkSettled(c.Template.ID)
	// The same tick resumes from its checkpoint, on another engine at once.
	w.sim.SetFaults(wxsim.Faults{})
	r = w.run(w.newEngine("e2e-b"), c, T, false)
	if r.err != nil || r.sum.Status != "done" {
		t.Fatalf("resumed run: err %v, summary %+v", r.err, r.sum)
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	noDuplicates(t, w.sim)
}

func testShutdownMidClaim(t *testing.T, nc storetest.NamedConfig) {
	c := priceCampaign(t, "price-drop", "tplPriceDrop", "batch_size: 10\nlimits:\n  - {scope: user_template, max: 1, window: 24h}\n")
	w := newWorld(t, nc, simTemplate(c))
	w.seedProducts()
	us := w.seedPriceUsers(c.Template.ID, "oStop", 60, nil)
	want := eligibleOpenIDs(us)
	T := at(3, 10, 0)
	w.clock.Set(T)
	// SIGTERM arrives while the second group of sends is being marked in
	// flight: the sends of that group go out, no later one starts.
	r, _ := w.runStopped("e2e-hook", c, T, func(hs *hookStore, stop func()) {
		hs.beforeBegin = func(n int) {
			if n == 2 {
				stop()
			}
		}
	})
	if r.err == nil || r.sum.Status != "interrupted" {
		t.Fatalf("interrupted run: err %v, status %q", r.err, r.sum.Status)
	}
	w.checkSettled(c.Template.ID)
	// Another engine takes the tick over at once and sends the rest.
	r = w.run(w.newEngine("e2e-b"), c, T, false)
	if r.err != nil || r.sum.Status != "done" {
		t.Fatalf("resumed run: err %v, summary %+v", r.err, r.sum)
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	noDuplicates(t, w.sim)
}

func testConcurrentCampaignsOneUser(t *testing.T, nc storetest.NamedConfig) {
	a := simpleCampaign(t, "news-a", "tplNewsA", "")
	b := simpleCampaign(t, "news-b", "tplNewsB", "")
	w := newWorld(t, nc, simTemplate(a), simTemplate(b))
	var users []string
	for i := range 24 {
		u := fmt.Sprintf("oBoth%02d", i)
		users = append(users, u)
		w.subscribe(u, a.Template.ID, "", nil, true)
		w.subscribe(u, b.Template.ID, "", nil, true)
	}
	w.sim.SetFaults(wxsim.Faults{Latency: 10 * time.Millisecond})
	T := at(3, 10, 0)
	w.clock.Set(T)
	var ra, rb runResult
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ra = runWith(w.ctx, w.eng, a, engine.Options{At: T}) }()
	go func() { defer wg.Done(); rb = runWith(w.ctx, w.eng, b, engine.Options{At: T}) }()
	wg.Wait()
	if ra.err != nil || rb.err != nil {
		t.Fatalf("runs: %v, %v", ra.err, rb.err)
	}
	equalSets(t, "a recipients", w.recipients(a.Template.ID), users)
	equalSets(t, "b recipients", w.recipients(b.Template.ID), users)
	// Two campaigns of one engine never have two sends in flight to one
	// openid (WeChat answers 43108).
	if n := w.sim.Stats().Overlaps; n != 0 {
		t.Errorf("%d sends overlapped another send to the same openid (43108)", n)
	}
}

// testManyGrantsOneUser: with per_user_per_run 0 a user's every grant is
// sent in one run, in grant order (as preview decided them), and the
// workers (one shared queue) never have two sends to one openid in flight
// (WeChat answers 43108). Each user has four grants and four credits, so a
// lost or a doubled send shows in the counts.
func testManyGrantsOneUser(t *testing.T, nc storetest.NamedConfig) {
	c := parseCampaign(t, `name: news-many
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: tplNewsMany
  kind: one_time
  page: '"pages/news?g=" + grant.biz_no'
when: "true"
data:
  thing1: '"新品上架通知"'
per_user_per_run: 0
batch_size: 7
`)
	w := newWorld(t, nc, simTemplate(c))
	const users, each = 12, 4
	// A user's grants are next to each other: one batch, dispatched one
	// after another to free workers.
	for u := range users {
		for g := range each {
			w.subscribe(fmt.Sprintf("oMany%02d", u), c.Template.ID, fmt.Sprint(g), nil, true)
		}
	}
	w.sim.SetFaults(wxsim.Faults{Latency: 5 * time.Millisecond})
	r := w.mustRun(c, at(3, 10, 0))
	if got := r.sum.Counts[wx.Sent]; got != users*each {
		t.Errorf("sent %d, want %d (summary %+v)", got, users*each, r.sum)
	}
	per := map[string][]string{}
	for _, m := range w.sim.Messages() {
		per[m.ToUser] = append(per[m.ToUser], strings.TrimPrefix(m.Page, "pages/news?g="))
	}
	for u := range users {
		if got := strings.Join(per[fmt.Sprintf("oMany%02d", u)], ","); got != "0,1,2,3" {
			t.Errorf("oMany%02d got grants %q in this order, want 0,1,2,3", u, got)
		}
	}
	if n := w.sim.Stats().Overlaps; n != 0 {
		t.Errorf("%d sends overlapped another send to the same openid (43108)", n)
	}
	if left := w.available(c.Template.ID); len(left) != 0 {
		t.Errorf("%d grants still available, want 0", len(left))
	}
}

// testCheckpointCadence: the checkpoint moves with the first batch and then
// every eighth (the clock stands still here), not with each batch, and a
// run resumed from it sends what is left exactly once.
func testCheckpointCadence(t *testing.T, nc storetest.NamedConfig) {
	c := simpleCampaign(t, "news-cp", "tplNewsCP", "batch_size: 2\n")
	w := newWorld(t, nc, simTemplate(c))
	var want []string
	for u := range 40 {
		id := fmt.Sprintf("oCP%02d", u)
		want = append(want, id)
		w.subscribe(id, c.Template.ID, "", nil, true)
	}
	T := at(3, 10, 0)
	w.clock.Set(T)
	// Stopped while the 12th batch is being recorded: batches 1 and 9
	// moved the checkpoint, the later ones are recorded without.
	r, hs := w.runStopped("e2e-cp", c, T, func(hs *hookStore, stop func()) {
		hs.beforeFinish = func(n int) {
			if n == 12 {
				stop()
			}
		}
	})
	if r.err == nil {
		t.Fatalf("run was not interrupted: %+v", r.sum)
	}
	if hs.checkpoints != 2 || hs.finishes < 12 {
		t.Errorf("%d batches recorded, %d moved the checkpoint; want batches 1 and 9", hs.finishes, hs.checkpoints)
	}
	var cp int64
	if err := w.db.SQLX().GetContext(w.ctx, &cp, w.db.SQLX().Rebind("SELECT checkpoint FROM runs WHERE campaign = ?"), c.Name); err != nil {
		t.Fatal(err)
	}
	if got := len(w.recipients(c.Template.ID)); cp == 0 || int(cp) >= got {
		t.Errorf("checkpoint at grant %d with %d sent: want it behind the recorded batches", cp, got)
	}
	r = w.run(w.newEngine("e2e-cp2"), c, T, false)
	if r.err != nil || r.sum.Status != "done" {
		t.Fatalf("resumed run: err %v, summary %+v", r.err, r.sum)
	}
	equalSets(t, "recipients", w.recipients(c.Template.ID), want)
	noDuplicates(t, w.sim)
}
