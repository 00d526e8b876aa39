package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/api"
)

// The mini program's own trigger names, as the reference client sends them.
const (
	addToCart = "加入购物车"
	afterSale = "提交售后申请（退货退款）"
)

// clientCatalog offers both kinds in one Chinese scene, and more one-time
// templates than one call takes.
var clientCatalog = fakeCatalog{
	addToCart: {
		{TemplateID: "T-price", Kind: wxcampaign.OneTime, Campaign: "price-drop"},
		{TemplateID: "T-long", Kind: wxcampaign.LongTerm, Campaign: "service"},
		{TemplateID: "T-stock", Kind: wxcampaign.OneTime, Campaign: "restock"},
		{TemplateID: "T-act", Kind: wxcampaign.OneTime, Campaign: "activity"},
		{TemplateID: "T-more", Kind: wxcampaign.OneTime, Campaign: "more"},
	},
	afterSale: {{TemplateID: "T-long", Kind: wxcampaign.LongTerm, Campaign: "service"}},
}

// raw is an HTTP answer read as bytes.
type raw struct {
	status int
	header http.Header
	body   string
}

func (r raw) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.body), v); err != nil {
		t.Fatalf("answer %d is not the JSON expected: %v: %s", r.status, err, r.body)
	}
}

func (r raw) errCode(t *testing.T) (code, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	r.json(t, &e)
	return e.Error.Code, e.Error.Message
}

// call sends a request without following redirects; headers are name,
// value pairs.
func (e *env) call(t *testing.T, method, path, body string, headers ...string) raw {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	client := *e.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return raw{resp.StatusCode, resp.Header, string(b)}
}

var auth = []string{"Authorization", bearer(token)}

func withHeaders(h ...string) []string { return append(slices.Clone(auth), h...) }

// The reference client's popSubscribeResult body: no scene, no requestId.
const clientBody = `{"busNo":"P100","extraVariableMap":{"saved_price":"15.00"},"openId":"o1","agreeTemplateIds":["T-price"],"rejectTemplateIds":["T-stock"]}`

// TestSubscriptionIdempotency: the requestId comes from the body or the
// Idempotency-Key header; without either every request is a new result
// (issue 17 item 1).
func TestSubscriptionIdempotency(t *testing.T) {
	e := setup(t)
	post := func(body string, h ...string) SubscriptionAnswer {
		t.Helper()
		r := e.call(t, "POST", "/v1/subscriptions", body, withHeaders(h...)...)
		var a SubscriptionAnswer
		r.json(t, &a)
		a.Status = r.status
		return a
	}
	withID := strings.Replace(clientBody, `{`, `{"requestId":"body-1",`, 1)

	tests := []struct {
		name      string
		body      string
		headers   []string
		status    int
		requestID string // "" = generated
		credits   int
		duplicate bool
	}{
		{"body requestId", withID, nil, 201, "body-1", 1, false},
		{"body requestId again", withID, nil, 200, "body-1", 0, true},
		{"Idempotency-Key header", clientBody, []string{"Idempotency-Key", "hdr-1"}, 201, "hdr-1", 1, false},
		{"Idempotency-Key again", clientBody, []string{"Idempotency-Key", "hdr-1"}, 200, "hdr-1", 0, true},
		{"both, equal", withID, []string{"Idempotency-Key", "body-1"}, 200, "body-1", 0, true},
		{"neither", clientBody, nil, 201, "", 1, false},
		{"neither, the same body again: a new result", clientBody, nil, 201, "", 1, false},
	}
	generated := map[string]bool{}
	for _, tt := range tests {
		a := post(tt.body, tt.headers...)
		switch {
		case a.Status != tt.status || a.Credits != tt.credits || a.Duplicate != tt.duplicate:
			t.Errorf("%s: %+v, want status %d credits %d duplicate %v", tt.name, a, tt.status, tt.credits, tt.duplicate)
		case tt.requestID != "" && a.RequestID != tt.requestID:
			t.Errorf("%s: requestId %q, want %q", tt.name, a.RequestID, tt.requestID)
		case tt.requestID == "" && (!strings.HasPrefix(a.RequestID, "auto-") || generated[a.RequestID]):
			t.Errorf("%s: requestId %q, want a new generated one", tt.name, a.RequestID)
		}
		generated[a.RequestID] = true
	}
	if n := len(e.subs.seen); n != 4 {
		t.Errorf("store holds %d results, want 4 (body-1, hdr-1 and two generated)", n)
	}
	r := e.call(t, "POST", "/v1/subscriptions", withID, withHeaders("Idempotency-Key", "other")...)
	if code, msg := r.errCode(t); r.status != 400 || code != "invalid" || !strings.Contains(msg, "Idempotency-Key") {
		t.Errorf("requestId and header differ: %d %s", r.status, r.body)
	}
}

