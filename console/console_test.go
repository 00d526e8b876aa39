package console_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func post(t *testing.T, c *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := c.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the page")
	}
	return m[1]
}

// TestAccess: sessions, roles and CSRF on a real store of each driver.
func TestAccess(t *testing.T) {
	testenv.EachConfig(t, func(t *testing.T, cfg store.Config) {
		w := newWorld(t, cfg)
		ctx := context.Background()
		anon := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		if code, _ := get(t, anon, w.srv.URL+"/campaigns"); code != http.StatusSeeOther {
			t.Errorf("anonymous GET /campaigns: %d, want 303 to the login form", code)
		}
		if code, body := post(t, anon, w.srv.URL+"/campaigns/price-drop/pause", nil); code != http.StatusUnauthorized || !strings.Contains(body, "log in first") {
			t.Errorf("anonymous POST: %d", code)
		}
		// A login without the form's CSRF cookie is refused.
		if code, _ := post(t, anon, w.srv.URL+"/login", url.Values{"token": {operatorToken}}); code != http.StatusForbidden {
			t.Errorf("login without CSRF: %d", code)
		}

		viewer := w.login(t, viewerToken)
		code, page := get(t, viewer, w.srv.URL+"/campaigns/price-drop")
		if code != 200 || strings.Contains(page, `id="pause"`) || !strings.Contains(page, "Viewers cannot pause") {
			t.Fatalf("viewer's campaign page: %d", code)
		}
		code, body := post(t, viewer, w.srv.URL+"/campaigns/price-drop/pause", url.Values{"csrf": {csrfOf(t, page)}})
		if code != http.StatusForbidden || !strings.Contains(body, "only operators") {
			t.Errorf("viewer pause: %d", code)
		}

		op := w.login(t, operatorToken)
		_, page = get(t, op, w.srv.URL+"/campaigns/price-drop")
		if code, body := post(t, op, w.srv.URL+"/campaigns/price-drop/pause", url.Values{"reason": {"x"}}); code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("operator pause without CSRF: %d", code)
		}
		// Another session's token does not do either.
		_, vpage := get(t, viewer, w.srv.URL+"/campaigns/price-drop")
		if code, _ := post(t, op, w.srv.URL+"/campaigns/price-drop/pause", url.Values{"csrf": {csrfOf(t, vpage)}}); code != http.StatusForbidden {
			t.Errorf("operator pause with the viewer's CSRF token: %d", code)
		}
		if _, ok, _ := w.db.CampaignPaused(ctx, "price-drop"); ok {
			t.Fatal("a refused request paused the campaign")
		}
		if code, _ := post(t, op, w.srv.URL+"/campaigns/price-drop/pause", url.Values{"csrf": {csrfOf(t, page)}, "reason": {"stock check"}}); code != http.StatusSeeOther {
			t.Fatalf("operator pause: %d", code)
		}
		if code, body := post(t, op, w.srv.URL+"/campaigns/order-unpaid/pause", url.Values{"csrf": {csrfOf(t, page)}, "reason": {strings.Repeat("x", 256)}}); code != http.StatusBadRequest || !strings.Contains(body, "at most 255 bytes") {
			t.Errorf("a 256-byte reason: %d", code)
		}
		if code, _ := post(t, op, w.srv.URL+"/campaigns/order-unpaid/pause", url.Values{"csrf": {csrfOf(t, page)}, "reason": {strings.Repeat("x", 20<<10)}}); code != http.StatusForbidden && code != http.StatusBadRequest {
			t.Errorf("a 20 KB form: %d", code)
		}
		p, ok, err := w.db.CampaignPaused(ctx, "price-drop")
		if err != nil || !ok || p.PausedBy != "oscar" || p.Reason != "stock check" {
			t.Fatalf("pause = %+v %v %v", p, ok, err)
		}
		_, audit := get(t, viewer, w.srv.URL+"/audit")
		if !strings.Contains(audit, "oscar") || !strings.Contains(audit, "pause") || !strings.Contains(audit, "price-drop") {
			t.Error("the audit page does not show the pause")
		}
		// No token is ever rendered, on any page.
		for _, path := range []string{"/campaigns", "/campaigns/price-drop", "/campaigns/price-drop/preview", "/runs", "/runs/1", "/audit", "/login"} {
			_, body := get(t, op, w.srv.URL+path)
			if strings.Contains(body, operatorToken) || strings.Contains(body, viewerToken) || strings.Contains(body, "console-test-secret") {
				t.Errorf("%s renders a secret", path)
			}
		}
		// The quota pause: shown to everyone, cleared by an operator.
		if err := w.db.SetPause(ctx, "quota:wxconsoletest", w.at.Add(10*time.Hour), "45009 daily quota"); err != nil {
			t.Fatal(err)
		}
		_, vpage = get(t, viewer, w.srv.URL+"/campaigns")
		if !strings.Contains(vpage, "45009 daily quota") || strings.Contains(vpage, "/quota/clear") {
			t.Error("the viewer's campaigns page: quota pause not shown, or a clear button")
		}
		if code, _ := post(t, viewer, w.srv.URL+"/quota/clear", url.Values{"csrf": {csrfOf(t, vpage)}}); code != http.StatusForbidden {
			t.Errorf("viewer clears the quota pause: %d", code)
		}
		_, page = get(t, op, w.srv.URL+"/campaigns")
		if code, _ := post(t, op, w.srv.URL+"/quota/clear", url.Values{"csrf": {csrfOf(t, page)}}); code != http.StatusSeeOther {
			t.Errorf("operator clears the quota pause: %d", code)
		}
		if until, _, _ := w.db.PausedUntil(ctx, "quota:wxconsoletest", w.at); !until.IsZero() {
			t.Error("the quota pause is still there")
		}
		if code, _ := get(t, op, w.srv.URL+"/runs?before=x"); code != http.StatusBadRequest {
			t.Errorf("bad before: %d", code)
		}
		if code, _ := get(t, op, w.srv.URL+"/campaigns/nope"); code != http.StatusNotFound {
			t.Errorf("unknown campaign: %d", code)
		}
	})
}

