package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsender"
)

// TestReasonsClosedSet runs 200 grants carrying 200 distinct bad values
// (rule errors, render errors, WeChat errmsgs and unknown errcodes) through
// a run and checks that the metrics' reason labels stay within the closed
// set of codes while every distinct value reaches the reports' detail.
func TestReasonsClosedSet(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		c := parseCampaign(t, `name: bad-values
schedule: "*/10 * * * *"
timezone: Asia/Shanghai
template:
  id: tplBad
  kind: one_time
when: num(grant.vars.v) > 0
data:
  amount1: money(num(grant.vars.amt))
`)
		w := newWorld(t, nc, simTemplate(c))
		// WeChat's answers with a distinct errmsg per user: 47003 naming
		// the user's value, and errcodes the engine does not know.
		wrap := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/message/subscribe/send") {
				body, _ := io.ReadAll(r.Body)
				var m wechat.Message
				_ = json.Unmarshal(body, &m)
				var i int
				switch {
				case fmtScan(m.ToUser, "oW47003-%d", &i):
					fmt.Fprintf(rw, `{"errcode":47003,"errmsg":"argument invalid! data.amount1.value invalid (%d) rid: %x"}`, i, i*7919)
					return
				case fmtScan(m.ToUser, "oWOther-%d", &i):
					fmt.Fprintf(rw, `{"errcode":%d,"errmsg":"something new %d"}`, 61000+i, i)
					return
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			w.sim.Handler().ServeHTTP(rw, r)
		}))
		t.Cleanup(wrap.Close)
		reg := prometheus.NewRegistry()
		client, err := wechat.New(wechat.Config{BaseURL: wrap.URL, AppID: e2eAppID, Secret: e2eSecret, Tokens: w.db,
			Holder: "reasons", Logger: w.log, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		eng, err := engine.New(engine.Config{Holder: "reasons", AppID: e2eAppID, RetryBase: time.Millisecond, Concurrency: 8,
			Lease: 30 * time.Second, Now: w.clock.Now, Logger: w.log, Metrics: engine.NewMetrics(reg)}, w.db, w.db.Facts(), wxsender.New(client))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 200 {
			var openid string
			vars := map[string]any{"v": "1", "amt": "5"}
			switch i % 5 {
			case 0: // a rule error naming the value
				openid, vars["v"] = fmt.Sprintf("oRule-%d", i), fmt.Sprintf("not-a-number-%d", i)
			case 1: // a render error naming the value
				openid, vars["amt"] = fmt.Sprintf("oRender-%d", i), fmt.Sprintf("%d-yuan", i)
			case 2:
				openid = fmt.Sprintf("oW47003-%d", i)
			case 3:
				openid = fmt.Sprintf("oWOther-%d", i)
			default: // sent
				openid = fmt.Sprintf("oOK-%d", i)
			}
			w.subscribe(openid, c.Template.ID, fmt.Sprint("b", i), vars, true)
		}
		w.clock.Set(at(3, 10, 0))
		r := runWith(w.ctx, eng, c, engine.Options{At: at(3, 10, 0)})
		if r.err != nil || len(r.reports) != 200 {
			t.Fatalf("run: %v, %d reports", r.err, len(r.reports))
		}
		details := map[string]bool{}
		want := map[string]wx.Reason{"oRule": wx.ReasonRuleError, "oRender": wx.ReasonRenderInvalid,
			"oW47003": wx.ReasonWeChat47003, "oWOther": wx.ReasonWeChatOther, "oOK": wx.ReasonOK}
		for _, rep := range r.reports {
			pfx, _, _ := strings.Cut(rep.OpenID, "-")
			if rep.Reason != want[pfx] {
				t.Errorf("%s: reason %q (%s), want %q", rep.OpenID, rep.Reason, rep.Detail, want[pfx])
			}
			if pfx != "oOK" {
				details[rep.Detail] = true
			}
			for _, doubled := range []string{"failed:", "skipped:", "rule error:", "render invalid:"} {
				if strings.HasPrefix(rep.Detail, doubled) {
					t.Errorf("%s: detail %q repeats the outcome or the code", rep.OpenID, rep.Detail)
				}
			}
		}
		if len(details) < 160 {
			t.Errorf("%d distinct details for 160 distinct bad values: the values do not reach the detail", len(details))
		}
		labels := map[string]bool{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "reason" {
						labels[l.GetValue()] = true
						if !wx.Reason(l.GetValue()).Valid() {
							t.Errorf("%s: reason label %q is not a declared code", mf.GetName(), l.GetValue())
						}
					}
				}
			}
		}
		if len(labels) == 0 || len(labels) > len(wx.Reasons()) {
			t.Errorf("%d distinct reason labels (%v), want 1..%d", len(labels), labels, len(wx.Reasons()))
		}
		// The send log stores the code in reason, the text in detail.
		var bad int
		if err := w.db.SQLX().GetContext(w.ctx, &bad, "SELECT COUNT(*) FROM send_log WHERE reason NOT IN ('ok', 'wechat_47003', 'wechat_other')"); err != nil {
			t.Fatal(err)
		}
		if bad != 0 {
			t.Errorf("%d send log rows with a reason that is not a code", bad)
		}
	})
}

// fmtScan reports whether s matches format with one %d read into n.
func fmtScan(s, format string, n *int) bool {
	pfx, _, _ := strings.Cut(format, "%d")
	if !strings.HasPrefix(s, pfx) {
		return false
	}
	_, err := fmt.Sscanf(s, format, n)
	return err == nil
}
