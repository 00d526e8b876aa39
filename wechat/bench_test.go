package wechat_test

import (
	"context"
	"fmt"
	"github.com/wxcampaign/wxcampaign/internal/cpumeter"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// BenchmarkClientSim is the whole path: wechat.Client (token cache,
// encoding, httptrace, classification) against the simulator on loopback
// TCP, with 8 senders per GOMAXPROCS.
func BenchmarkClientSim(b *testing.B) {
	sim, err := wxsim.New(wxsim.Config{AppID: appID, Secret: secret, Templates: []wxsim.TemplateDef{tmplOrder, tmplLong}, MessageLimit: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	c, err := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: appID, Secret: secret})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Token(ctx); err != nil {
		b.Fatal(err)
	}
	var gid atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpumeter.Start()
	b.RunParallel(func(pb *testing.PB) {
		g := gid.Add(1)
		var msgs []wechat.Message
		for u := range 16 {
			id := fmt.Sprintf("c-%d-%d", g, u)
			sim.AddCredits(id, "T-ORDER", 1<<30)
			msgs = append(msgs, orderMsg(id))
		}
		i := 0
		for pb.Next() {
			if _, err := c.Send(ctx, msgs[i%len(msgs)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	cpu.Report(b, "sends/s")
	if st := sim.Stats(); st.Sends != int64(b.N) {
		b.Fatalf("%d delivered of %d: %v", st.Sends, b.N, st.Errors)
	}
}
