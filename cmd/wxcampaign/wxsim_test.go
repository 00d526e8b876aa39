package main

import (
	"context"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestWxsimListensBeforeSayingSo is issue 12 item 16: when the address is
// taken, wxsim fails without having printed "listening"; when it binds,
// it prints the address it listens on (port 0 resolved).
func TestWxsimListensBeforeSayingSo(t *testing.T) {
	templates := filepath.Join(repoRoot(t), "configs", "templates.yaml")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer taken.Close()
	code, out, errOut := run(t, nil, "wxsim", "--appid", "wx1", "--secret", "s", "--templates", templates, "--listen", taken.Addr().String())
	if code != 1 || strings.Contains(out, "listening") || !strings.Contains(errOut, "listen "+taken.Addr().String()) {
		t.Errorf("address taken: exit %d\nstdout %q\nstderr %q\nwant exit 1, no \"listening\", the bind error", code, out, errOut)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outb, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"wxsim", "--appid", "wx1", "--secret", "s", "--templates", templates, "--listen", "127.0.0.1:0"},
			strings.NewReader(""), outb, errb, func(string) string { return "" })
	}()
	re := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`)
	for deadline := time.Now().Add(10 * time.Second); ; {
		if m := re.FindStringSubmatch(outb.String()); m != nil {
			if m[1] == "127.0.0.1:0" {
				t.Fatalf("printed the requested address, not the bound one: %s", outb)
			}
			c, err := net.Dial("tcp", m[1])
			if err != nil {
				t.Fatalf("said listening on %s but: %v", m[1], err)
			}
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no listening line: %s %s", outb, errb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d: %s", code, errb)
	}
}
