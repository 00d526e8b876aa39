package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
)

// TestDaemonConsole: `run` serves the console beside the API, its
// scheduler stores each run's report and honours a pause stored by
// `campaigns pause` at its next tick, on each driver.
func TestDaemonConsole(t *testing.T) {
	for name, mk := range drivers(t) {
		t.Run(name, func(t *testing.T) {
			cfg := mk(t)
			w := newWorld(t, cfg)
			camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
			must(t, os.WriteFile(camp, []byte(strings.Replace(campaignYAML, `schedule: "*/10 * * * *"`, `schedule: "@every 1s"`, 1)), 0o644))
			conf, err := os.ReadFile(w.cfgPath)
			must(t, err)
			conf = append(conf, []byte("console:\n  tokens:\n    - {name: olga, token: olga-operator-token-123456, role: operator}\n")...)
			must(t, os.WriteFile(w.cfgPath, conf, 0o644))

			ctx, cancel := context.WithCancel(context.Background())
			out, errb := &syncBuffer{}, &syncBuffer{}
			done := make(chan int, 1)
			go func() {
				done <- Main(ctx, []string{"run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"}, strings.NewReader(""), out, errb,
					func(k string) string { return w.env[k] })
			}()
			defer func() {
				cancel()
				if code := <-done; code != 0 {
					t.Errorf("daemon exit %d:\n%s", code, errb)
				}
			}()
			waitFor := func(what string, cond func() bool) {
				t.Helper()
				for deadline := time.Now().Add(15 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatalf("timed out waiting for %s:\n%s\n%s", what, out, errb)
					}
				}
			}
			var base string
			re := regexp.MustCompile(`listening on (http://\S+)`)
			waitFor("the daemon", func() bool {
				m := re.FindStringSubmatch(out.String())
				if m != nil {
					base = m[1]
				}
				return m != nil
			})
			get := func(path string) (int, string) {
				resp, err := http.Get(base + path)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			if code, body := get("/login"); code != 200 || !strings.Contains(body, `name="token"`) {
				t.Fatalf("console login form on http.listen: %d", code)
			}
			if code, _ := get("/healthz"); code != 200 {
				t.Errorf("the API's /healthz beside the console: %d", code)
			}
			if code, body := get("/v1/scenes/add_to_cart/templates"); code != http.StatusUnauthorized || strings.Contains(body, "<html") {
				t.Errorf("the API beside the console: %d %s", code, body)
			}

			db := openDB(t, cfg)
			runs := func() []store.Run {
				rs, err := db.RunsPage(context.Background(), store.RunFilter{Campaign: "price-drop"})
				if err != nil {
					t.Fatal(err)
				}
				return rs
			}
			waitFor("a run with its report", func() bool {
				rs := runs()
				return len(rs) > 0 && rs[0].Report != nil && len(rs[0].Report.Replicas) == 1
			})
			if code, out, errOut := run(t, w.env, "campaigns", "pause", "--config", w.cfgPath, "--by", "olga", "price-drop"); code != 0 {
				t.Fatalf("pause: %d %s %s", code, out, errOut)
			}
			waitFor("a skipped tick", func() bool { return strings.Contains(errb.String(), "campaign paused: tick skipped") })
			n := len(runs())
			time.Sleep(2200 * time.Millisecond) // two more ticks
			if got := len(runs()); got > n {
				t.Errorf("runs while paused: %d -> %d", n, got)
			}
			if code, _, errOut := run(t, w.env, "campaigns", "resume", "--config", w.cfgPath, "price-drop"); code != 0 {
				t.Fatalf("resume: %s", errOut)
			}
			waitFor("a run after resume", func() bool { return len(runs()) > n })

			if code, body := get("/runs?campaign=price-drop"); code != 200 || !strings.Contains(body, `name="token"`) {
				t.Errorf("runs page without a session: %d, want the login form", code)
			}
			// Retry from the console: the daemon reopens a stopped run and
			// runs it again.
			occ := time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC)
			bg := context.Background()
			if _, _, err := db.AcquireRun(bg, "price-drop", occ, "x", time.Now(), time.Now().Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
			must(t, db.FinishRun(bg, "price-drop", occ, "x", "stopped"))
			stopped, err := db.GetRun(bg, "price-drop", occ)
			must(t, err)
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar}
			resp, err := c.Get(base + "/login")
			must(t, err)
			resp.Body.Close()
			u, _ := url.Parse(base)
			var loginCSRF string
			for _, ck := range jar.Cookies(u) {
				if ck.Name == "wxc_login" {
					loginCSRF = ck.Value
				}
			}
			resp, err = c.PostForm(base+"/login", url.Values{"token": {"olga-operator-token-123456"}, "csrf": {loginCSRF}})
			must(t, err)
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindSubmatch(page)
			if m == nil {
				t.Fatalf("no session after login: %d", resp.StatusCode)
			}
			resp, err = c.PostForm(base+"/runs/"+strconv.FormatInt(stopped.ID, 10)+"/retry", url.Values{"csrf": {string(m[1])}})
			must(t, err)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("retry: %d", resp.StatusCode)
			}
			waitFor("the retried run done", func() bool {
				r, err := db.GetRun(bg, "price-drop", occ)
				return err == nil && r.State() == "done" && r.Report != nil
			})
			if a, err := db.AuditPage(bg, 0, 1); err != nil || len(a) != 1 || a[0].Action != "retry" || a[0].Actor != "olga" {
				t.Errorf("audit = %+v %v", a, err)
			}

			// Request metrics of the shared listener, by route from a closed set.
			get("/v1/scenes/../../etc/templates")
			_, metrics := get("/metrics")
			for _, want := range []string{
				`wxcampaign_http_requests_total{code="200",method="GET",route="console"}`,
				`wxcampaign_http_requests_total{code="200",method="GET",route="/healthz"}`,
				`wxcampaign_http_requests_total{code="401",method="GET",route="/v1/scenes/{scene}/templates"}`,
				`wxcampaign_http_request_seconds_count{route="console"}`,
			} {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			for _, line := range strings.Split(metrics, "\n") {
				if strings.HasPrefix(line, "wxcampaign_http_") && strings.Contains(line, "etc") {
					t.Errorf("a client's path became a label: %s", line)
				}
			}

			var list []store.Run
			code, js, _ := run(t, w.env, "runs", "list", "--config", w.cfgPath, "--format", "json", "price-drop")
			if code != 0 || json.Unmarshal([]byte(js), &list) != nil || len(list) == 0 {
				t.Fatalf("runs list: %d %s", code, js)
			}
		})
	}
}