// SubscriptionAnswer is api.SubscriptionResponse with the status.
type SubscriptionAnswer struct {
	api.SubscriptionResponse
	Status int
}

// TestSubscriptionShapes: triggerAct as the scene, Chinese scenes, and the
// raw wx.requestSubscribeMessage result object (issue 17 items 1, 2, 4).
func TestSubscriptionShapes(t *testing.T) {
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Catalog = clientCatalog })
	tests := []struct {
		name                     string
		body                     string
		status                   int
		credits, long, rejected  int
		scene                    string
		agree, reject, ban, filt []string
	}{
		{"triggerAct", `{"openId":"o1","triggerAct":"加入购物车","busNo":"P1","agreeTemplateIds":["T-price"],"requestId":"s1"}`,
			201, 1, 0, 0, addToCart, []string{"T-price"}, nil, nil, nil},
		{"scene with full-width brackets", `{"openId":"o1","scene":"提交售后申请（退货退款）","agreeTemplateIds":["T-long"],"requestId":"s2"}`,
			201, 0, 1, 0, afterSale, []string{"T-long"}, nil, nil, nil},
		{"scene and triggerAct equal", `{"openId":"o1","scene":"加入购物车","triggerAct":"加入购物车","agreeTemplateIds":["T-price"],"requestId":"s3"}`,
			201, 1, 0, 0, addToCart, []string{"T-price"}, nil, nil, nil},
		{"raw result object", `{"openId":"o1","busNo":"P1","triggerAct":"加入购物车","extraVariableMap":{"saved_price":"15"},"requestId":"s4",
			"result":{"T-price":"accept","T-long":"acceptWithAlert","T-stock":"reject","errMsg":"requestSubscribeMessage:ok"}}`,
			201, 1, 1, 1, addToCart, []string{"T-long", "T-price"}, []string{"T-stock"}, nil, nil},
		{"raw result: audio, ban, filter", `{"openId":"o1","requestId":"s5","result":{"A":"acceptWithAudio","B":"ban","C":"filter","errMsg":"requestSubscribeMessage:ok"}}`,
			201, 1, 0, 2, "", []string{"A"}, nil, []string{"B"}, []string{"C"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, "POST", "/v1/subscriptions", tt.body, auth...)
			var a api.SubscriptionResponse
			r.json(t, &a)
			if r.status != tt.status || a.Credits != tt.credits || a.LongTerm != tt.long || a.Rejected != tt.rejected {
				t.Fatalf("%d %s, want %d credits %d long-term %d rejected %d", r.status, r.body, tt.status, tt.credits, tt.long, tt.rejected)
			}
			got, _ := e.subs.get(a.RequestID)
			if got.Scene != tt.scene || !slices.Equal(got.AgreeTemplateIDs, tt.agree) || !slices.Equal(got.RejectTemplateIDs, tt.reject) ||
				!slices.Equal(got.BanTemplateIDs, tt.ban) || !slices.Equal(got.FilterTemplateIDs, tt.filt) {
				t.Errorf("stored %+v", got)
			}
		})
	}
}

