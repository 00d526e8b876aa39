// Package campaigns reads campaign files: strict YAML decoding with a
// position for every field, defaults, validation and compilation of the
// campaign's expressions by package rules, so that a campaign that would fail
// at 3 a.m. fails at load time with file:line:col.
//
// A campaign file describes one scheduled campaign: which template it sends,
// when it runs, which business facts it joins to each grant, the rule that
// decides whether a grant gets a message, the data it renders, and the caps
// and quiet hours that hold. docs/campaigns.md documents every field.
package campaigns

import (
	"time"

	"github.com/robfig/cron/v3"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/rules"

	_ "time/tzdata" // time zones work on machines without a zoneinfo database
)

// Limit scopes.
const (
	ScopeUserTemplate = "user_template" // one openid and this campaign's template
	ScopeUser         = "user"          // one openid, across all campaigns and templates
	ScopeTemplate     = "template"      // this template, across all users: a global cap
)

// Quiet hours actions.
const (
	QuietDefer = "defer" // hold the message until the window is over
	QuietDrop  = "drop"  // skip the message in this run
)

// Repeat policies of long-term templates.
const (
	RepeatOnce     = "once"      // a grant gets this campaign's message at most once
	RepeatEveryRun = "every_run" // a grant may get a message in every run
)

// Defaults for a campaign field the file leaves out, from the engine's
// configuration.
type Defaults struct {
	Location *time.Location // nil: time.Local
	State    string         // miniprogram_state; "": formal
	Lang     string         // "": zh_CN
	// Pages lists the mini program's page paths (wechat.pages); when set, a
	// campaign's page must render to one of them. nil: any well-formed page.
	Pages []string
}

// Default values of optional fields.
const (
	DefaultBatchSize     = 500
	MaxBatchSize         = 10000
	DefaultPerUserPerRun = 1
	DefaultOverflow      = rules.Skip
	DefaultState         = "formal"
	DefaultLang          = "zh_CN"
)

// Campaign is one loaded, validated and compiled campaign file.
type Campaign struct {
	Name        string
	Description string
	Enabled     bool
	Schedule    string
	// Cron is Schedule parsed; its Next works in Location.
	Cron          cron.Schedule
	Timezone      string
	Location      *time.Location
	Template      Template
	Scenes        []string
	Facts         []Fact // in file order
	When          string
	Data          []rules.Field // in file order
	Overflow      rules.Overflow
	Enums         map[string][]string
	Limits        []Limit
	QuietHours    *QuietHours // nil: none
	BatchSize     int
	PerUserPerRun int    // 0: no limit
	Repeat        string // RepeatOnce or RepeatEveryRun for long-term templates, "" for one-time
	Program       *rules.Program
	File          string // the path it was loaded from

	nameLine, nameCol int       // position of the name value, for duplicate errors
	pos               positions // positions of the fields CheckTemplates blames
}

// Template is the WeChat template a campaign sends.
type Template struct {
	ID    string
	Kind  wxcampaign.Kind
	Page  string // expression; "" = a card without a link
	State string // developer | trial | formal
	Lang  string // zh_CN | en_US | zh_HK | zh_TW
	// Pages are the account's pages the page must be one of
	// (Defaults.Pages); nil: any well-formed page.
	Pages []string
}

// Fact is one source of business data, joined to each grant of a batch with
// one query.
type Fact struct {
	Name   string // the name the rules see
	Query  string // SQL with exactly one :keys placeholder
	Key    string // expression: the lookup key of a grant
	Column string // the row's column that matches the key
}

// Limit is a frequency cap: at most Max messages in any Window within Scope.
type Limit struct {
	Scope  string
	Max    int
	Window time.Duration
}

// QuietHours is a daily window, in the campaign's zone, when nothing is sent.
// From and To are offsets since midnight; From > To wraps midnight
// (22:00-08:00).
type QuietHours struct {
	From, To time.Duration
	Action   string // QuietDefer or QuietDrop
}

// sinceMidnight returns how long after local midnight (by the wall clock) t
// is, in loc.
func sinceMidnight(t time.Time, loc *time.Location) time.Duration {
	t = t.In(loc)
	h, m, s := t.Clock()
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
}

// In reports whether t, converted to loc, falls in the window. The window
// includes From and excludes To. A nil q has no window.
func (q *QuietHours) In(t time.Time, loc *time.Location) bool {
	if q == nil || q.From == q.To {
		return false
	}
	if loc == nil {
		loc = time.Local
	}
	x := sinceMidnight(t, loc)
	if q.From < q.To {
		return x >= q.From && x < q.To
	}
	return x >= q.From || x < q.To
}

// End returns the first instant at or after t when the window is over, in
// loc: t itself when t is outside the window.
func (q *QuietHours) End(t time.Time, loc *time.Location) time.Time {
	if !q.In(t, loc) {
		return t
	}
	if loc == nil {
		loc = time.Local
	}
	lt := t.In(loc)
	y, mo, d := lt.Date()
	if q.From > q.To && sinceMidnight(t, loc) >= q.From {
		d++ // the window wrapped midnight: it ends tomorrow
	}
	h, m := int(q.To/time.Hour), int(q.To%time.Hour/time.Minute)
	end := time.Date(y, mo, d, h, m, 0, 0, loc)
	if !end.After(t) {
		// A daylight saving jump can put the wall-clock end before t;
		// fall back to the next instant that is outside the window.
		for end = t; q.In(end, loc); {
			end = end.Add(time.Minute).Truncate(time.Minute)
		}
	}
	return end
}
