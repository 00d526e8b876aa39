package campaigns

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/keyword"
	"github.com/wxcampaign/wxcampaign/rules"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	identRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	clockRE  = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)
	daysRE   = regexp.MustCompile(`^([0-9]{1,4})d(.*)$`)
	keysRE   = regexp.MustCompile(`:keys\b`)
	selectRE = regexp.MustCompile(`(?i)^\s*(select|with)\s`)

	cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

	// cronProbe is the fixed instant from which a schedule must fire once,
	// so that Parse does not read the clock.
	cronProbe = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

	states = []string{"developer", "trial", "formal"}
	langs  = []string{"zh_CN", "en_US", "zh_HK", "zh_TW"}
	scopes = []string{ScopeUserTemplate, ScopeUser, ScopeTemplate}

	// reserved names of the rule environment, which a fact cannot take.
	reserved = []string{"grant", "now", "campaign", "nil", "true", "false", "in", "not", "and", "or", "matches", "contains", "startsWith", "endsWith", "let"}
)

// maxWindow bounds a limit window (a year), so that durations stay far from
// overflow in the store's arithmetic.
const maxWindow = 366 * 24 * time.Hour

// parseWindow reads a limit window: a Go duration ("24h", "90m") or a number
// of days with an optional Go duration after it ("1d", "7d", "1d12h").
func parseWindow(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	var days time.Duration
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		days = time.Duration(n) * 24 * time.Hour
		s = m[2]
		if s == "" {
			s = "0s"
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || days > 0 && d < 0 {
		return 0, fmt.Errorf("window %q is not a duration such as 30m, 24h or 7d", s)
	}
	d += days
	switch {
	case d < time.Second:
		return 0, fmt.Errorf("window must be at least 1s")
	case d > maxWindow:
		return 0, fmt.Errorf("window must be at most 366d")
	}
	return d, nil
}

// parseClock reads "HH:MM" (00:00 to 23:59) as an offset since midnight.
func parseClock(s string) (time.Duration, error) {
	m := clockRE.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("%q is not a time of day in HH:MM form (00:00 to 23:59)", s)
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return time.Duration(h)*time.Hour + time.Duration(mi)*time.Minute, nil
}

// require reports a missing required field at the enclosing node.
func (p *decoder) require(path, what string) bool {
	if p.has(path) {
		return true
	}
	n := p.key[path] // present but null
	if n == nil {
		parent := path[:max(strings.LastIndexAny(path, ".["), 0)]
		if n = p.key[parent]; n == nil {
			n = p.at(parent)
		}
	}
	p.errorAt(n, path, "missing required field %s (%s)", path, what)
	return false
}

// validate checks the values decode filled in.
func (p *decoder) validate(c *Campaign) {
	if p.require("name", "lowercase letters, digits and dashes") && !nameRE.MatchString(c.Name) {
		p.errorAt(p.at("name"), "name", "name %q must be 1 to 64 lowercase letters, digits and dashes, starting with a letter or digit", c.Name)
	}
	if n := p.at("name"); n != nil {
		c.nameLine, c.nameCol = n.Line, n.Column
	}
	if p.has("timezone") {
		if loc, err := time.LoadLocation(c.Timezone); err != nil || c.Timezone == "" || c.Timezone == "Local" {
			p.errorAt(p.at("timezone"), "timezone", "unknown time zone %q (use an IANA name such as Asia/Shanghai)", c.Timezone)
		} else {
			c.Location = loc
		}
	}
	if p.require("schedule", `a cron spec such as "*/10 * * * *" or "@every 5m"`) {
		p.validateSchedule(c)
	}
	p.validateTemplate(c)
	p.validateScenes(c)
	p.validateFacts(c)
	p.require("when", `an expression; write "true" to take every grant`)
	p.validateData(c)
	if c.Overflow != "truncate" && c.Overflow != "skip" {
		p.errorAt(p.at("overflow"), "overflow", "overflow must be truncate or skip, got %q", c.Overflow)
	}
	p.validateLimits(c)
	if q := c.QuietHours; q != nil {
		for _, f := range []string{"from", "to"} {
			p.require("quiet_hours."+f, "HH:MM")
		}
		if p.has("quiet_hours.from") && p.has("quiet_hours.to") && q.From == q.To && !p.reported["quiet_hours.from"] && !p.reported["quiet_hours.to"] {
			p.errorAt(p.at("quiet_hours.to"), "quiet_hours.to", "quiet_hours: from and to are equal; the window would be empty")
		}
		if q.Action != QuietDefer && q.Action != QuietDrop {
			p.errorAt(p.at("quiet_hours.action"), "quiet_hours.action", "quiet_hours.action must be defer or drop, got %q", q.Action)
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		p.errorAt(p.at("batch_size"), "batch_size", "batch_size must be between 1 and %d, got %d", MaxBatchSize, c.BatchSize)
	}
	if c.PerUserPerRun < 0 {
		p.errorAt(p.at("per_user_per_run"), "per_user_per_run", "per_user_per_run must be 0 (no limit) or more, got %d", c.PerUserPerRun)
	}
	switch {
	case c.Template.Kind == wxcampaign.OneTime && p.has("repeat"):
		p.errorAt(p.at("repeat"), "repeat", "repeat applies to long_term templates only: a one_time grant is a single credit")
		c.Repeat = ""
	case c.Template.Kind == wxcampaign.LongTerm && c.Repeat == "":
		c.Repeat = RepeatOnce
	case c.Template.Kind == wxcampaign.LongTerm && c.Repeat != RepeatOnce && c.Repeat != RepeatEveryRun:
		p.errorAt(p.at("repeat"), "repeat", "repeat must be once or every_run, got %q", c.Repeat)
	}
}

func (p *decoder) validateSchedule(c *Campaign) {
	spec := strings.TrimSpace(c.Schedule)
	n := p.at("schedule")
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		p.errorAt(n, "schedule", "schedule: set the zone with the timezone field, not a TZ= prefix")
		return
	}
	sched, err := parseCron(spec)
	if err != nil {
		p.errorAt(n, "schedule", "schedule %q: %v", c.Schedule, err)
		return
	}
	if s, ok := sched.(*cron.SpecSchedule); ok {
		s.Location = c.Location
	}
	if sched.Next(cronProbe).IsZero() {
		p.errorAt(n, "schedule", "schedule %q never fires", c.Schedule)
		return
	}
	c.Cron = sched
}

// parseCron parses a five-field spec or a descriptor, turning a panic of the
// parser on odd input into an error.
func parseCron(spec string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid spec")
		}
	}()
	return cronParser.Parse(spec)
}

