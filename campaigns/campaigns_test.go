package campaigns

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/rules"
)

var shanghai = mustZone("Asia/Shanghai")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// engineDefaults are the defaults the tests load with: a zone no fixture
// names, so a test can tell the default from a file's value.
var engineDefaults = Defaults{Location: time.UTC, State: "trial", Lang: "en_US"}

func TestValidFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) < 6 {
		t.Fatalf("valid fixtures: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := LoadFile(f, engineDefaults)
			if err != nil {
				t.Fatalf("LoadFile: %v", err)
			}
			if c.Program == nil || c.Cron == nil || c.Location == nil || c.File != f {
				t.Errorf("incomplete campaign: program %v cron %v location %v file %q", c.Program, c.Cron, c.Location, c.File)
			}
		})
	}
}

// TestExamples: the example campaigns shipped in configs/campaigns load as a
// set, and the testdata copies are identical to them.
func TestExamples(t *testing.T) {
	const dir = "../configs/campaigns"
	cs, err := LoadPaths([]string{dir}, engineDefaults)
	if err != nil {
		t.Fatalf("LoadPaths(%s): %v", dir, err)
	}
	var names []string
	for _, c := range cs {
		names = append(names, c.Name)
		copyData, err := os.ReadFile(filepath.Join("testdata/valid", filepath.Base(c.File)))
		if err != nil {
			t.Errorf("no testdata copy of %s: %v", c.File, err)
			continue
		}
		if orig, _ := os.ReadFile(c.File); string(orig) != string(copyData) {
			t.Errorf("testdata/valid/%s differs from %s", filepath.Base(c.File), c.File)
		}
	}
	want := []string{"activity-launched", "appointment-reminder", "order-unpaid", "price-drop"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
}

func TestPriceDropContract(t *testing.T) {
	c, err := LoadFile("testdata/valid/price-drop.yaml", engineDefaults)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Name", c.Name, "price-drop"},
		{"Description", c.Description, "商品降价提醒"},
		{"Enabled", c.Enabled, true},
		{"Schedule", c.Schedule, "*/10 * * * *"},
		{"Timezone", c.Timezone, "Asia/Shanghai"},
		{"Location", c.Location.String(), "Asia/Shanghai"},
		{"Template", c.Template, Template{ID: "bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c", Kind: wxcampaign.OneTime,
			Page: `"pages/goods/detail?id=" + grant.biz_no`, State: "formal", Lang: "zh_CN"}},
		{"Scenes", c.Scenes, []string{"add_to_cart"}},
		{"Facts", c.Facts, []Fact{{Name: "product", Query: "SELECT id, name, price, stock FROM products WHERE id IN (:keys)",
			Key: "grant.biz_no", Column: "id"}}},
		{"When", c.When, "product != nil && product.price < num(grant.vars.saved_price) && product.stock > 0"},
		{"Data", c.Data, []rules.Field{{Key: "thing1", Expr: "product.name"}, {Key: "amount2", Expr: "money(product.price)"},
			{Key: "amount3", Expr: "money(num(grant.vars.saved_price))"}, {Key: "thing4", Expr: `"降价了，快来看看"`}}},
		{"Overflow", c.Overflow, rules.Overflow("truncate")},
		{"Enums", len(c.Enums), 0},
		{"Limits", c.Limits, []Limit{{ScopeUserTemplate, 1, 24 * time.Hour}, {ScopeUser, 3, 24 * time.Hour}}},
		{"QuietHours", *c.QuietHours, QuietHours{From: 22 * time.Hour, To: 8 * time.Hour, Action: QuietDefer}},
		{"BatchSize", c.BatchSize, 500},
		{"PerUserPerRun", c.PerUserPerRun, 1},
		{"Repeat", c.Repeat, ""},
	}
	for _, ch := range checks {
		if !reflect.DeepEqual(ch.got, ch.want) {
			t.Errorf("%s = %#v, want %#v", ch.name, ch.got, ch.want)
		}
	}
}

