package campaigns

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// FuzzParse: any input yields either a campaign or a non-empty ErrorList in
// which every error carries the file name and a position inside the input.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		if data, err := os.ReadFile(file); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("when: |\n  a &&\n  &&\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("schedule: 'TZ='\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, engineDefaults)
		if err == nil {
			if c == nil || c.Cron == nil || c.Program == nil || c.Location == nil || len(c.Data) == 0 {
				t.Fatalf("valid campaign is incomplete: %+v", c)
			}
			return
		}
		if c != nil {
			t.Fatal("campaign returned with an error")
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
		}
		lines := len(splitLines(string(data)))
		for _, e := range list {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Col < 1 || e.Msg == "" {
				t.Fatalf("badly positioned error: %#v", e)
			}
			if utf8.Valid(data) && e.Line > lines {
				t.Fatalf("error line %d beyond the input's %d lines: %v", e.Line, lines, e)
			}
		}
	})
}