func (p *decoder) validateTemplate(c *Campaign) {
	if !p.require("template", "id and kind") {
		return
	}
	t := c.Template
	if p.require("template.id", "the private template id from the mini program admin") {
		if len(t.ID) > 128 || strings.IndexFunc(t.ID, unicode.IsSpace) >= 0 {
			p.errorAt(p.at("template.id"), "template.id", "template.id %q must be at most 128 characters without spaces", t.ID)
		}
	}
	if p.require("template.kind", "one_time or long_term") && !t.Kind.Valid() {
		p.errorAt(p.at("template.kind"), "template.kind", "unknown template kind %q (one_time or long_term)", t.Kind)
	}
	if !slices.Contains(states, t.State) {
		p.errorAt(p.at("template.state"), "template.state", "template.state must be developer, trial or formal, got %q", t.State)
	}
	if !slices.Contains(langs, t.Lang) {
		p.errorAt(p.at("template.lang"), "template.lang", "template.lang must be zh_CN, en_US, zh_HK or zh_TW, got %q", t.Lang)
	}
}

func (p *decoder) validateScenes(c *Campaign) {
	seen := map[string]bool{}
	for i, s := range c.Scenes {
		path := fmt.Sprintf("scenes[%d]", i)
		switch {
		case wxcampaign.CheckScene(s) != nil:
			p.errorAt(p.at(path), path, "%s (a scene is 1 to %d printable characters without '/')", wxcampaign.ErrorMessage(wxcampaign.CheckScene(s)), wxcampaign.MaxSceneLen)
		case seen[s]:
			p.errorAt(p.at(path), path, "scene %q is listed twice", s)
		}
		seen[s] = true
	}
}

