package wxsim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestTokenCredentialChecks: the IP whitelist (40164) and a frozen secret
// (40243) are answered on the token endpoints, after appid and secret.
func TestTokenCredentialChecks(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		code float64
	}{
		{"allowed", Config{AllowedIPs: []string{"127.0.0.1"}}, 0},
		{"not whitelisted", Config{AllowedIPs: []string{"10.0.0.1"}}, 40164},
		{"frozen", Config{SecretFrozen: true}, 40243},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.AppID, tt.cfg.Secret = "wx1", "s1"
			s, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(s.Handler())
			defer srv.Close()
			for _, call := range []func() (*http.Response, error){
				func() (*http.Response, error) {
					return http.Post(srv.URL+"/cgi-bin/stable_token", "application/json",
						strings.NewReader(`{"grant_type":"client_credential","appid":"wx1","secret":"s1"}`))
				},
				func() (*http.Response, error) {
					return http.Get(srv.URL + "/cgi-bin/token?grant_type=client_credential&appid=wx1&secret=s1")
				},
			} {
				resp, err := call()
				if err != nil {
					t.Fatal(err)
				}
				var r map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&r)
				resp.Body.Close()
				code, _ := r["errcode"].(float64)
				if code != tt.code || tt.code == 0 && r["access_token"] == nil {
					t.Errorf("reply %v, want errcode %v", r, tt.code)
				}
			}
		})
	}
}
