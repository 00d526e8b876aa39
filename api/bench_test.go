package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/internal/testenv"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// BenchmarkSubscription measures POST /v1/subscriptions over loopback with
// parallel clients: "fake" isolates the API's own cost (in-memory store),
// the others include the real store on each driver.
func BenchmarkSubscription(b *testing.B) {
	b.Run("fake", func(b *testing.B) { benchSubscription(b, nil) })
	testenv.EachConfigBench(b, func(b *testing.B, cfg store.Config) { benchSubscription(b, &cfg) })
}

// benchSeq numbers request ids across the repeated calls of a benchmark,
// which share one database.
var benchSeq atomic.Int64

func benchSubscription(b *testing.B, cfg *store.Config) {
	e := setup(b)
	if cfg != nil {
		db := storetest.Open(b, *cfg)
		e = setup(b, func(_ *api.Config, d *api.Deps) { d.Subs = db })
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := benchSeq.Add(1)
			body := fmt.Sprintf(`{"openId":"o-%d","scene":"cart.add","busNo":"P1","extraVariableMap":{"price":1.5},"agreeTemplateIds":["T-price"],"requestId":"bench-%d"}`, i, i)
			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/subscriptions", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