// TestSubscriptionRefusals: each refusal is a 400 naming the field; nothing
// reaches the store (issue 17, issue 12 items 6 and 7).
func TestSubscriptionRefusals(t *testing.T) {
	e := setup(t)
	tests := []struct{ name, body, msg string }{
		{"control character in scene", `{"openId":"o","scene":"a\tb","requestId":"r","agreeTemplateIds":["T"]}`, `scene "a\tb" has a control`},
		{"slash in scene", `{"openId":"o","scene":"a/b","requestId":"r","agreeTemplateIds":["T"]}`, `scene "a/b" contains '/'`},
		{"slash in triggerAct", `{"openId":"o","triggerAct":"../x","requestId":"r","agreeTemplateIds":["T"]}`, `contains '/'`},
		{"scene too long", `{"openId":"o","scene":"` + strings.Repeat("长", 65) + `","requestId":"r","agreeTemplateIds":["T"]}`, "longer than 64 characters"},
		{"scene and triggerAct differ", `{"openId":"o","scene":"a","triggerAct":"b","requestId":"r","agreeTemplateIds":["T"]}`, "differ"},
		{"unknown result value", `{"openId":"o","requestId":"r","result":{"T":"maybe","errMsg":"ok"}}`, `result["T"] is "maybe": want accept`},
		{"result value not a string", `{"openId":"o","requestId":"r","result":{"T":1}}`, `result["T"] is 1 (not a string)`},
		{"result and lists", `{"openId":"o","requestId":"r","result":{"T":"accept"},"agreeTemplateIds":["U"]}`, "send one of them"},
		{"result without ids", `{"openId":"o","requestId":"r","result":{"errMsg":"requestSubscribeMessage:ok"}}`, "no template ids"},
		// Issue 12 item 6.
		{"more ids than one call takes", `{"openId":"o","requestId":"r","agreeTemplateIds":["A","B"],"rejectTemplateIds":["C","D"]}`, "4 template ids in one result: one wx.requestSubscribeMessage call takes at most 3 (http.max_templates_per_result)"},
		{"same id in agree and reject", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"rejectTemplateIds":["T"]}`, `template id "T" is in both agreeTemplateIds and rejectTemplateIds`},
		{"same id accepted and banned", `{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"banTemplateIds":["T"]}`, "in both"},
		// Issue 12 item 7: encoding/json would store these as U+FFFD.
		{"invalid UTF-8 in openId", "{\"openId\":\"o\xff\",\"requestId\":\"r\",\"agreeTemplateIds\":[\"T\"]}", "openId is not valid UTF-8"},
		{"invalid UTF-8 in scene", "{\"openId\":\"o\",\"scene\":\"\xe5\x8a\",\"requestId\":\"r\",\"agreeTemplateIds\":[\"T\"]}", "scene is not valid UTF-8"},
		{"unpaired surrogate in busNo", `{"openId":"o","busNo":"\ud800x","requestId":"r","agreeTemplateIds":["T"]}`, "busNo has an unpaired surrogate"},
		{"lone low surrogate in scene", `{"openId":"o","scene":"\udc00","requestId":"r","agreeTemplateIds":["T"]}`, "scene has an unpaired surrogate"},
		{"NUL in openId", `{"openId":"o\u0000","requestId":"r","agreeTemplateIds":["T"]}`, "openId contains a NUL character"},
		{"NUL in busNo", `{"openId":"o","busNo":"\u0000","requestId":"r","agreeTemplateIds":["T"]}`, "busNo contains a NUL character"},
		{"NUL in scene", `{"openId":"o","scene":"a\u0000","requestId":"r","agreeTemplateIds":["T"]}`, "scene contains a NUL character"},
		{"NUL deep in vars", `{"openId":"o","extraVariableMap":{"a":[{"b":"\u0000"}]},"requestId":"r","agreeTemplateIds":["T"]}`, "extraVariableMap contains a NUL character"},
		{"invalid UTF-8 in a vars key", "{\"openId\":\"o\",\"extraVariableMap\":{\"k\xc3\":1},\"requestId\":\"r\",\"agreeTemplateIds\":[\"T\"]}", "extraVariableMap is not valid UTF-8"},
		{"invalid UTF-8 in Idempotency-Key", `{"openId":"o","agreeTemplateIds":["T"]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := auth
			if tt.msg == "" {
				h = withHeaders("Idempotency-Key", "a\xffb") // net/http refuses NUL in headers
				tt.msg = "Idempotency-Key"
			}
			r := e.call(t, "POST", "/v1/subscriptions", tt.body, h...)
			code, msg := r.errCode(t)
			if r.status != 400 || code != wxcampaign.EINVALID || !strings.Contains(msg, tt.msg) {
				t.Fatalf("%d %s, want 400 invalid containing %q", r.status, r.body, tt.msg)
			}
		})
	}
	if n := len(e.subs.seen); n != 0 {
		t.Errorf("the store received %d refused results", n)
	}
}

