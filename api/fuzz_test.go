package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

type nopSubs struct{}

func (nopSubs) RecordSubscription(ctx context.Context, r wxcampaign.SubscriptionResult, at time.Time, kindOf func(string) wxcampaign.Kind) (store.RecordResult, error) {
	for _, id := range r.AgreeTemplateIDs {
		kindOf(id)
	}
	return store.RecordResult{Credits: len(r.AgreeTemplateIDs)}, nil
}

type nopCatalog struct{}

func (nopCatalog) SceneTemplates(string) []SceneTemplate { return nil }
func (nopCatalog) KindOf(string) wxcampaign.Kind         { return wxcampaign.OneTime }

// FuzzDecodeSubscription feeds arbitrary bodies to the subscription decoder
// and to the whole endpoint: nothing panics, every rejection is a 4xx with
// an application error code, and whatever is accepted is valid.
func FuzzDecodeSubscription(f *testing.F) {
	for _, seed := range []string{
		`{"openId":"o1","scene":"cart.add","busNo":"P100","extraVariableMap":{"price":12.5},"agreeTemplateIds":["T1"],"rejectTemplateIds":["T2"],"requestId":"r1"}`,
		`{"openId":"o","requestId":"r","agreeTemplateIds":["T"],"longTermTemplateIds":["T"],"banTemplateIds":["B"],"filterTemplateIds":["F"]}`,
		`{"openId":"'; DROP TABLE grants; --","requestId":"😀","agreeTemplateIds":["T"]}`,
		`{"openid":"o","requestId":"r","agreeTemplateIds":["T"]}`,
		`{"openId":"o","openId":"o","requestId":"r","agreeTemplateIds":["T"]}`,
		`{"openId":1}`, `[]`, `null`, ``, `{`, `{"a":1} x`, `"\ud800"`,
		`{"extraVariableMap":{"a":[[[[[[[[[[1]]]]]]]]]]},"openId":"o","requestId":"r","agreeTemplateIds":["T"]}`,
	} {
		f.Add([]byte(seed))
	}
	s, err := New(Config{Tokens: []string{"t"}, MaxBody: 4096}, Deps{Subs: nopSubs{}, Catalog: nopCatalog{}})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := decodeSubscription(body)
		if err == nil {
			if verr := res.Validate(); verr != nil {
				t.Fatalf("accepted an invalid result: %v", verr)
			}
		} else if code := wxcampaign.ErrorCode(err); code != wxcampaign.EINVALID {
			t.Fatalf("decode error code %q, want invalid: %v", code, err)
		}

		req := httptest.NewRequest(http.MethodPost, "/v1/subscriptions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		case err == nil && len(body) <= 4096 && rec.Code != http.StatusCreated:
			t.Fatalf("decoder accepted %q but the endpoint answered %d: %s", body, rec.Code, rec.Body)
		case err != nil && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge:
			t.Fatalf("decoder rejected %q but the endpoint answered %d", body, rec.Code)
		case rec.Code >= 400 && !strings.Contains(rec.Body.String(), `"error":{"code":`):
			t.Fatalf("status %d without a JSON error: %s", rec.Code, rec.Body)
		}
	})
}