func TestDefaultsAndExtensions(t *testing.T) {
	minimal, err := LoadFile("testdata/valid/minimal.yaml", engineDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if minimal.Location != time.UTC || minimal.Timezone != "UTC" || minimal.Template.State != "trial" ||
		minimal.Template.Lang != "en_US" || !minimal.Enabled || minimal.Overflow != "skip" ||
		minimal.BatchSize != 500 || minimal.PerUserPerRun != 1 || minimal.QuietHours != nil ||
		minimal.Limits != nil || minimal.Repeat != "" {
		t.Errorf("minimal defaults wrong: %+v", minimal)
	}
	bare, err := LoadFile("testdata/valid/minimal.yaml", Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	if bare.Location != time.Local || bare.Template.State != "formal" || bare.Template.Lang != "zh_CN" {
		t.Errorf("empty Defaults: location %v state %q lang %q", bare.Location, bare.Template.State, bare.Template.Lang)
	}

	all, err := LoadFile("testdata/valid/everything.yaml", engineDefaults)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name      string
		got, want any
	}{
		{"Enabled", all.Enabled, false},
		{"Location", all.Location.String(), "America/New_York"},
		{"Template", all.Template, Template{ID: "_I8N2BtJLnv0CGC6-4eYJa-kor658FDAEFNWAqojbPA", Kind: wxcampaign.LongTerm,
			Page: `"pages/index/index"`, State: "trial", Lang: "en_US"}},
		{"Scenes", all.Scenes, []string{"a", "b_c"}},
		{"Facts order", []string{all.Facts[0].Name, all.Facts[1].Name}, []string{"product", "order"}},
		{"When", all.When, "product != nil &&\norder != nil\n"},
		{"Overflow", all.Overflow, rules.Overflow("skip")},
		{"Enums", all.Enums, map[string][]string{"enum2": {"paid", "unpaid"}}},
		{"Limits", all.Limits, []Limit{{ScopeTemplate, 1000, time.Hour}, {ScopeUser, 2, 7 * 24 * time.Hour}}},
		{"QuietHours", *all.QuietHours, QuietHours{From: time.Hour, To: 6*time.Hour + 30*time.Minute, Action: QuietDrop}},
		{"BatchSize", all.BatchSize, 10000},
		{"PerUserPerRun", all.PerUserPerRun, 0},
		{"Repeat", all.Repeat, RepeatEveryRun},
	}
	for _, w := range want {
		if !reflect.DeepEqual(w.got, w.want) {
			t.Errorf("%s = %#v, want %#v", w.name, w.got, w.want)
		}
	}
	appt, err := LoadFile("testdata/valid/appointment-reminder.yaml", engineDefaults)
	if err != nil {
		t.Fatal(err)
	}
	if appt.Repeat != RepeatOnce || appt.Template.Kind != wxcampaign.LongTerm {
		t.Errorf("appointment: repeat %q kind %q", appt.Repeat, appt.Template.Kind)
	}
}

// TestInvalidFixtures is the acceptance table: each invalid fixture holds one
// problem, reported once at the right position.
func TestInvalidFixtures(t *testing.T) {
	tests := []struct {
		path string // file, or directory loaded as a set
		want string // "file:line:col: " + a substring of the message
	}{
		{"unknown-field.yaml", `unknown-field.yaml:2:1: unknown field "descripton" (did you mean "description"?)`},
		{"bad-cron.yaml", `bad-cron.yaml:2:11: schedule "*/10 * * *": expected exactly 5 fields`},
		{"bad-timezone.yaml", `bad-timezone.yaml:3:11: unknown time zone "Asia/Shangai"`},
		{"bad-kind.yaml", `bad-kind.yaml:5:9: unknown template kind "one_shot"`},
		{"expr-syntax.yaml", `expr-syntax.yaml:11:25: when: unexpected token`},
		{"unknown-fact.yaml", `unknown-fact.yaml:13:11: data.thing1: unknown name produkt`},
		{"type-mismatch.yaml", `type-mismatch.yaml:11:25: when: invalid operation: + (mismatched types int and string)`},
		{"unknown-keyword.yaml", `unknown-keyword.yaml:14:3: data key "colour1": unknown type "colour"`},
		{"phrase-letters.yaml", `phrase-letters.yaml:14:13: data.phrase2: constant can never be sent`},
		{"thing-too-long.yaml", `thing-too-long.yaml:14:12: data.thing2: constant can never be sent: longer than 20 characters`},
		{"bad-quiet-hours.yaml", `bad-quiet-hours.yaml:14:21: quiet_hours.from: "22h" is not a time of day in HH:MM form`},
		{"limit-max-zero.yaml", `limit-max-zero.yaml:15:24: limits[0].max must be at least 1, got 0`},
		{"limit-no-window.yaml", `limit-no-window.yaml:15:5: missing required field limits[0].window`},
		{"facts-no-keys.yaml", `facts-no-keys.yaml:8:12: facts.product.query must contain the :keys placeholder exactly once, found 0`},
		{"repeat-one-time.yaml", `repeat-one-time.yaml:14:9: repeat applies to long_term templates only`},
		{"empty-data.yaml", `empty-data.yaml:12:7: data must hold at least one keyword`},
		{"batch-too-big.yaml", `batch-too-big.yaml:14:13: batch_size must be between 1 and 10000, got 20000`},
		{"bad-name.yaml", `bad-name.yaml:1:7: name "Bad_Name" must be`},
		{"missing-template-id.yaml", `missing-template-id.yaml:3:1: missing required field template.id`},
		{"yaml-syntax.yaml", `yaml-syntax.yaml:3:1: invalid YAML: did not find expected ',' or '}'`},
		{"bad-scene.yaml", `bad-scene.yaml:6:17: scene "订单/详情" contains '/'`},
		{"duplicate", `duplicate/b.yaml:1:7: duplicate campaign name "same-name" (first in testdata/invalid/duplicate/a.yaml:1:7)`},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.path] = true
		t.Run(tt.path, func(t *testing.T) {
			cs, err := LoadPaths([]string{filepath.Join("testdata/invalid", tt.path)}, engineDefaults)
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("err = %v (%T), want an ErrorList", err, err)
			}
			if len(list) != 1 {
				t.Fatalf("got %d errors, want exactly 1:\n%v", len(list), err)
			}
			if got := list[0].Error(); !strings.HasPrefix(got, "testdata/invalid/"+tt.want) {
				t.Errorf("error\n got %s\nwant testdata/invalid/%s...", got, tt.want)
			}
			if tt.path == "duplicate" && len(cs) != 1 {
				t.Errorf("duplicate: %d campaigns returned, want the first one", len(cs))
			} else if tt.path != "duplicate" && len(cs) != 0 {
				t.Errorf("invalid file returned %d campaigns", len(cs))
			}
		})
	}
	files, _ := filepath.Glob("testdata/invalid/*")
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("fixture %s has no row in the table", f)
		}
	}
}

