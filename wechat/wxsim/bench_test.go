package wxsim

import (
	"bytes"
	"fmt"
	"github.com/wxcampaign/wxcampaign/internal/cpumeter"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// nopWriter is a reusable ResponseWriter, so the benchmark measures the
// handler and not the recorder.
type nopWriter struct {
	h    http.Header
	code int
}

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(code int)        { w.code = code }

func benchSim(b *testing.B) (*Server, string) {
	sim, err := New(Config{AppID: "a", Secret: "s", Templates: []TemplateDef{allTypes, longTerm}, MessageLimit: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := sim.stableToken(false)
	return sim, tok
}

func benchBody(openid string) []byte {
	return []byte(`{"touser":"` + openid + `","template_id":"T-ALL","page":"pages/item/detail?id=1","data":{` +
		`"thing1":{"value":"降价提醒：限量球鞋"},"number2":{"value":"12.5"},"letter3":{"value":"abcXYZ"},` +
		`"symbol4":{"value":"%$#"},"character_string5":{"value":"ORD-2024-0001"},"time6":{"value":"2019年10月1日 15:01"},` +
		`"date7":{"value":"2019-10-01"},"amount8":{"value":"¥12.50"},"phone_number9":{"value":"+86 138-0000-0000"},` +
		`"car_number10":{"value":"粤A12345"},"name11":{"value":"张三"},"phrase12":{"value":"已发货"},"enum13":{"value":"未发货"},` +
		`"short_thing14":{"value":"快递"}}}`)
}

// BenchmarkHandler is the simulator alone: a full send (14 keys of every
// type, credit ledger, delivery record) through the handler, no network.
func BenchmarkHandler(b *testing.B) {
	sim, tok := benchSim(b)
	const users = 64
	var gid atomic.Int64
	bodies := make([][][]byte, 0)
	for g := range 256 {
		var bs [][]byte
		for u := range users {
			id := fmt.Sprintf("o-%d-%d", g, u)
			sim.AddCredits(id, "T-ALL", 1<<30)
			bs = append(bs, benchBody(id))
		}
		bodies = append(bodies, bs)
	}
	url := "/cgi-bin/message/subscribe/send?access_token=" + tok
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpumeter.Start()
	b.RunParallel(func(pb *testing.PB) {
		mine := bodies[int(gid.Add(1)-1)%len(bodies)]
		w := &nopWriter{h: http.Header{}}
		req := httptest.NewRequest("POST", url, nil)
		rd := bytes.NewReader(nil)
		req.Body = io.NopCloser(rd)
		i := 0
		for pb.Next() {
			rd.Reset(mine[i%users])
			i++
			w.code = 0
			sim.ServeHTTP(w, req)
		}
	})
	cpu.Report(b, "sends/s")
	if st := sim.Stats(); st.Sends != int64(b.N) {
		b.Fatalf("%d delivered of %d: %v", st.Sends, b.N, st.Errors)
	}
}

// BenchmarkHTTP is the simulator behind a loopback TCP server, driven by a
// plain keep-alive HTTP client with parallel senders.
func BenchmarkHTTP(b *testing.B) {
	sim, tok := benchSim(b)
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	hc := &http.Client{Transport: tr}
	url := srv.URL + "/cgi-bin/message/subscribe/send?access_token=" + tok
	var gid atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	cpu := cpumeter.Start()
	b.RunParallel(func(pb *testing.PB) {
		g := gid.Add(1)
		var bodies [][]byte
		for u := range 16 {
			id := fmt.Sprintf("h-%d-%d", g, u)
			sim.AddCredits(id, "T-ALL", 1<<30)
			bodies = append(bodies, benchBody(id))
		}
		i := 0
		for pb.Next() {
			resp, err := hc.Post(url, "application/json", bytes.NewReader(bodies[i%len(bodies)]))
			i++
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
	cpu.Report(b, "sends/s")
	if st := sim.Stats(); st.Sends != int64(b.N) {
		b.Fatalf("%d delivered of %d: %v", st.Sends, b.N, st.Errors)
	}
}