func TestSessionCookie(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	c := &http.Client{Jar: newJar(t, w.srv.URL), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(w.srv.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csrf := c.Jar.(*jar).value("wxc_login")
	code, body := post(t, c, w.srv.URL+"/login", url.Values{"token": {"wrong-token-0123456789"}, "csrf": {csrf}})
	if code != http.StatusUnauthorized || !strings.Contains(body, "unknown console token") {
		t.Fatalf("bad token: %d", code)
	}
	csrf = c.Jar.(*jar).value("wxc_login")
	resp, err = c.PostForm(w.srv.URL+"/login", url.Values{"token": {operatorToken}, "csrf": {csrf}, "next": {"//evil.example/"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "/campaigns" {
		t.Errorf("open redirect: Location %q", loc)
	}
	var session *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "wxc_session" {
			session = ck
		}
	}
	if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode || strings.Contains(session.Value, operatorToken) {
		t.Fatalf("session cookie = %+v", session)
	}
	// A tampered session is no session.
	tampered := &http.Client{CheckRedirect: c.CheckRedirect}
	req, _ := http.NewRequest("GET", w.srv.URL+"/campaigns", nil)
	req.AddCookie(&http.Cookie{Name: "wxc_session", Value: strings.Replace(session.Value, "b3NjYXI", "dmVyYQ", 1)})
	resp, err = tampered.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("tampered session: %d", resp.StatusCode)
	}
}

// TestPagesWithManyRuns: with 10,000 runs of one campaign (reports
// included) and 10,000 audit entries, every page is paginated and answers
// fast (figures logged; the bound is loose for a shared CI machine).
func TestPagesWithManyRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("bulk data in -short mode")
	}
	testenv.EachConfig(t, func(t *testing.T, cfg store.Config) {
		w := newWorld(t, cfg)
		ctx := context.Background()
		report := `{"status":"done","looked":120,"counts":{"sent":4,"skipped":116},"reasons":{"sent: ok":4,"skipped: rule_false":116},"duration_ns":21000000,"messages_per_second":190.4,"replicas":["host-1"],"attempts":1}`
		const n = 10000
		for lo := 0; lo < n; lo += 500 {
			q := "INSERT INTO runs (campaign, occurrence, holder, lease_until, checkpoint, status, summary, report) VALUES "
			var args []any
			for i := lo; i < lo+500; i++ {
				if i > lo {
					q += ","
				}
				q += "(?,?,?,?,0,'done','done',?)"
				occ := w.at.Add(-24*time.Hour - time.Duration(n-i)*5*time.Minute).UTC().Format("2006-01-02 15:04:05.000000")
				args = append(args, "order-unpaid", occ, "host-1", occ, report)
			}
			if _, err := w.db.SQLX().ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
			q = "INSERT INTO audit (at, actor, action, target, detail) VALUES "
			args = args[:0]
			for i := lo; i < lo+500; i++ {
				if i > lo {
					q += ","
				}
				q += "(?,?,?,?,?)"
				args = append(args, w.at.UTC().Format("2006-01-02 15:04:05.000000"), "oscar", "pause", "order-unpaid", "")
			}
			if _, err := w.db.SQLX().ExecContext(ctx, q, args...); err != nil {
				t.Fatal(err)
			}
		}
		op := w.login(t, operatorToken)
		_, page := get(t, op, w.srv.URL+"/runs")
		m := regexp.MustCompile(`/runs\?before=(\d+)`).FindStringSubmatch(page)
		if m == nil {
			t.Fatal("no next page link on /runs")
		}
		for _, path := range []string{"/campaigns", "/campaigns/order-unpaid", "/runs", "/runs?before=" + m[1], "/runs?campaign=order-unpaid&before=500", "/audit", "/audit?before=5000", "/runs/5000"} {
			get(t, op, w.srv.URL+path) // warm
			start := time.Now()
			const reps = 5
			for range reps {
				if code, _ := get(t, op, w.srv.URL+path); code != 200 {
					t.Fatalf("%s: %d", path, code)
				}
			}
			d := time.Since(start) / reps
			t.Logf("%-40s %v", path, d.Round(100*time.Microsecond))
			if d > time.Second {
				t.Errorf("%s took %v", path, d)
			}
		}
		if _, body := get(t, op, w.srv.URL+"/runs"); strings.Count(body, `<tr><td><a href="/runs/`) != 50 {
			t.Error("the runs page does not show one page of 50")
		}
	})
}

// TestOneUser: the preview's one-user view gives every input of the
// decision of each of the user's grants.
func TestOneUser(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	op := w.login(t, viewerToken)
	cases := []struct {
		openid string
		want   []string
	}{
		{"oDemo0000000", []string{"User oDemo0000000: 2 grant(s)", `>true</code>`, "o-sent", "商品名称", "进入小程序查看", `&#34;price&#34;`, "user_template 0/1 per 24h"}},
		{"oDemo0000003", []string{"User oDemo0000003: ", `>false</code>`, "rule_false"}},
		{"nobody", []string{"No available grant of this template for this user."}},
	}
	for _, c := range cases {
		code, body := get(t, op, w.srv.URL+"/campaigns/price-drop/preview?openid="+c.openid)
		if code != 200 {
			t.Fatalf("%s: %d", c.openid, code)
		}
		for _, want := range c.want {
			if !strings.Contains(body, want) {
				i := strings.Index(body, "<h2>User")
				t.Errorf("%s: the page lacks %q\n%s", c.openid, want, body[max(i, 0):min(len(body), max(i, 0)+1500)])
			}
		}
	}
	// What a user received, from any campaign: WeChat's delivery events
	// joined to the send log for the campaign.
	var sent struct {
		MsgID  int64  `db:"msgid"`
		OpenID string `db:"openid"`
		Tmpl   string `db:"template_id"`
	}
	if err := w.db.SQLX().Get(&sent, "SELECT msgid, openid, template_id FROM send_log WHERE campaign = 'order-unpaid' AND msgid > 0 LIMIT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.db.RecordDeliveries(context.Background(), w.at, []store.Delivery{{MsgID: sent.MsgID, OpenID: sent.OpenID, TemplateID: sent.Tmpl, Status: "success", SentAt: w.at.Add(-time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, op, w.srv.URL+"/campaigns/price-drop/preview?openid="+sent.OpenID)
	if !strings.Contains(body, `<a href="/campaigns/order-unpaid">order-unpaid</a>`) || !strings.Contains(body, strconv.FormatInt(sent.MsgID, 10)) {
		t.Errorf("the user's received messages lack order-unpaid msgid %d", sent.MsgID)
	}
	if code, _ := get(t, op, w.srv.URL+"/campaigns/price-drop/preview?limit=0"); code != http.StatusBadRequest {
		t.Errorf("limit=0: %d", code)
	}
	if code, body := get(t, op, w.srv.URL+"/campaigns/price-drop/preview?at=yesterday"); code != http.StatusBadRequest || !strings.Contains(body, "RFC 3339") {
		t.Errorf("at=yesterday: %d", code)
	}
}