// TestAllErrorsReported: a file with many problems reports each of them, in
// position order.
func TestAllErrorsReported(t *testing.T) {
	src := `name: Many Problems
schedule: "61 * * * *"
timezone: Mars/Olympus
template:
  id: x
  kind: sometimes
  state: beta
scenes: [a, a]
facts:
  grant:
    query: SELECT 1
    key: grant.biz_no
when: "true"
data:
  thing1: '"x"'
  colour2: '"red"'
overflow: wrap
enums:
  enum9: [a]
limits:
  - {scope: world, max: -1, window: 1ms, extra: 1}
quiet_hours: {from: "25:00", to: "08:00", action: ignore}
batch_size: 0
per_user_per_run: -1
repeat: always
colour: blue
`
	_, err := Parse("many.yaml", []byte(src), engineDefaults)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		"many.yaml:1:7: name",
		"many.yaml:2:11: schedule",
		"many.yaml:3:11: unknown time zone",
		"many.yaml:6:9: unknown template kind",
		"many.yaml:7:10: template.state",
		"many.yaml:8:13: scene \"a\" is listed twice",
		"many.yaml:10:3: fact name \"grant\"",
		"many.yaml:10:3: missing required field facts.grant.column",
		"many.yaml:11:12: facts.grant.query must contain the :keys placeholder",
		"many.yaml:16:3: data key \"colour2\"",
		"many.yaml:17:11: overflow must be truncate or skip",
		"many.yaml:19:3: enums: \"enum9\" is not a key of data",
		"many.yaml:21:13: limits[0].scope",
		"many.yaml:21:25: limits[0].max must be at least 1",
		"many.yaml:21:37: limits[0].window: window must be at least 1s",
		"many.yaml:21:42: unknown field \"extra\" in limits[0]",
		"many.yaml:22:21: quiet_hours.from",
		"many.yaml:22:51: quiet_hours.action",
		"many.yaml:23:13: batch_size",
		"many.yaml:24:19: per_user_per_run",
		"many.yaml:26:1: unknown field \"colour\"",
	}
	got := strings.Split(err.Error(), "\n")
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("missing %q", w)
		}
	}
	for i := 1; i < len(list); i++ {
		a, b := list[i-1], list[i]
		if a.Line > b.Line || a.Line == b.Line && a.Col > b.Col {
			t.Errorf("errors out of order: %v before %v", a, b)
		}
	}
	if t.Failed() {
		t.Logf("got:\n%v", err)
	}
}

