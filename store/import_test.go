package store_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/store/storetest"
)

const goodAndBad = `{"openId":"u1","scene":"cart","busNo":"sku-1","extraVariableMap":{"price":9.9},"agreeTemplateIds":["A","B"],"rejectTemplateIds":[],"requestId":"q1"}
{"openId":"u2","agreeTemplateIds":["A"],"requestId":"q2"}

{"openId":"u3","agreeTemplateIds":["A"],"requestId":"q3","colour":"red"}
{"openId":"u4","agreeTemplateIds":["A"]}
not json at all
{"openId":"u5","agreeTemplateIds":["A"],"requestId":"q1"}
   
{"openId":"u6","rejectTemplateIds":["A"],"requestId":"q6"}
{"openId":"u7","agreeTemplateIds":["A"],"requestId":"q7"} {"x":1}
{"openId":"u8","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"q8"}
{"openId":"u9","agreeTemplateIds":"A","requestId":"q9"}
{"openId":"u10","agreeTemplateIds":["A"],"requestId":"q10"}`

func TestImport(t *testing.T) {
	wantBad := []int{4, 5, 6, 10, 12}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, aon := range []bool{true, false} {
			rep, err := db.Import(ctx, strings.NewReader(goodAndBad), store.ImportOptions{AllOrNothing: aon, BatchSize: 2, Now: func() time.Time { return t0 }})
			if err != nil {
				t.Fatal(err)
			}
			var lines []int
			for _, b := range rep.Bad {
				lines = append(lines, b.Line)
				if b.Err == "" {
					t.Errorf("line %d: empty error", b.Line)
				}
			}
			if fmt.Sprint(lines) != fmt.Sprint(wantBad) || rep.BadCount != len(wantBad) {
				t.Errorf("AllOrNothing=%v: bad lines %v (count %d), want %v", aon, lines, rep.BadCount, wantBad)
			}
			want := store.ImportReport{Lines: 13, Imported: 5, Duplicates: 1, Credits: 4, LongTerm: 1, Rejected: 1, Blank: 2, BadCount: 5}
			if aon {
				want.Imported, want.Duplicates, want.Credits, want.LongTerm, want.Rejected = 0, 0, 0, 0, 0
			}
			rep.Bad = nil
			if fmt.Sprintf("%+v", rep) != fmt.Sprintf("%+v", want) {
				t.Errorf("AllOrNothing=%v: report %+v, want %+v", aon, rep, want)
			}
			wantA := map[bool]int{true: 0, false: 3}[aon]
			if n := must[int](t)(db.CountAvailable(ctx, "A", t0)); n != wantA {
				t.Errorf("AllOrNothing=%v: credits of A = %d, want %d", aon, n, wantA)
			}
		}
		// Importing again adds nothing.
		rep, err := db.Import(ctx, strings.NewReader(goodAndBad), store.ImportOptions{})
		if err != nil || rep.Imported != 0 || rep.Duplicates != 6 {
			t.Errorf("re-import: %+v %v", rep, err)
		}
		// All good lines with AllOrNothing: everything in one transaction.
		good := "{\"openId\":\"v1\",\"agreeTemplateIds\":[\"Z\"],\"requestId\":\"z1\"}\n{\"openId\":\"v2\",\"agreeTemplateIds\":[\"Z\"],\"requestId\":\"z2\"}\n"
		rep, err = db.Import(ctx, strings.NewReader(good), store.ImportOptions{AllOrNothing: true, BatchSize: 1})
		if err != nil || rep.Imported != 2 || rep.Credits != 2 {
			t.Errorf("all good, all or nothing: %+v %v", rep, err)
		}
	})
}

// failingReader returns data, then err.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// TestImportNoHalfBatch: a failure mid-import leaves whole batches only
// (and nothing at all with AllOrNothing).
func TestImportNoHalfBatch(t *testing.T) {
	var b strings.Builder
	for i := range 5 {
		fmt.Fprintf(&b, `{"openId":"u%d","agreeTemplateIds":["A"],"requestId":"r%d"}`+"\n", i, i)
	}
	b.WriteString(`{"openId":"u5","agreeTemplateIds":["A"],"requestId":"r5"}`) // no newline: the read fails here
	boom := errors.New("disk on fire")
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, tc := range []struct {
			aon  bool
			want int
		}{{true, 0}, {false, 4}} {
			rep, err := db.Import(ctx, &failingReader{strings.NewReader(b.String()), boom}, store.ImportOptions{AllOrNothing: tc.aon, BatchSize: 2})
			if !errors.Is(err, boom) {
				t.Fatalf("err = %v, want %v", err, boom)
			}
			n := must[int](t)(db.CountAvailable(ctx, "A", time.Now()))
			if n != tc.want || rep.Imported != tc.want {
				t.Errorf("AllOrNothing=%v: %d credits stored, report %d; want %d (whole batches only)", tc.aon, n, rep.Imported, tc.want)
			}
		}
	})
}