// TestRepeatedIDCountsOnce: one wx.requestSubscribeMessage call answers an
// id once, so ["T","T","T"] is one credit, and 3,000 copies are one too
// (issue 12 item 6); the per-result limit is configurable.
func TestRepeatedIDCountsOnce(t *testing.T) {
	e := setup(t, func(c *api.Config, _ *api.Deps) { c.MaxTemplatesPerResult = 5 })
	many := strings.TrimSuffix(strings.Repeat(`"T",`, 3000), ",")
	for _, tt := range []struct{ name, body string }{
		{"three copies", `{"openId":"o","requestId":"r1","agreeTemplateIds":["T","T","T"]}`},
		{"3000 copies", `{"openId":"o","requestId":"r2","agreeTemplateIds":[` + many + `]}`},
	} {
		r := e.call(t, "POST", "/v1/subscriptions", tt.body, auth...)
		var a api.SubscriptionResponse
		r.json(t, &a)
		if r.status != 201 || a.Credits != 1 {
			t.Errorf("%s: %d %s, want 201 with 1 credit", tt.name, r.status, r.body)
		}
		if got, _ := e.subs.get(a.RequestID); !slices.Equal(got.AgreeTemplateIDs, []string{"T"}) {
			t.Errorf("%s: stored %v", tt.name, got.AgreeTemplateIDs)
		}
	}
	r := e.call(t, "POST", "/v1/subscriptions", `{"openId":"o","requestId":"r3","agreeTemplateIds":["A","B","C","D","E"]}`, auth...)
	if r.status != 201 {
		t.Errorf("5 ids with max_templates_per_result 5: %d %s", r.status, r.body)
	}
	r = e.call(t, "POST", "/v1/subscriptions", `{"openId":"o","requestId":"r4","agreeTemplateIds":["A","B","C","D","E","F"]}`, auth...)
	if r.status != 400 {
		t.Errorf("6 ids with max_templates_per_result 5: %d %s", r.status, r.body)
	}
}

// TestConflictingRequestID: a requestId repeated with another body is a
// 409 naming it, not a silent duplicate (issue 12 item 14); the same body
// again (ids reordered or repeated) is a duplicate.
func TestConflictingRequestID(t *testing.T) {
	e := setup(t)
	first := `{"openId":"o","requestId":"req-9","agreeTemplateIds":["A","B"]}`
	for _, tt := range []struct {
		name, body string
		status     int
	}{
		{"first", first, 201},
		{"retry", first, 200},
		{"retry, ids reordered and repeated", `{"openId":"o","requestId":"req-9","agreeTemplateIds":["B","A","B"]}`, 200},
		{"other ids", `{"openId":"o","requestId":"req-9","agreeTemplateIds":["A"]}`, 409},
		{"other user", `{"openId":"o2","requestId":"req-9","agreeTemplateIds":["A","B"]}`, 409},
		{"other vars", `{"openId":"o","requestId":"req-9","agreeTemplateIds":["A","B"],"extraVariableMap":{"p":1}}`, 409},
	} {
		r := e.call(t, "POST", "/v1/subscriptions", tt.body, auth...)
		if r.status != tt.status {
			t.Errorf("%s: %d %s, want %d", tt.name, r.status, r.body, tt.status)
			continue
		}
		if tt.status == 409 {
			if code, msg := r.errCode(t); code != wxcampaign.ECONFLICT || !strings.Contains(msg, `requestId "req-9"`) {
				t.Errorf("%s: %s, want conflict naming the requestId", tt.name, r.body)
			}
		}
	}
}

