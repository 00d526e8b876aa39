package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/internal/testenv"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// BenchmarkPush measures POST /wechat/push of subscribe_msg_sent_event
// over loopback with 32 parallel clients (WeChat pushes one event per
// delivered message): "fake" is the API's own cost, the others include the
// real store and its group commit on each driver.
func BenchmarkPush(b *testing.B) {
	b.Run("fake", func(b *testing.B) { benchPush(b, nil) })
	testenv.EachConfigBench(b, func(b *testing.B, cfg store.Config) { benchPush(b, &cfg) })
}

func benchPush(b *testing.B, cfg *store.Config) {
	var opts []option
	if cfg != nil {
		db := storetest.Open(b, *cfg)
		opts = append(opts, func(_ *api.Config, d *api.Deps) { d.Subs = db; d.Deliveries = db })
	}
	e := setupPush(b, opts...)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	url := e.srv.URL + pushURL(signedQuery(pushToken, fixedNow, "bench"))
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := benchSeq.Add(1)
			body := fmt.Sprintf(`{"ToUserName":"gh_1","FromUserName":"o-%d","CreateTime":1740830400,"MsgType":"event","Event":"subscribe_msg_sent_event","List":{"TemplateId":"T-price","MsgID":"%d","ErrorCode":"0","ErrorStatus":"success"}}`, i, i)
			resp, err := client.Post(url, "application/json", strings.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