func TestImportLongLine(t *testing.T) {
	db := storetest.Open(t, storetest.SQLite(t))
	long := `{"openId":"u1","agreeTemplateIds":["A"],"requestId":"r1","scene":"` + strings.Repeat("x", 2<<20) + `"}`
	in := long + "\n" + `{"openId":"u2","agreeTemplateIds":["A"],"requestId":"r2"}` + "\n"
	rep, err := db.Import(context.Background(), strings.NewReader(in), store.ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 2 || rep.Imported != 1 || rep.BadCount != 1 || rep.Bad[0].Line != 1 || !strings.Contains(rep.Bad[0].Err, "longer") {
		t.Errorf("report %+v", rep)
	}
}

// genLines writes n subscription lines like a mini program backend's:
// mostly one accepted one-time id, some two, some rejects.
func genLines(n int) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		var buf bytes.Buffer
		for i := range n {
			buf.WriteString(`{"openId":"oUpF8uMuAJO_M2pxb1Q9zNjW`)
			buf.WriteString(strconv.Itoa(i % 200000))
			buf.WriteString(`","scene":"cart","busNo":"sku-`)
			buf.WriteString(strconv.Itoa(i % 5000))
			buf.WriteString(`","extraVariableMap":{"price":`)
			buf.WriteString(strconv.Itoa(100 + i%900))
			buf.WriteString(`.5,"title":"Spring sale"},"agreeTemplateIds":["`)
			switch i % 10 {
			case 0:
				buf.WriteString(`tmpl-price","tmpl-stock"],"rejectTemplateIds":[]`)
			case 1:
				buf.WriteString(`tmpl-price"],"rejectTemplateIds":["tmpl-stock"]`)
			default:
				buf.WriteString(`tmpl-price"],"rejectTemplateIds":[]`)
			}
			buf.WriteString(`,"requestId":"req-`)
			buf.WriteString(strconv.Itoa(i))
			buf.WriteString("\"}\n")
			if buf.Len() > 1<<20 {
				if _, err := pw.Write(buf.Bytes()); err != nil {
					return
				}
				buf.Reset()
			}
		}
		_, _ = pw.Write(buf.Bytes())
		pw.Close()
	}()
	return pr
}

// TestImportMillion is the import target (issue 14): WXC_IMPORT_MILLION=1
// imports 1,000,000 lines into MariaDB (or WXC_IMPORT_DRIVER=sqlite) and
// fails above 10 s. Run:
//
//	WXC_IMPORT_MILLION=1 go test -run TestImportMillion -v ./store/
func TestImportMillion(t *testing.T) {
	if os.Getenv("WXC_IMPORT_MILLION") == "" {
		t.Skip("set WXC_IMPORT_MILLION=1 to import 1,000,000 lines (the 10 s target)")
	}
	n := 1_000_000
	if s := os.Getenv("WXC_IMPORT_LINES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	cfg := storetest.MySQL(t)
	if os.Getenv("WXC_IMPORT_DRIVER") == store.SQLite {
		cfg = storetest.SQLite(t)
	}
	db := storetest.Open(t, cfg)
	bs, _ := strconv.Atoi(os.Getenv("WXC_IMPORT_BATCH"))
	start := time.Now()
	rep, err := db.Import(context.Background(), genLines(n), store.ImportOptions{BatchSize: bs})
	el := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Imported != n || rep.BadCount != 0 {
		t.Fatalf("report %+v", rep)
	}
	t.Logf("%s: %d lines (%d credits, %d rejects) in %v: %.0f lines/s", cfg.Driver, n, rep.Credits, rep.Rejected, el.Round(time.Millisecond), float64(n)/el.Seconds())
	if n == 1_000_000 && el > 10*time.Second {
		t.Errorf("1,000,000 lines took %v, target 10 s", el)
	}
}

// BenchmarkImport imports 10,000 lines per op on each driver.
func BenchmarkImport(b *testing.B) {
	for _, nc := range storetest.Drivers(b) {
		b.Run(nc.Name, func(b *testing.B) {
			db := storetest.Open(b, nc.Config)
			const lines = 10000
			b.SetBytes(0)
			for i := 0; b.Loop(); i++ {
				var buf bytes.Buffer
				for j := range lines {
					fmt.Fprintf(&buf, `{"openId":"u%d","agreeTemplateIds":["A"],"extraVariableMap":{"price":1.5},"requestId":"b%d-%d"}`+"\n", j, i, j)
				}
				rep, err := db.Import(context.Background(), &buf, store.ImportOptions{})
				if err != nil || rep.Imported != lines {
					b.Fatalf("%+v %v", rep, err)
				}
			}
			b.ReportMetric(float64(lines*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}

// TestImportBulkEscaping imports a batch big enough for the bulk path
// (LOAD DATA on MySQL) with tabs, newlines, backslashes and Chinese text,
// and reads them back unchanged.
func TestImportBulkEscaping(t *testing.T) {
	weird := "a\tb\\c\nd\r'\"e 中文 \\N"
	scene := `\N` // LOAD DATA's NULL marker; scenes take no control characters
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var b strings.Builder
		for i := range 200 {
			line, _ := json.Marshal(map[string]any{"openId": fmt.Sprint("u\t", i), "scene": scene, "busNo": weird, "requestId": fmt.Sprint("w", i),
				"extraVariableMap": map[string]any{"s": weird, "n": i}, "agreeTemplateIds": []string{"W"}, "rejectTemplateIds": []string{"V"}})
			b.Write(line)
			b.WriteByte('\n')
		}
		rep, err := db.Import(ctx, strings.NewReader(b.String()), store.ImportOptions{BatchSize: 1000, Now: func() time.Time { return t0 }})
		if err != nil || rep.Imported != 200 || rep.Rejected != 200 {
			t.Fatalf("%+v %v", rep, err)
		}
		gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "W", 0, 1000, t0))
		if len(gs) != 200 {
			t.Fatalf("%d grants", len(gs))
		}
		g := gs[7]
		if g.OpenID != "u\t7" || g.Scene != scene || g.BizNo != weird || g.Vars["s"] != weird || g.Vars["n"] != 7.0 || !g.GrantedAt.Equal(t0) {
			t.Errorf("round trip: %+v", g)
		}
		// A bulk re-import finds every requestId already claimed.
		rep, err = db.Import(ctx, strings.NewReader(b.String()), store.ImportOptions{BatchSize: 1000, Now: func() time.Time { return t0 }})
		if err != nil || rep.Imported != 0 || rep.Duplicates != 200 {
			t.Errorf("bulk re-import: %+v %v", rep, err)
		}
	})
}

// TestImportLongTermOrder: within one batch a reject revokes the earlier
// long-term accepts of that user and template, not the later ones.
func TestImportLongTermOrder(t *testing.T) {
	in := `{"openId":"u1","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"a1"}
{"openId":"u2","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"a2"}
{"openId":"u1","rejectTemplateIds":["LT"],"requestId":"a3"}
{"openId":"u1","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"a4"}
`
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		if _, err := db.Import(ctx, strings.NewReader(in), store.ImportOptions{Now: func() time.Time { return t0 }}); err != nil {
			t.Fatal(err)
		}
		gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, "LT", 0, 10, t0))
		var got []string
		for _, g := range gs {
			got = append(got, g.OpenID+"/"+string(g.Kind))
		}
		if want := "[u2/long_term u1/long_term]"; fmt.Sprint(got) != want {
			t.Errorf("available %v, want %s", got, want)
		}
	})
}