func (p *decoder) validateFacts(c *Campaign) {
	for _, f := range c.Facts {
		base := "facts." + f.Name
		if !identRE.MatchString(f.Name) || slices.Contains(reserved, f.Name) {
			p.errorAt(p.key[base], base, "fact name %q must be an identifier (letters, digits, _) other than %s", f.Name, strings.Join(reserved[:3], ", "))
		}
		if p.require(base+".query", "SQL with one :keys placeholder") {
			switch n := len(keysRE.FindAllStringIndex(f.Query, -1)); {
			case n != 1:
				p.errorAt(p.at(base+".query"), base+".query", "%s.query must contain the :keys placeholder exactly once, found %d", base, n)
			case !selectRE.MatchString(f.Query):
				p.errorAt(p.at(base+".query"), base+".query", "%s.query must be a SELECT (or WITH ... SELECT) statement", base)
			}
		}
		p.require(base+".key", "an expression such as grant.biz_no")
		if p.require(base+".column", "the column that matches the key") && !identRE.MatchString(f.Column) {
			p.errorAt(p.at(base+".column"), base+".column", "%s.column %q must be a column name", base, f.Column)
		}
	}
}

func (p *decoder) validateData(c *Campaign) {
	if len(c.Data) == 0 {
		if !p.reported["data"] {
			p.errorAt(p.at("data"), "data", "data must hold at least one keyword, such as thing1: product.name")
		}
		return
	}
	for _, f := range c.Data {
		path := "data." + f.Key
		if _, _, err := keyword.Parse(f.Key); err != nil {
			p.errorAt(p.key[path], path, "data key %s", strings.TrimPrefix(err.Error(), "keyword: "))
		}
		if !p.has(path) && !p.reported[path] {
			p.errorAt(p.at(path), path, "%s: empty expression", path)
		}
	}
	for key, values := range c.Enums {
		path := "enums." + key
		if !slices.ContainsFunc(c.Data, func(f rules.Field) bool { return f.Key == key }) {
			p.errorAt(p.key[path], path, "enums: %q is not a key of data", key)
		}
		if len(values) == 0 && !p.reported[path] {
			p.errorAt(p.at(path), path, "%s: list the allowed values", path)
		}
		seen := map[string]bool{}
		for i, v := range values {
			if seen[v] {
				ip := fmt.Sprintf("%s[%d]", path, i)
				p.errorAt(p.at(ip), ip, "%s: %q is listed twice", path, v)
			}
			seen[v] = true
		}
	}
}

func (p *decoder) validateLimits(c *Campaign) {
	for i, l := range c.Limits {
		ip := fmt.Sprintf("limits[%d]", i)
		if p.require(ip+".scope", "user_template, user or template") && !slices.Contains(scopes, l.Scope) {
			p.errorAt(p.at(ip+".scope"), ip+".scope", "%s.scope must be user_template, user or template, got %q", ip, l.Scope)
		}
		if p.require(ip+".max", "at least 1") && l.Max < 1 && !p.reported[ip+".max"] {
			p.errorAt(p.at(ip+".max"), ip+".max", "%s.max must be at least 1, got %d", ip, l.Max)
		}
		p.require(ip+".window", "a duration such as 24h or 7d")
	}
}

// compile hands the expressions to package rules and maps each compile error
// to the position of its expression in the file.
func (p *decoder) compile(c *Campaign) {
	spec := rules.Spec{
		Campaign: c.Name,
		When:     c.When,
		Page:     c.Template.Page,
		Data:     c.Data,
		Overflow: c.Overflow,
		Enums:    c.Enums,
		Pages:    c.Template.Pages,
	}
	for _, f := range c.Facts {
		spec.Facts = append(spec.Facts, rules.FactSpec{Name: f.Name, Key: f.Key})
	}
	prog, err := rules.Compile(spec)
	if err == nil {
		c.Program = prog
		return
	}
	var list rules.Errors
	var one *rules.CompileError
	switch {
	case errors.As(err, &list):
	case errors.As(err, &one):
		list = rules.Errors{one}
	default:
		p.errorAt(p.root, "", "rules: %v", err)
		return
	}
	for _, ce := range list {
		if ce != nil {
			p.compileError(ce)
		}
	}
}

