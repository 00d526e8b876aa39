package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/creack/pty"

	"github.com/wxcampaign/wxcampaign/store/storetest"
)

// onTerminal runs Main with stderr on a pseudo-terminal and returns the
// exit code and what the terminal showed.
func onTerminal(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var shown bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&shown, ptmx)
	}()
	var out bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, tty, func(k string) string { return env[k] })
	tty.Close()
	wg.Wait()
	return code, shown.String()
}

func TestProgressOnTerminal(t *testing.T) {
	w := newWorld(t, storetest.SQLite(t))
	var lines strings.Builder
	for i := range 300 {
		lines.WriteString(`{"openId":"u` + itoa(i) + `","scene":"add_to_cart","busNo":"p1","extraVariableMap":{"saved_price":"15.00"},"agreeTemplateIds":["tplPriceDrop0000000000000000000000000000001"],"rejectTemplateIds":[],"requestId":"r` + itoa(i) + `"}` + "\n")
	}
	file := w.dir + "/g.jsonl"
	must(t, os.WriteFile(file, []byte(lines.String()), 0o644))
	st, _ := os.Stat(file)
	size := itoa(int(st.Size()))

	code, shown := onTerminal(t, w.env, "grants", "import", "--config", w.cfgPath, file)
	if code != 0 || !strings.Contains(shown, "] "+size+"/"+size+" bytes") || !strings.Contains(shown, "0s left") {
		t.Fatalf("import on a terminal: exit %d, shown %q", code, shown)
	}
	camp := w.dir + "/campaigns/price-drop.yaml"
	at := afterGrants()
	code, shown = onTerminal(t, w.env, "preview", "--config", w.cfgPath, "--at", at, camp)
	if code != 0 || !strings.Contains(shown, "\r[##############################] 300/300 grants") || !strings.Contains(shown, "/s") {
		t.Fatalf("preview on a terminal: exit %d, shown %q", code, shown)
	}
	// JSON output, or stderr not a terminal: no bar.
	if code, shown = onTerminal(t, w.env, "preview", "--config", w.cfgPath, "--at", at, "--format", "json", camp); code != 0 || strings.Contains(shown, "grants") {
		t.Errorf("preview --format json on a terminal: exit %d, shown %q", code, shown)
	}
	code, out, errOut := run(t, w.env, "preview", "--config", w.cfgPath, "--at", at, camp)
	if code != 0 || strings.Contains(out+errOut, "\r[") {
		t.Errorf("preview off a terminal drew a bar: %q", errOut)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
