package reliability

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestSecretsNeverLeak runs a whole send with debug logging and a known
// app secret, then a send with a wrong secret (so errors are printed), and
// fails if the secret or the access token appears in any line.
func TestSecretsNeverLeak(t *testing.T) {
	w := newWorld(t, worldOpts{grants: 300, logLevel: "debug"})
	_, out, err := w.send("2026-11-22T10:00:00+08:00")
	if err != nil {
		t.Fatalf("send: %v\n%s", err, out)
	}
	var token string
	if err := w.db.SQLX().GetContext(context.Background(), &token, `SELECT token FROM tokens LIMIT 1`); err != nil || len(token) < 16 {
		t.Fatalf("shared token: %q %v", token, err)
	}
	// A wrong secret and no shared token: the token fetch fails and the
	// error is printed.
	if _, err := w.db.SQLX().ExecContext(context.Background(), `DELETE FROM tokens`); err != nil {
		t.Fatal(err)
	}
	c, bad := w.cmd("send", "send", "--config", w.cfgPath, "--at", "2026-11-22T10:10:00+08:00", w.campaign)
	c.Env = append(os.Environ(), "WXC_WECHAT_SECRET=wrong-secret-for-the-leak-test")
	if err := c.Run(); err == nil {
		t.Fatalf("send with a wrong secret succeeded:\n%s", bad)
	}
	all := out + bad.String()
	if !strings.Contains(bad.String(), "WeChat") {
		t.Errorf("the failure does not say what failed:\n%s", bad)
	}
	for name, secret := range map[string]string{"app secret": appSecret, "wrong secret": "wrong-secret-for-the-leak-test", "access token": token} {
		if strings.Contains(all, secret) {
			t.Errorf("the %s appears in the output", name)
		}
	}
	if len(w.sim.Messages()) != 300 {
		t.Errorf("%d delivered, want 300", len(w.sim.Messages()))
	}
}