// compileError records one rules error at the position of its expression,
// inside the expression when the scalar's text can be mapped back to the
// source. Errors without a position on a field that already has an error are
// dropped: they repeat what the loader said (an unknown keyword type, say).
func (p *decoder) compileError(ce *rules.CompileError) {
	path := ce.Field
	if path == "page" {
		path = "template.page"
	}
	if ce.Line <= 0 && p.reported[path] {
		return
	}
	n := p.at(path)
	if n == nil {
		p.errorPos(1, 1, path, "%s: %s", path, ce.Msg)
		return
	}
	if k := p.key[path]; k != nil && n.Kind != yaml.ScalarNode {
		n = k // a problem with a whole fact or list: point at its name
	}
	if p.val[path] == n {
		if line, col, ok := p.exprPos(n, ce.Line, ce.Column); ok {
			p.errorPos(line, col, path, "%s: %s", path, ce.Msg)
			return
		}
		if ce.Line > 0 {
			p.errorAt(n, path, "%s: %s (expression line %d, column %d)", path, ce.Msg, ce.Line, ce.Column)
			return
		}
	}
	p.errorAt(n, path, "%s: %s", path, ce.Msg)
}

// exprPos maps a 1-based line and column inside the text of scalar n to its
// line and column in the file. It handles single-line plain, single-quoted and
// double-quoted scalars and literal blocks (|); ok is false for anything it
// cannot map with certainty (folded text, multi-line flow scalars).
func (p *decoder) exprPos(n *yaml.Node, line, col int) (int, int, bool) {
	if n.Kind != yaml.ScalarNode || line < 1 || col < 1 || n.Line < 1 || n.Column < 1 || n.Line > len(p.lines) {
		return 0, 0, false
	}
	if n.Style&yaml.LiteralStyle != 0 {
		return p.literalPos(n, line, col)
	}
	if line != 1 || strings.Contains(n.Value, "\n") {
		return 0, 0, false
	}
	value := []rune(n.Value)
	if col > len(value)+1 {
		return 0, 0, false
	}
	src := p.lines[n.Line-1]
	i := n.Column - 1 // index of the scalar's first character in src
	if i >= len(src) {
		return 0, 0, false
	}
	switch {
	case n.Style&yaml.DoubleQuotedStyle != 0:
		if src[i] != '"' {
			return 0, 0, false
		}
		i++
		for k := 1; k < col; k++ {
			if i >= len(src) || src[i] == '"' {
				return 0, 0, false
			}
			if src[i] != '\\' {
				i++
				continue
			}
			if i+1 >= len(src) {
				return 0, 0, false
			}
			switch src[i+1] {
			case 'x':
				i += 4
			case 'u':
				i += 6
			case 'U':
				i += 10
			default:
				i += 2
			}
		}
	case n.Style&yaml.SingleQuotedStyle != 0:
		if src[i] != '\'' {
			return 0, 0, false
		}
		i++
		for k := 1; k < col; k++ {
			switch {
			case i+1 < len(src) && src[i] == '\'' && src[i+1] == '\'':
				i += 2
			case i < len(src) && src[i] != '\'':
				i++
			default:
				return 0, 0, false
			}
		}
	case n.Style&(yaml.FoldedStyle|yaml.TaggedStyle) == 0:
		if !strings.HasPrefix(string(src[i:]), n.Value) {
			return 0, 0, false
		}
		i += col - 1
	default:
		return 0, 0, false
	}
	if i > len(src) {
		return 0, 0, false
	}
	return n.Line, i + 1, true
}

// literalPos maps a position inside a literal block scalar: its text lines are
// the source lines after the indicator, less the block's indentation.
func (p *decoder) literalPos(n *yaml.Node, line, col int) (int, int, bool) {
	valueLines := strings.Split(n.Value, "\n")
	if line > len(valueLines) || col > len([]rune(valueLines[line-1]))+1 {
		return 0, 0, false
	}
	indent := -1
	for _, l := range p.lines[n.Line:] { // the lines after the indicator
		if s := strings.TrimLeft(string(l), " "); s != "" {
			indent = len(l) - len([]rune(s))
			break
		}
	}
	srcLine := n.Line + line
	if indent < 0 || srcLine > len(p.lines) {
		return 0, 0, false
	}
	src := p.lines[srcLine-1]
	if valueLines[line-1] != "" && (len(src) < indent || !strings.HasPrefix(string(src[indent:]), valueLines[line-1])) {
		return 0, 0, false
	}
	return srcLine, indent + col, true
}