func TestParseShapes(t *testing.T) {
	ok := "name: n\nschedule: '@daily'\ntemplate: {id: x, kind: one_time}\nwhen: 'true'\ndata: {thing1: '\"a\"'}\n"
	tests := []struct {
		name, src, want string
	}{
		{"empty", "", "f.yaml:1:1: empty file"},
		{"comment only", "# nothing\n", "f.yaml:1:1: empty file"},
		{"list", "- a\n", "f.yaml:1:1: a campaign must be a mapping"},
		{"two documents", ok + "---\nname: m\n", "f.yaml:6:1: more than one YAML document"},
		{"duplicate key", ok + "name: m\n", `f.yaml:6:1: duplicate field "name" (first at line 1)`},
		{"wrong type", ok + "batch_size: many\n", `f.yaml:6:13: batch_size: expected an integer, got "many"`},
		{"bool type", ok + "enabled: yes\n", `f.yaml:6:10: enabled: expected true or false, got "yes"`},
		{"template list", strings.Replace(ok, "{id: x, kind: one_time}", "[x]", 1), "f.yaml:3:11: template: expected a mapping, got a list"},
		{"merge key", ok + "limits:\n  - <<: {scope: user}\n    max: 1\n    window: 1h\n", "f.yaml:7:5: merge keys (<<) are not supported"},
		{"tz prefix", strings.Replace(ok, "'@daily'", "'CRON_TZ=UTC @daily'", 1), "f.yaml:2:11: schedule: set the zone with the timezone field"},
		{"never fires", strings.Replace(ok, "'@daily'", "'0 0 30 2 *'", 1), `f.yaml:2:11: schedule "0 0 30 2 *" never fires`},
		{"seconds field", strings.Replace(ok, "'@daily'", "'0 */10 * * * *'", 1), "f.yaml:2:11: schedule \"0 */10 * * * *\": expected exactly 5 fields"},
		{"when missing", strings.Replace(ok, "when: 'true'\n", "", 1), "f.yaml:1:1: missing required field when"},
		{"quiet equal", ok + "quiet_hours: {from: '08:00', to: '08:00'}\n", "f.yaml:6:34: quiet_hours: from and to are equal"},
		{"quiet to missing", ok + "quiet_hours: {from: '08:00'}\n", "f.yaml:6:1: missing required field quiet_hours.to"},
		{"two keys", ok + "facts:\n  p:\n    query: SELECT * FROM t WHERE a IN (:keys) OR b IN (:keys)\n    key: grant.biz_no\n    column: id\n",
			"f.yaml:8:12: facts.p.query must contain the :keys placeholder exactly once, found 2"},
		{"fact named like a builtin", ok + "facts:\n  len:\n    query: SELECT * FROM t WHERE id IN (:keys)\n    key: grant.biz_no\n    column: id\n",
			"f.yaml:7:3: facts.len: "},
		{"expression in literal block", strings.Replace(ok, "when: 'true'\n", "when: |\n  grant.openid != \"\" &&\n    grant.bizno == \"\"\n", 1),
			"f.yaml:6:11: when: "},
		{"not select", ok + "facts:\n  p:\n    query: DELETE FROM t WHERE id IN (:keys)\n    key: grant.biz_no\n    column: id\n",
			"f.yaml:8:12: facts.p.query must be a SELECT"},
		{"bad repeat", strings.Replace(ok, "one_time", "long_term", 1) + "repeat: twice\n", `f.yaml:6:9: repeat must be once or every_run, got "twice"`},
		{"bad window", ok + "limits: [{scope: user, max: 1, window: soon}]\n", `f.yaml:6:40: limits[0].window: window "soon" is not a duration`},
		{"empty expression", ok + "facts:\n  p:\n    query: SELECT * FROM t WHERE id IN (:keys)\n    key:\n    column: id\n", "f.yaml:9:5: missing required field facts.p.key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.yaml", []byte(tt.src), engineDefaults)
			if err == nil {
				t.Fatalf("no error, campaign %+v", c)
			}
			if c != nil {
				t.Errorf("campaign returned with errors")
			}
			if got := err.Error(); !strings.Contains(got, tt.want) {
				t.Errorf("error\n got %s\nwant %s", got, tt.want)
			}
		})
	}
	if _, err := Parse("f.yaml", []byte(ok), engineDefaults); err != nil {
		t.Errorf("base document invalid: %v", err)
	}
}