// TestImportParallelOrder: batches written at once (MySQL) give the
// result of writing them in order: the first line of a request id wins
// over a later batch's, and a reject revokes the long-term grants of the
// batches before it, not after it. One line per batch makes every pair
// meet in adjacent batches.
func TestImportParallelOrder(t *testing.T) {
	const pairs = 150
	var b strings.Builder
	for i := range pairs {
		fmt.Fprintf(&b, `{"openId":"first%d","agreeTemplateIds":["D"],"requestId":"dup%d"}`+"\n", i, i)
		fmt.Fprintf(&b, `{"openId":"second%d","agreeTemplateIds":["D"],"requestId":"dup%d"}`+"\n", i, i)
		fmt.Fprintf(&b, `{"openId":"revoked%d","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"lt-a%d"}`+"\n", i, i)
		fmt.Fprintf(&b, `{"openId":"revoked%d","rejectTemplateIds":["LT"],"requestId":"lt-r%d"}`+"\n", i, i)
		fmt.Fprintf(&b, `{"openId":"kept%d","rejectTemplateIds":["LT"],"requestId":"lt-kr%d"}`+"\n", i, i)
		fmt.Fprintf(&b, `{"openId":"kept%d","agreeTemplateIds":["LT"],"longTermTemplateIds":["LT"],"requestId":"lt-ka%d"}`+"\n", i, i)
	}
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		rep, err := db.Import(ctx, strings.NewReader(b.String()), store.ImportOptions{BatchSize: 1, Now: func() time.Time { return t0 }})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Imported != 5*pairs || rep.Duplicates != pairs {
			t.Errorf("report %+v, want %d imported, %d duplicates", rep, 5*pairs, pairs)
		}
		for _, tc := range []struct{ tmpl, prefix string }{{"D", "first"}, {"LT", "kept"}} {
			gs := must[[]wxcampaign.Grant](t)(db.ListAvailable(ctx, tc.tmpl, 0, 10*pairs, t0))
			if len(gs) != pairs {
				t.Errorf("%s: %d grants available, want %d", tc.tmpl, len(gs), pairs)
			}
			for _, g := range gs {
				if !strings.HasPrefix(g.OpenID, tc.prefix) {
					t.Errorf("%s: grant of %s available, want only %s*", tc.tmpl, g.OpenID, tc.prefix)
				}
			}
		}
	})
}
