package api_test

import (
	"strings"
	"testing"

	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// TestClientFlowStore runs the reference client's shapes against the real
// store on every driver: the raw result object with a Chinese triggerAct
// and repeated ids becomes one row per distinct id, and a requestId
// repeated with another body is a 409 that stores nothing.
func TestClientFlowStore(t *testing.T) {
	for _, d := range storetest.Drivers(t) {
		t.Run(d.Name, func(t *testing.T) {
			e, db := setupStore(t, d.Config)
			body := `{"openId":"o1","busNo":"P1","triggerAct":"提交售后申请（退货退款）","extraVariableMap":{"saved_price":"15"},
				"result":{"T-price":"accept","T-long":"acceptWithAlert","T-stock":"reject","errMsg":"requestSubscribeMessage:ok"}}`
			r := e.call(t, "POST", "/v1/subscriptions", body, withHeaders("Idempotency-Key", "k-1")...)
			if r.status != 201 || !strings.Contains(r.body, `"credits":1,"longTerm":1,"rejected":1`) {
				t.Fatalf("%d %s", r.status, r.body)
			}
			var rows []grantRow
			if err := db.SQLX().Select(&rows, "SELECT openid, template_id, kind, scene, biz_no, vars, request_id FROM grants ORDER BY template_id"); err != nil {
				t.Fatal(err)
			}
			if len(rows) != 2 || rows[0].TemplateID != "T-long" || rows[0].Kind != "long_term" || rows[1].Kind != "one_time" ||
				rows[1].Scene != "提交售后申请（退货退款）" || rows[1].RequestID != "k-1" || rows[1].Vars == nil || *rows[1].Vars != `{"saved_price":"15"}` {
				t.Fatalf("grants %+v", rows)
			}
			// The same body again: a duplicate. Another body: a conflict.
			if r := e.call(t, "POST", "/v1/subscriptions", body, withHeaders("Idempotency-Key", "k-1")...); r.status != 200 {
				t.Fatalf("retry: %d %s", r.status, r.body)
			}
			other := strings.Replace(body, `"T-stock":"reject"`, `"T-stock":"accept"`, 1)
			r = e.call(t, "POST", "/v1/subscriptions", other, withHeaders("Idempotency-Key", "k-1")...)
			if code, msg := r.errCode(t); r.status != 409 || code != "conflict" || !strings.Contains(msg, `requestId "k-1"`) {
				t.Fatalf("conflict: %d %s", r.status, r.body)
			}
			var n int
			if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM grants"); err != nil || n != 2 {
				t.Fatalf("%d grants after the retry and the conflict, want 2 (%v)", n, err)
			}
			// Three copies of one id: one row.
			if r := e.call(t, "POST", "/v1/subscriptions", `{"openId":"o2","agreeTemplateIds":["T-price","T-price","T-price"]}`, auth...); r.status != 201 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if err := db.SQLX().Get(&n, "SELECT COUNT(*) FROM grants WHERE openid = 'o2'"); err != nil || n != 1 {
				t.Fatalf("%d grants for three copies of one id, want 1 (%v)", n, err)
			}
		})
	}
}
