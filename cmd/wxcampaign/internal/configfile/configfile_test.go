package configfile

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// testConfig has every field type the decoder knows.
type testConfig struct {
	Name   string        `yaml:"name"`
	Wait   time.Duration `yaml:"wait"`
	Rate   float64       `yaml:"rate"`
	N      int           `yaml:"n"`
	Big    int64         `yaml:"big"`
	On     *bool         `yaml:"on"`
	List   []string      `yaml:"list"`
	Inner  inner         `yaml:"inner"`
	Opt    *inner        `yaml:"opt"`
	Hidden string        `yaml:"-"`
}

type inner struct {
	Level string `yaml:"level"`
	Max   int    `yaml:"max"`
}

func TestDecode(t *testing.T) {
	d := New("c.yaml", []byte("name: a\nwait: 1m30s\nrate: 2.5\nn: 3\nbig: 4\non: false\nlist: [x, y]\ninner: {level: info, max: 9}\nopt:\n  max: 1\n"))
	var c testConfig
	d.Decode(&c)
	if err := d.Err(); err != nil {
		t.Fatal(err)
	}
	want := "{a 1m30s 2.5 3 4 false [x y] {info 9} {max 1}}"
	got := fmt.Sprintf("{%s %s %v %d %d %v %v {%s %d} {max %d}}", c.Name, c.Wait, c.Rate, c.N, c.Big, *c.On, c.List, c.Inner.Level, c.Inner.Max, c.Opt.Max)
	if got != want || !d.Has("inner.max") || d.Has("inner.level.x") {
		t.Errorf("got %s, want %s", got, want)
	}
}

// TestProblems: each problem at its position, all of them, in file order.
func TestProblems(t *testing.T) {
	src := `name: [a]
wait: soon
rate: fast
n: 1.5
on: maybe
list: x
inner:
  levle: info
  max: 1
inner: {}
hidden: x
`
	d := New("c.yaml", []byte(src))
	var c testConfig
	d.Decode(&c)
	d.SetFromEnv("name", "ENV_NAME")
	d.ErrorAt("name", "bad name")
	d.ErrorAt("opt.max", "no opt")
	d.Section(errors.Join(wxcampaign.FieldErrorf("max", "too big"), errors.New("plain")), "inner", nil)
	want := []string{
		"c.yaml:1:7: name: expected a single value, got a list",
		`c.yaml:2:7: wait: expected a duration such as 500ms, 5s, 2m or 1h30m, got "soon"`,
		`c.yaml:3:7: rate: expected a number, got "fast"`,
		`c.yaml:4:4: n: expected an integer, got "1.5"`,
		`c.yaml:5:5: on: expected true or false, got "maybe"`,
		`c.yaml:6:7: list: expected a list of strings, got "x"`,
		"c.yaml:7:1: inner: plain",
		"c.yaml:8:3: inner.levle: unknown key (did you mean level?)",
		"c.yaml:9:8: inner.max: too big",
		"c.yaml:10:1: inner: repeated key (first at line 7)",
		"c.yaml:11:1: hidden: unknown key",
		"c.yaml: name: bad name (from ENV_NAME)",
		"c.yaml: opt.max: no opt",
	}
	err := d.Err()
	if err == nil {
		t.Fatal("no problems")
	}
	got := strings.Split(err.Error(), "\n")
	for i := range max(len(got), len(want)) {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if !strings.HasPrefix(g, w) || w == "" {
			t.Errorf("line %d\n got %s\nwant %s", i+1, g, w)
		}
	}
}

func TestSyntaxAndShape(t *testing.T) {
	for src, want := range map[string]string{
		"a: [1\n":        "c.yaml:2:1: invalid YAML",
		"- a\n":          "c.yaml:1:1: the config must be a mapping of keys, got a list",
		"a: 1\n---\nb\n": "c.yaml:2:1: more than one YAML document",
		"":               "",
		"# only\n":       "",
		"~\n":            "",
	} {
		d := New("c.yaml", []byte(src))
		var c testConfig
		d.Decode(&c)
		err := d.Err()
		if (err == nil) != (want == "") || err != nil && !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
		if want == "" && !d.Decoded() {
			t.Errorf("%q: not decoded", src)
		}
	}
}

// FuzzDecode: the decoder never panics, and every problem names the file,
// with a position inside it when it has one.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"name: a\nwait: 1s\nrate: 1\nn: 1\nbig: 1\non: true\nlist: [a]\ninner: {level: x, max: 1}\nopt: {max: 2}\n",
		"a: &x [*x]\n", "inner: &a {max: *a}\n", "<<: {n: 1}\n", "list: [a, {b: c}, ~]\n", "n: 99999999999999999999\n",
		"wait: 0\n", "rate: .nan\n", "--- \n---\n", "name: !!binary aGk=\n", "? [a]\n: b\n",
	} {
		f.Add([]byte(s))
	}
	line := regexp.MustCompile(`^c\.yaml(:(\d+):(\d+))?: `)
	f.Fuzz(func(t *testing.T, data []byte) {
		d := New("c.yaml", data)
		var c testConfig
		d.Decode(&c)
		err := d.Err()
		if err == nil {
			return
		}
		lines := countLines(data)
		for _, l := range strings.Split(err.Error(), "\n") {
			m := line.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("problem without the file: %q", l)
			}
			if m[2] != "" {
				var n int
				fmt.Sscan(m[2], &n)
				if n < 1 || n > lines {
					t.Fatalf("line %d outside the file of %d lines: %q", n, lines, l)
				}
			}
		}
	})
}
