package engine_test

import (
	"errors"
	"strings"
	"testing"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// TestPreviewReportsFactErrors: a fact query that fails (a missing table,
// a column: absent from the result) stops the send and its preview alike,
// with the same error, instead of a preview that looked at nothing and
// succeeded.
func TestPreviewReportsFactErrors(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		for _, tc := range []struct{ name, facts, want string }{
			{"missing table", "query: SELECT id, price FROM no_such_table WHERE id IN (:keys)\n    key: grant.biz_no\n    column: id", "fact product"},
			{"missing column", "query: SELECT name FROM products WHERE id IN (:keys)\n    key: grant.biz_no\n    column: id", `column "id" is not in the query's result`},
		} {
			t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
				c := parseCampaign(t, `name: facts-broken
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: tplFacts
  kind: one_time
facts:
  product:
    `+tc.facts+`
when: product != nil
data:
  thing1: '"到货通知"'
`)
				w := newWorld(t, nc, simTemplate(c))
				w.seedProducts()
				w.subscribe("oF1", c.Template.ID, "p1", nil, true)
				preview := w.run(nil, c, at(3, 10, 0), true)
				send := w.run(nil, c, at(3, 10, 0), false)
				var pe, se *engine.StopError
				if !errors.As(preview.err, &pe) || !errors.As(send.err, &se) {
					t.Fatalf("preview err %v, send err %v: want both to stop", preview.err, send.err)
				}
				if pe.Error() != se.Error() || !strings.Contains(pe.Error(), tc.want) {
					t.Errorf("preview %q, send %q: want the same error naming %q", pe, se, tc.want)
				}
				if preview.sum.Status != "stopped" || send.sum.Status != "stopped" {
					t.Errorf("status: preview %q, send %q, want stopped", preview.sum.Status, send.sum.Status)
				}
			})
		}
	})
}

// TestFactDuplicateKey: a fact query returning two rows for one key fails
// the grants of that key with fact_duplicate_key naming the fact and the
// key, in the preview and the send; other keys are not affected.
func TestFactDuplicateKey(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		c := parseCampaign(t, `name: facts-dup
schedule: "*/5 * * * *"
timezone: Asia/Shanghai
template:
  id: tplDup
  kind: one_time
facts:
  product:
    query: SELECT id, name FROM dup_products WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: product != nil
data:
  thing1: product.name
`)
		w := newWorld(t, nc, simTemplate(c))
		w.exec(`CREATE TABLE dup_products (id VARCHAR(64), name VARCHAR(100))`)
		w.exec(`INSERT INTO dup_products (id, name) VALUES ('p1', '旧名'), ('p1', '新名'), ('p2', '键盘')`)
		dup := w.subscribe("oD1", c.Template.ID, "p1", nil, true)
		ok := w.subscribe("oD2", c.Template.ID, "p2", nil, true)
		for _, dry := range []bool{true, false} {
			r := w.run(nil, c, at(3, 10, 0), dry)
			if r.err != nil {
				t.Fatalf("dry %v: %v", dry, r.err)
			}
			rep, _ := r.report(dup)
			if rep.Outcome != wx.Skipped || rep.Reason != wx.ReasonFactDuplicateKey || !strings.Contains(rep.Detail, "fact product") || !strings.Contains(rep.Detail, `"p1"`) {
				t.Errorf("dry %v: grant of the duplicated key: %s %s, want skipped fact_duplicate_key naming product and p1", dry, rep.Outcome, rep.Why())
			}
			if rep, _ := r.report(ok); rep.Outcome != wx.Sent {
				t.Errorf("dry %v: other grant: %s %s, want sent", dry, rep.Outcome, rep.Why())
			}
		}
		if n := len(w.recipients(c.Template.ID)); n != 1 {
			t.Errorf("delivered %d, want 1", n)
		}
	})
}
