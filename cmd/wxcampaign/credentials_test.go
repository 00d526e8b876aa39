package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

const testSecret = "s3cr3t-of-the-test-app"

// importOneGrant gives the world one grant whose rule is true and a credit
// for it, so that a send that goes ahead delivers a message.
func importOneGrant(t *testing.T, w *world) {
	t.Helper()
	line := `{"openId":"u1","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r1"}`
	file := filepath.Join(w.dir, "grants.jsonl")
	must(t, os.WriteFile(file, []byte(line+"\n"), 0o644))
	if code, out, errOut := run(t, w.env, "grants", "import", "--config", w.cfgPath, file); code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	w.sim.AddCredits("u1", "tplPriceDrop0000000000000000000000000000001", 1)
}

// TestSendChecksCredentialsAtStart is issue 12 item 11: with a wrong secret
// and a token still valid in the store, send and run stop at start and say
// which credential is wrong; nothing is sent.
func TestSendChecksCredentialsAtStart(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	importOneGrant(t, w)
	ctx := context.Background()
	cfg, err := loadConfig(w.cfgPath, func(k string) string { return w.env[k] }, 0)
	must(t, err)
	// A process with the right secret stored a token that is still valid.
	db, err := store.Open(ctx, cfg.Database)
	must(t, err)
	good, err := wechat.New(wechat.Config{BaseURL: cfg.WeChat.BaseURL, AppID: "wxtestapp", Secret: testSecret, Tokens: db})
	must(t, err)
	if _, err := good.Token(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()

	ipSim, err := wxsim.New(wxsim.Config{AppID: "wxtestapp", Secret: testSecret, AllowedIPs: []string{"10.1.2.3"}})
	must(t, err)
	ipSrv := httptest.NewServer(ipSim.Handler())
	defer ipSrv.Close()
	frozenSim, err := wxsim.New(wxsim.Config{AppID: "wxtestapp", Secret: testSecret, SecretFrozen: true})
	must(t, err)
	frozenSrv := httptest.NewServer(frozenSim.Handler())
	defer frozenSrv.Close()

	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"wrong secret", map[string]string{envSecret: "not-the-secret"}, "wechat.secret (WXC_WECHAT_SECRET) is wrong for appid \"wxtestapp\" (errcode 40125)"},
		{"wrong appid", map[string]string{envSecret: testSecret, envAppID: "wxnotmine"}, "wechat.appid \"wxnotmine\" is wrong: WeChat does not know it (errcode 40013)"},
		{"ip not whitelisted", map[string]string{envSecret: testSecret, envBaseURL: ipSrv.URL}, "IP address is not in the mini program's IP whitelist"},
		{"frozen secret", map[string]string{envSecret: testSecret, envBaseURL: frozenSrv.URL}, "AppSecret of \"wxtestapp\" is frozen (errcode 40243)"},
	}
	for _, tt := range tests {
		for _, args := range [][]string{{"send", "--config", w.cfgPath, camp}, {"run", "--config", w.cfgPath, "--listen", "127.0.0.1:0"}} {
			t.Run(tt.name+"/"+args[0], func(t *testing.T) {
				tt.env[envHTTPToken] = "tok"
				start := time.Now()
				code, out, errOut := run(t, tt.env, args...)
				if code != 1 || !strings.Contains(errOut, tt.want) {
					t.Errorf("exit %d\n%s\n%s\nwant exit 1 saying %q", code, out, errOut, tt.want)
				}
				if d := time.Since(start); d > 5*time.Second {
					t.Errorf("took %s", d)
				}
				if strings.Contains(out+errOut, "not-the-secret") || strings.Contains(out+errOut, testSecret) {
					t.Error("a secret in the output")
				}
			})
		}
	}
	if n := len(w.sim.Messages()); n != 0 {
		t.Fatalf("%d messages sent with wrong credentials", n)
	}
}

// TestFailedTokenFetchDoesNotDelayNextCommand: after a send that failed on
// its credentials, the next send (secret fixed) does not wait for a token
// refresh lease the failed one left behind.
func TestFailedTokenFetchDoesNotDelayNextCommand(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	importOneGrant(t, w)
	camp := filepath.Join(w.dir, "campaigns", "price-drop.yaml")
	if code, _, _ := run(t, map[string]string{envSecret: "not-the-secret"}, "send", "--config", w.cfgPath, camp); code != 1 {
		t.Fatalf("wrong secret: exit %d, want 1", code)
	}
	start := time.Now()
	code, out, errOut := run(t, w.env, "send", "--config", w.cfgPath, "--at", "2026-11-22T10:00:00+08:00", camp)
	if code != 0 || !strings.Contains(out, "sent 1") {
		t.Fatalf("send: exit %d\n%s\n%s", code, out, errOut)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the send after a failed one took %s", d)
	}
}