func TestScheduleInZone(t *testing.T) {
	src := "name: n\nschedule: '30 9 * * *'\ntimezone: Asia/Shanghai\ntemplate: {id: x, kind: one_time}\nwhen: 'true'\ndata: {thing1: '\"a\"'}\n"
	c, err := Parse("f.yaml", []byte(src), Defaults{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	// 2024-06-01 00:00 UTC is 08:00 in Shanghai: the next 09:30 there is 01:30 UTC.
	next := c.Cron.Next(time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2024, 6, 1, 1, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("Next = %v, want %v", next, want)
	}
	if _, ok := c.Cron.(*cron.SpecSchedule); !ok {
		t.Errorf("Cron is %T", c.Cron)
	}
	every, err := Parse("f.yaml", []byte(strings.Replace(src, "'30 9 * * *'", "'@every 5m'", 1)), Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	if got := every.Cron.Next(from); !got.Equal(from.Add(5 * time.Minute)) {
		t.Errorf("@every 5m: Next = %v", got)
	}
}

func TestQuietHours(t *testing.T) {
	night := &QuietHours{From: 22 * time.Hour, To: 8 * time.Hour, Action: QuietDefer}
	lunch := &QuietHours{From: 12 * time.Hour, To: 13*time.Hour + 30*time.Minute, Action: QuietDrop}
	at := func(d, h, m int) time.Time { return time.Date(2024, 6, d, h, m, 0, 0, shanghai) }
	tests := []struct {
		name   string
		q      *QuietHours
		t      time.Time
		loc    *time.Location
		in     bool
		endsAt time.Time
	}{
		{"before night", night, at(1, 21, 59), shanghai, false, at(1, 21, 59)},
		{"night starts", night, at(1, 22, 0), shanghai, true, at(2, 8, 0)},
		{"before midnight", night, at(1, 23, 59), shanghai, true, at(2, 8, 0)},
		{"after midnight", night, at(2, 0, 0), shanghai, true, at(2, 8, 0)},
		{"last minute", night, at(2, 7, 59), shanghai, true, at(2, 8, 0)},
		{"night ends", night, at(2, 8, 0), shanghai, false, at(2, 8, 0)},
		{"noon", night, at(2, 12, 0), shanghai, false, at(2, 12, 0)},
		{"utc instant, zone converts", night, time.Date(2024, 6, 1, 15, 0, 0, 0, time.UTC), shanghai, true, at(2, 8, 0)},
		{"same instant in utc", night, time.Date(2024, 6, 1, 15, 0, 0, 0, time.UTC), time.UTC, false, time.Date(2024, 6, 1, 15, 0, 0, 0, time.UTC)},
		{"lunch in", lunch, at(3, 12, 45), shanghai, true, at(3, 13, 30)},
		{"lunch before", lunch, at(3, 11, 59), shanghai, false, at(3, 11, 59)},
		{"lunch end", lunch, at(3, 13, 30), shanghai, false, at(3, 13, 30)},
		{"nil window", nil, at(1, 23, 0), shanghai, false, at(1, 23, 0)},
		{"nil location is local", &QuietHours{From: 0, To: 24*time.Hour - time.Minute}, time.Date(2024, 6, 1, 12, 0, 0, 0, time.Local), nil, true,
			time.Date(2024, 6, 1, 23, 59, 0, 0, time.Local)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.q.In(tt.t, tt.loc); got != tt.in {
				t.Errorf("In = %v, want %v", got, tt.in)
			}
			if got := tt.q.End(tt.t, tt.loc); !got.Equal(tt.endsAt) {
				t.Errorf("End = %v, want %v", got, tt.endsAt)
			}
		})
	}
	// Across a daylight saving change the end is still the wall-clock end.
	ny := mustZone("America/New_York")
	q := &QuietHours{From: 22 * time.Hour, To: 8 * time.Hour}
	start := time.Date(2024, 3, 9, 23, 0, 0, 0, ny) // the night clocks spring forward
	if end := q.End(start, ny); !end.Equal(time.Date(2024, 3, 10, 8, 0, 0, 0, ny)) || end.Sub(start) != 8*time.Hour {
		t.Errorf("DST End = %v (%v later)", end, end.Sub(start))
	}
}

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"24h", 24 * time.Hour, false},
		{"90m", 90 * time.Minute, false},
		{"1s", time.Second, false},
		{"1d", 24 * time.Hour, false},
		{"7d", 7 * 24 * time.Hour, false},
		{"1d12h", 36 * time.Hour, false},
		{"366d", 366 * 24 * time.Hour, false},
		{"367d", 0, true},
		{"999s", 999 * time.Second, false},
		{"500ms", 0, true},
		{"0s", 0, true},
		{"-1h", 0, true},
		{"", 0, true},
		{"d", 0, true},
		{"1w", 0, true},
		{"24", 0, true},
		{"1d-1h", 0, true},
	}
	for _, tt := range tests {
		got, err := parseWindow(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseWindow(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{"00:00", 0, false},
		{"08:00", 8 * time.Hour, false},
		{"23:59", 23*time.Hour + 59*time.Minute, false},
		{"24:00", 0, true},
		{"8:00", 0, true},
		{"22h", 0, true},
		{"12:60", 0, true},
		{"12:00:00", 0, true},
	}
	for _, tt := range tests {
		got, err := parseClock(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseClock(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&Error{File: "a.yaml", Line: 3, Col: 7, Msg: "bad"}, "a.yaml:3:7: bad"},
		{&Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3:1: bad"},
		{&Error{File: "a.yaml", Msg: "read: no such file"}, "a.yaml: read: no such file"},
		{ErrorList{{File: "a", Line: 1, Col: 2, Msg: "x"}, {File: "b", Line: 3, Col: 4, Msg: "y"}}, "a:1:2: x\nb:3:4: y"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if ErrorList(nil).Err() != nil {
		t.Error("empty ErrorList.Err() is not nil")
	}
}

func TestLoadPaths(t *testing.T) {
	cs, err := LoadPaths([]string{"testdata/valid", "testdata/valid/minimal.yaml", "testdata/missing.yaml"}, engineDefaults)
	if len(cs) != 6 {
		t.Errorf("got %d campaigns, want 6 (a file named twice loads once)", len(cs))
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || !strings.HasPrefix(list[0].Error(), "testdata/missing.yaml: load: ") {
		t.Errorf("err = %v, want one load error for the missing file", err)
	}
	// A directory and a bad file: the valid campaigns still come back.
	cs, err = LoadPaths([]string{"testdata/valid", "testdata/invalid/bad-kind.yaml"}, engineDefaults)
	if len(cs) != 6 || err == nil || !strings.Contains(err.Error(), "bad-kind.yaml:5:9:") {
		t.Errorf("got %d campaigns, err %v", len(cs), err)
	}
	// Subdirectories are not loaded.
	cs, err = LoadPaths([]string{"testdata/invalid/duplicate/.."}, engineDefaults)
	if err == nil || strings.Contains(err.Error(), "same-name") {
		t.Errorf("subdirectory was loaded: %v (%d campaigns)", err, len(cs))
	}
}

func TestLoadFileMissing(t *testing.T) {
	_, err := LoadFile("testdata/nope.yaml", Defaults{})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 || list[0].Line != 0 || list[0].File != "testdata/nope.yaml" {
		t.Errorf("err = %#v", err)
	}
}

// BenchmarkParse loads the price-drop example: decoding, validation and
// compilation of its expressions.
func BenchmarkParse(b *testing.B) {
	data, err := os.ReadFile("testdata/valid/price-drop.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("price-drop.yaml", data, engineDefaults); err != nil {
			b.Fatal(err)
		}
	}
}
