package wxsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func FuzzParseTemplates(f *testing.F) {
	f.Add([]byte("templates:\n  - id: T1\n    keys: [thing1, amount2]\n"))
	f.Add([]byte(`[{"id":"T1","kind":"long_term","keys":["enum1"],"enums":{"enum1":["a"]}}]`))
	f.Add([]byte("- id: T1\n  keys: [colour1]\n"))
	f.Add([]byte("{"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defs, err := parseTemplates(data)
		if err != nil {
			return
		}
		if len(defs) == 0 {
			t.Fatal("no templates and no error")
		}
		for _, d := range defs {
			tm, err := compileTemplate(d)
			if err != nil {
				continue
			}
			if len(tm.keys) == 0 || tm.def.ID == "" {
				t.Fatalf("compiled template without keys or id: %+v", d)
			}
		}
	})
}

// FuzzSend posts arbitrary bodies: the simulator must answer every one
// with a JSON errcode and never panic or deliver an invalid message.
func FuzzSend(f *testing.F) {
	sim, err := New(Config{AppID: "a", Secret: "s", LooseCredits: true, Templates: []TemplateDef{allTypes, longTerm}})
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := sim.stableToken(false)
	good, _ := json.Marshal(body("o1", "T-LONG", map[string]string{"thing1": "x", "time2": "15:01"}))
	f.Add(good)
	f.Add([]byte(`{"touser":"o1","template_id":"T-LONG","data":{"thing1":{"value":"x"},"time2":{"value":"25:00"}}}`))
	f.Add([]byte(`{"touser":"o1","template_id":"T-LONG","data":[]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		before := sim.delivered.Load()
		req := httptest.NewRequest("POST", "/cgi-bin/message/subscribe/send?access_token="+tok, bytes.NewReader(data))
		w := httptest.NewRecorder()
		sim.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		var r struct {
			ErrCode *int `json:"errcode"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil || r.ErrCode == nil {
			t.Fatalf("reply %q: %v", w.Body.Bytes(), err)
		}
		if (*r.ErrCode == 0) != (sim.delivered.Load() == before+1) {
			t.Fatalf("errcode %d but delivered %d -> %d", *r.ErrCode, before, sim.delivered.Load())
		}
	})
}

// FuzzDecodeSend checks that the fast path of decodeSend agrees with
// encoding/json whenever it accepts a body.
func FuzzDecodeSend(f *testing.F) {
	f.Add(benchBody("o1"))
	f.Add([]byte(`{"touser":"o1","TOUSER":"o2","data":{"a":{"value":"x"},"a":{"value":"y"}}}`))
	f.Add([]byte(`{"touser":"o\u00e91","data":{"thing1":{"value":"\n"}}}`))
	f.Add([]byte(`{"touser":"o1","data":null}`))
	f.Add([]byte(` { "page" : "p" , "data" : { } } `))
	f.Add([]byte(`{"touser":"\xff"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast, slow sendReq
		ok := fastDecodeSend(data, &fast)
		err := slowDecodeSend(data, &slow)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path accepted %q, encoding/json: %v", data, err)
		}
		if fmt.Sprintf("%#v", fast) != fmt.Sprintf("%#v", slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", data, fast, slow)
		}
	})
}