// TestSceneOffer: the offer endpoint takes the scene in the path
// (percent-encoded) or the query, busNo and openid, and with format=ids or
// the ids media type answers the bare array for wx.requestSubscribeMessage;
// one kind per list, never more ids than one call takes (issue 17 items 2
// and 3, issue 13 item 5).
func TestSceneOffer(t *testing.T) {
	e := setup(t, func(_ *api.Config, d *api.Deps) { d.Catalog = clientCatalog })
	enc := url.PathEscape(addToCart)
	q := url.QueryEscape(addToCart)
	full := `{"scene":"加入购物车","tmplIds":["T-price","T-stock","T-act"],"longTermTmplIds":["T-long"]}`
	tests := []struct {
		name, path string
		headers    []string
		want       string
		mediaType  string
	}{
		{"path", "/v1/scenes/" + enc + "/templates", nil, full, "application/json"},
		{"path with busNo and openid", "/v1/scenes/" + enc + "/templates?busNo=P100&openid=o1", nil, full, "application/json"},
		{"query triggerAct", "/v1/scenes/templates?triggerAct=" + q + "&busNo=P100", nil, full, "application/json"},
		{"query scene", "/v1/scenes/templates?scene=" + q, nil, full, "application/json"},
		{"format=ids: one-time ids only", "/v1/scenes/templates?triggerAct=" + q + "&busNo=P100&format=ids", nil, `["T-price","T-stock","T-act"]`, "application/json"},
		{"format=ids, kind=long_term", "/v1/scenes/" + enc + "/templates?format=ids&kind=long_term", nil, `["T-long"]`, "application/json"},
		{"format=ids, kind=one_time", "/v1/scenes/" + enc + "/templates?format=ids&kind=one_time", nil, `["T-price","T-stock","T-act"]`, "application/json"},
		{"format=ids, long-term only scene", "/v1/scenes/templates?format=ids&triggerAct=" + url.QueryEscape(afterSale), nil, `["T-long"]`, "application/json"},
		{"format=ids, unknown scene", "/v1/scenes/templates?format=ids&triggerAct=nothing", nil, `[]`, "application/json"},
		{"Accept header", "/v1/scenes/" + enc + "/templates", []string{"Accept", "application/vnd.wxcampaign.ids+json"}, `["T-price","T-stock","T-act"]`, api.IDsMediaType},
		{"Accept among others", "/v1/scenes/" + enc + "/templates", []string{"Accept", "text/html, application/vnd.wxcampaign.ids+json;q=0.9"}, `["T-price","T-stock","T-act"]`, api.IDsMediaType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(t, "GET", tt.path, "", withHeaders(tt.headers...)...)
			if r.status != 200 || strings.TrimSpace(r.body) != tt.want {
				t.Fatalf("%d %s, want 200 %s", r.status, r.body, tt.want)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.mediaType) {
				t.Errorf("Content-Type %q, want %s", ct, tt.mediaType)
			}
		})
	}

	refused := []struct{ name, path, msg string }{
		{"slash in the path scene", "/v1/scenes/a%2Fb/templates", "contains '/'"},
		{"control character in the path scene", "/v1/scenes/a%01b/templates", "control"},
		{"control character in triggerAct", "/v1/scenes/templates?triggerAct=a%0Ab", "control"},
		{"slash in triggerAct", "/v1/scenes/templates?triggerAct=a%2Fb", "contains '/'"},
		{"no scene", "/v1/scenes/templates?busNo=P1", "triggerAct (or scene) is required"},
		{"NUL in busNo", "/v1/scenes/" + enc + "/templates?busNo=a%00", "busNo contains a NUL"},
		{"invalid UTF-8 in openid", "/v1/scenes/" + enc + "/templates?openid=%FF", "openid is not valid UTF-8"},
		{"bad format", "/v1/scenes/" + enc + "/templates?format=xml", `format "xml"`},
		{"bad kind", "/v1/scenes/" + enc + "/templates?format=ids&kind=both", `kind "both"`},
	}
	for _, tt := range refused {
		r := e.call(t, "GET", tt.path, "", auth...)
		if code, msg := r.errCode(t); r.status != 400 || code != wxcampaign.EINVALID || !strings.Contains(msg, tt.msg) {
			t.Errorf("%s: %d %s, want 400 containing %q", tt.name, r.status, r.body, tt.msg)
		}
	}
}

// TestAuthBeforeRouting: paths under /v1 need the token before anything
// else, also when they are not canonical or do not exist, and the answer is
// JSON, never a redirect (issue 12 item 12).
func TestAuthBeforeRouting(t *testing.T) {
	e := setup(t)
	tests := []struct {
		path   string
		auth   bool
		status int
		code   string
	}{
		{"/v1/scenes/../templates", false, 401, "unauthorized"},
		{"/v1/scenes/./x/templates", false, 401, "unauthorized"},
		{"/v1/nothing-here", false, 401, "unauthorized"},
		{"/v1", false, 401, "unauthorized"},
		{"/v1/../v1/subscriptions", false, 401, "unauthorized"},
		{"//v1/subscriptions", false, 401, "unauthorized"},
		{"/x/../v1/subscriptions", false, 401, "unauthorized"},
		{"/v1/scenes/../templates", true, 404, "not_found"},
		{"/v1/scenes/a/../b/templates", true, 404, "not_found"},
		{"/healthz/../readyz", false, 404, "not_found"},
		{"/v1/nothing-here", true, 404, "not_found"},
	}
	for _, tt := range tests {
		h := []string{}
		if tt.auth {
			h = auth
		}
		r := e.call(t, "GET", tt.path, "", h...)
		code, _ := r.errCode(t)
		if r.status != tt.status || code != tt.code || r.header.Get("Location") != "" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s (token %v): %d %q %s, want %d %s in JSON without redirect", tt.path, tt.auth, r.status, r.header.Get("Content-Type"), r.body, tt.status, tt.code)
		}
	}
}
