package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/robfig/cron/v3"

	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/console"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// chromium returns the headless browser's path: /usr/bin/chromium (or
// WXC_CHROMIUM). Missing, the test skips, and fails under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	path := os.Getenv("WXC_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found at %s (CI=true: a missing browser is a failure; .ci/run installs it)", path)
		}
		t.Skipf("*** SKIPPING BROWSER TEST *** chromium not found at %s (apt-get install -y chromium)", path)
	}
	return path
}

// browser starts a headless Chromium with a fresh profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// shot saves a full-page screenshot to WXC_SCREENSHOTS (default: the
// test's temporary folder).
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WXC_SCREENSHOTS")
	if dir == "" {
		dir = t.TempDir()
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

func loginAs(base, token string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/campaigns"),
		chromedp.WaitVisible(css(`input[name=token]`)),
		chromedp.SendKeys(css(`input[name=token]`), token),
		chromedp.Click(css(`#login`)),
		chromedp.WaitVisible(css(`#campaigns`)),
	)
}

func css(s string) chromedp.CSS { return chromedp.CSS(s) }

// run runs one valued action with a time limit.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// do runs steps with a time limit.
func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func TestBrowser(t *testing.T) {
	ctx := browser(t)
	w := newWorld(t, storetest.SQLite(t))
	base := w.srv.URL

	t.Run("campaigns page lists the four examples with their next runs", func(t *testing.T) {
		do(t, ctx, loginAs(base, viewerToken))
		text := run(t, ctx, chromedp.Text(css(`#campaigns`)))
		for _, want := range []string{"activity-launched", "appointment-reminder", "order-unpaid", "price-drop",
			"活动上线通知", "商品降价提醒", "every 5 minutes", "Asia/Shanghai", "2026-11-22 10:35:00 CST", "2026-11-22 10:45:00 CST"} {
			if !strings.Contains(text, want) {
				t.Errorf("campaigns page lacks %q", want)
			}
		}
		if n := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#campaigns tbody tr[data-campaign]').length`)); n != 4 {
			t.Errorf("%d campaign rows, want 4", n)
		}
		shot(t, ctx, "console-campaigns")
	})

	t.Run("a viewer cannot pause", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(base+"/campaigns/order-unpaid"), chromedp.WaitVisible(css(`#viewer-note`)))
		shot(t, ctx, "console-campaign-viewer")
		buttons := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('#pause').length`))
		// Even with the page's CSRF token, the server refuses.
		status := postForm(t, ctx, "/campaigns/order-unpaid/pause", true)
		if buttons != 0 || status != 403 {
			t.Errorf("viewer: %d pause buttons, POST status %d (want 0, 403)", buttons, status)
		}
		if _, ok, _ := w.db.CampaignPaused(context.Background(), "order-unpaid"); ok {
			t.Fatal("a viewer paused the campaign")
		}
	})

	t.Run("a preview page shows cards with labels", func(t *testing.T) {
		do(t, ctx, chromedp.Navigate(base+"/campaigns/price-drop/preview"), chromedp.WaitVisible(css(`.cards`)))
		cards := run(t, ctx, chromedp.Evaluate[int](`document.querySelectorAll('.card').length`))
		text := run(t, ctx, chromedp.Text(css(`.card`)))
		for _, want := range []string{"商品降价提醒", "商品名称", "现价", "原价", "进入小程序查看", "pages/goods/detail?id="} {
			if !strings.Contains(text, want) {
				t.Errorf("card lacks %q:\n%s", want, text)
			}
		}
		if cards == 0 {
			t.Error("no card")
		}
		groups := run(t, ctx, chromedp.Text(css(`.groups`)))
		if !strings.Contains(groups, "rule_false") {
			t.Errorf("no skipped group: %s", groups)
		}
		shot(t, ctx, "console-preview")
	})

	t.Run("preview --html opens without network and shows the cards", func(t *testing.T) {
		p := console.RunPreview(context.Background(), w.eng, w.byID["price-drop"], labels["bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c"], w.at, 20, 0)
		path := filepath.Join(t.TempDir(), "preview.html")
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := console.WritePreviewHTML(f, p); err != nil {
			t.Fatal(err)
		}
		f.Close()
		// A tab of its own whose network is cut: the file must need none.
		tab, cancel := chromedp.NewContext(ctx)
		defer cancel()
		if err := chromedp.Do(tab); err != nil {
			t.Fatal(err)
		}
		do(t, tab, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.Enable, network.EnableParams{})
			if err != nil {
				return err
			}
			if _, err := cdp.Call(ctx, tg, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{Offline: true, DownloadThroughput: -1, UploadThroughput: -1}},
			}); err != nil {
				return err
			}
			_, err = cdp.Call(ctx, tg, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
			return err
		}))
		do(t, tab, chromedp.Navigate("file://"+path))
		do(t, tab, chromedp.WaitVisible(css(`.card`)))
		cards := run(t, tab, chromedp.Evaluate[int](`document.querySelectorAll('.card').length`))
		fetched := run(t, tab, chromedp.Evaluate[int](`performance.getEntriesByType('resource').length`))
		bg := run(t, tab, chromedp.Evaluate[string](`getComputedStyle(document.querySelector('.card')).backgroundColor`))
		if cards != 20 || fetched != 0 || bg != "rgb(255, 255, 255)" {
			t.Errorf("offline preview.html: %d cards (want 20), %d resources fetched (want 0), card background %q (styles inline)", cards, fetched, bg)
		}
		text := run(t, tab, chromedp.Text(css(`.card`)))
		if !strings.Contains(text, "现价") || !strings.Contains(text, "进入小程序查看") {
			t.Errorf("offline card: %q", text)
		}
	})

	t.Run("an operator pauses; the scheduler skips the next tick; a CSRF-less POST is refused", func(t *testing.T) {
		// The scheduler of this "replica" runs order-unpaid every second
		// and asks the store at each tick.
		c := *w.byID["order-unpaid"]
		c.Cron = cron.Every(time.Second)
		var skipped, ran atomic.Int64
		sched := engine.NewScheduler(w.eng)
		sched.SetHooks(engine.Hooks{
			Paused: func(ctx context.Context, name string, _ time.Time) bool {
				p := console.Paused(ctx, w.db, w.log, name)
				if p {
					skipped.Add(1)
				}
				return p
			},
			Finished: func(_ context.Context, sum engine.Summary, err error) {
				ran.Add(1)
				w.record(sum, err)
			},
		})
		sctx, stop := context.WithCancel(context.Background())
		defer stop()
		sched.Start(sctx)
		sched.Apply([]*campaigns.Campaign{&c})
		defer sched.Stop()

		do(t, ctx, chromedp.Click(css(`.who button`)), chromedp.WaitVisible(css(`input[name=token]`)),
			loginAs(base, operatorToken),
			chromedp.Navigate(base+"/campaigns/order-unpaid"), chromedp.WaitVisible(css(`#pause`)))
		status := postForm(t, ctx, "/campaigns/order-unpaid/pause", false)
		if status != 403 {
			t.Errorf("CSRF-less POST: %d, want 403", status)
		}
		if _, ok, _ := w.db.CampaignPaused(context.Background(), "order-unpaid"); ok {
			t.Fatal("the CSRF-less POST paused the campaign")
		}
		waitFor(t, func() bool { return ran.Load() >= 1 }, "a tick before the pause")
		do(t, ctx, chromedp.Navigate(base+"/campaigns/order-unpaid"), chromedp.WaitVisible(css(`#pause`)), chromedp.SendKeys(css(`input[name=reason]`), "stock recount"), chromedp.Click(css(`#pause`)), chromedp.WaitVisible(css(`#resume`)))
		if by := run(t, ctx, chromedp.Text(css(`#paused-by`))); !strings.Contains(by, "oscar") || !strings.Contains(by, "stock recount") {
			t.Errorf("paused-by = %q", by)
		}
		shot(t, ctx, "console-campaign-paused")
		ranAtPause := ran.Load()
		waitFor(t, func() bool { return skipped.Load() >= 1 }, "a skipped tick")
		if got := ran.Load(); got > ranAtPause+1 { // one run may have been under way
			t.Errorf("runs went on while paused: %d -> %d", ranAtPause, got)
		}
		do(t, ctx, chromedp.Click(css(`#resume`)), chromedp.WaitVisible(css(`#pause`)))
		after := ran.Load()
		waitFor(t, func() bool { return ran.Load() > after }, "a run after resume")
		entries, err := w.db.AuditPage(context.Background(), 0, 10)
		if err != nil || len(entries) < 2 || entries[0].Action != "resume" || entries[1].Action != "pause" || entries[1].Actor != "oscar" {
			t.Errorf("audit = %+v %v", entries, err)
		}
	})

	t.Run("retry a stopped run from its page", func(t *testing.T) {
		ctxb := context.Background()
		occ := w.at.Add(-90 * time.Minute)
		if _, _, err := w.db.AcquireRun(ctxb, "price-drop", occ, "h", time.Now(), time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := w.db.FinishRun(ctxb, "price-drop", occ, "h", "stopped"); err != nil {
			t.Fatal(err)
		}
		r, err := w.db.RunsPage(ctxb, store.RunFilter{Campaign: "price-drop", Limit: 1})
		if err != nil || len(r) != 1 {
			t.Fatal(r, err)
		}
		do(t, ctx, chromedp.Navigate(base+"/runs/"+itoa(r[0].ID)), chromedp.Click(css(`#retry`)))
		waitFor(t, func() bool {
			s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#status') || {}).textContent || ''`))
			return strings.Contains(s, "done")
		}, "the run done after retry")
	})
}

// postForm submits a form from the page (same origin, with the session
// cookie; the page's CSRF token only when withCSRF) and returns the status
// the error page or the redirect target shows.
func postForm(t *testing.T, ctx context.Context, path string, withCSRF bool) int {
	t.Helper()
	js := `(() => { const f = document.createElement('form'); f.method = 'post'; f.action = ` + strconv.Quote(path) + `;`
	if withCSRF {
		js += ` const c = document.createElement('input'); c.type = 'hidden'; c.name = 'csrf'; c.value = document.querySelector('input[name=csrf]').value; f.append(c);`
	}
	js += ` document.body.append(f); f.submit(); return 0; })()`
	run(t, ctx, chromedp.Evaluate[int](js))
	do(t, ctx, chromedp.WaitVisible(css(`main h1`)))
	var h1 string
	waitFor(t, func() bool {
		h1, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname.endsWith('/pause') ? document.querySelector('main h1').textContent : ''`))
		return h1 != ""
	}, "the answer to the POST")
	n, _ := strconv.Atoi(strings.Fields(h1)[0])
	return n
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
