package wechat

import (
	"strings"
	"testing"
	"time"
)

// TestConfigValidate: bad values are reported by key; an empty appid and
// secret are valid here (New requires them).
func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{BaseURL: "http://127.0.0.1:9090/", Timeout: time.Second}, ""},
		{Config{BaseURL: "ftp://x"}, "base_url: must be an http(s) URL"},
		{Config{BaseURL: "api.weixin.qq.com"}, "base_url: must be an http(s) URL"},
		{Config{Timeout: -time.Second}, "timeout: must be 0 (default 5s) or at least 1ms"},
		{Config{RefreshAhead: -time.Second}, "refresh_ahead: must be 0"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
