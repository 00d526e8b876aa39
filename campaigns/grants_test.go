package campaigns

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// grantBase is a valid campaign the table below extends.
const grantBase = `name: promo
schedule: "0 * * * *"
template: {id: T-promo, kind: one_time}
when: "true"
data: {thing1: '"hi"'}
`

func TestGrantFields(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  string // error prefix after "f.yaml:", "" for valid
		check func(*Campaign) bool
	}{
		{"defaults", "", "", func(c *Campaign) bool {
			return c.Priority == 0 && c.Reserve == 0 && c.Holdout == 0 && c.Conversion == nil
		}},
		{"priority and reserve", "priority: 10\nreserve: 1\n", "", func(c *Campaign) bool { return c.Priority == 10 && c.Reserve == 1 }},
		{"holdout 5%", "holdout: 5%\n", "", func(c *Campaign) bool { return c.Holdout == 0.05 }},
		{"holdout 0.5 %", "holdout: 0.5 %\n", "", func(c *Campaign) bool { return c.Holdout == 0.005 }},
		{"conversion", "conversion:\n  query: SELECT openid, created_at AS at FROM orders WHERE openid IN (:openids)\n  window: 7d\n", "",
			func(c *Campaign) bool { return c.Conversion != nil && c.Conversion.Window == 7*24*time.Hour }},
		{"holdout without %", "holdout: 5\n", "6:10: holdout: want a percentage", nil},
		{"holdout too big", "holdout: 60%\n", "6:10: holdout must be between 0% and 50%", nil},
		{"priority negative", "priority: -1\n", "6:11: priority must be between 0 and 1000", nil},
		{"priority not an integer", "priority: high\n", "6:11: priority: expected an integer", nil},
		{"reserve too big", "reserve: 101\n", "6:10: reserve must be between 0 and 100", nil},
		{"reserve on long-term", "reserve: 1\n", "6:10: reserve applies to one_time templates only", nil},
		{"conversion without openids", "conversion:\n  query: SELECT openid, at FROM orders\n  window: 7d\n", "7:10: conversion.query must contain the :openids placeholder exactly once, found 0", nil},
		{"conversion with keys", "conversion:\n  query: SELECT openid, at FROM orders WHERE openid IN (:openids) OR id IN (:keys)\n  window: 7d\n", "7:10: conversion.query takes :openids, not :keys", nil},
		{"conversion not a select", "conversion:\n  query: DELETE FROM orders WHERE openid IN (:openids)\n  window: 7d\n", "7:10: conversion.query must be a SELECT", nil},
		{"conversion without window", "conversion:\n  query: SELECT openid, at FROM orders WHERE openid IN (:openids)\n", "6:1: missing required field conversion.window", nil},
		{"conversion bad window", "conversion:\n  query: SELECT openid, at FROM orders WHERE openid IN (:openids)\n  window: soon\n", "8:11: conversion.window: window \"soon\"", nil},
		{"conversion unknown field", "conversion:\n  query: SELECT openid, at FROM orders WHERE openid IN (:openids)\n  window: 1d\n  windows: 2d\n", "9:3: unknown field \"windows\" in conversion (did you mean \"window\"?)", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := grantBase + tt.extra
			if tt.name == "reserve on long-term" {
				src = strings.Replace(src, "kind: one_time", "kind: long_term", 1)
			}
			c, err := Parse("f.yaml", []byte(src), Defaults{Location: time.UTC})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if !tt.check(c) {
					t.Errorf("campaign = %+v", c)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), "f.yaml:"+tt.want) {
				t.Errorf("error = %v\nwant f.yaml:%s...", err, tt.want)
			}
		})
	}
}

func TestCatalogNextSend(t *testing.T) {
	parse := func(src string) *Campaign {
		c, err := Parse("f.yaml", []byte(src), Defaults{Location: time.UTC})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	hourly := parse(grantBase)
	daily := parse(strings.Replace(grantBase, `"0 * * * *"`, `"0 9 * * *"`, 1))
	daily.Name = "daily"
	off := parse(strings.Replace(grantBase, "name: promo", "name: off\nenabled: false", 1))
	off.Template.ID = "T-off"
	cat := NewCatalog([]*Campaign{daily, hourly, off})
	now := time.Date(2025, 3, 1, 10, 30, 0, 0, time.UTC)
	if next, ok := cat.NextSend("T-promo", now); !ok || !next.Equal(time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("NextSend(T-promo) = %v, %v; want the hourly run at 11:00", next, ok)
	}
	for _, id := range []string{"T-off", "T-unknown"} {
		if _, ok := cat.NextSend(id, now); ok {
			t.Errorf("NextSend(%s) found a run", id)
		}
	}
}

func TestLinkReserves(t *testing.T) {
	mk := func(name, tmpl string, prio, reserve int, enabled bool) *Campaign {
		return &Campaign{Name: name, Template: Template{ID: tmpl}, Priority: prio, Reserve: reserve, Enabled: enabled}
	}
	reminder := mk("reminder", "T", 10, 1, true)
	urgent := mk("urgent", "T", 20, 2, true)
	off := mk("off", "T", 30, 5, false)
	marketing := mk("marketing", "T", 0, 0, true)
	other := mk("other", "U", 0, 0, true)
	same := mk("same", "T", 10, 0, true) // equal priority: not below the reminder
	cs := []*Campaign{reminder, urgent, off, marketing, other, same}
	LinkReserves(cs)
	for _, tt := range []struct {
		c     *Campaign
		yield int
		to    string
	}{
		{marketing, 2, "urgent"}, // the largest reserve above it; the disabled one does not count
		{reminder, 2, "urgent"},  // below urgent too
		{same, 2, "urgent"},      // the reminder's reserve is not above an equal priority
		{urgent, 0, ""},
		{other, 0, ""},
	} {
		if tt.c.Yield != tt.yield || tt.c.YieldTo != tt.to {
			t.Errorf("%s: yield %d to %q, want %d to %q", tt.c.Name, tt.c.Yield, tt.c.YieldTo, tt.yield, tt.to)
		}
	}
}

// TestPriorityExample: the example pair of docs/campaigns.md loads, and the
// marketing campaign yields the last credit to the reminder.
func TestPriorityExample(t *testing.T) {
	cs, err := LoadPaths([]string{"../configs/examples/priority"}, Defaults{Location: time.UTC})
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]*Campaign{}
	for _, c := range cs {
		by[c.Name] = c
	}
	promo, reminder := by["cart-promo"], by["order-unpaid-reminder"]
	if promo == nil || reminder == nil || promo.Template.ID != reminder.Template.ID {
		t.Fatalf("campaigns = %v", by)
	}
	if promo.Yield != 1 || promo.YieldTo != reminder.Name || reminder.Yield != 0 || promo.Holdout != 0.05 || promo.Conversion == nil {
		t.Errorf("promo yield %d to %q, reminder yield %d, holdout %v", promo.Yield, promo.YieldTo, reminder.Yield, promo.Holdout)
	}
}

// TestHeldOut: a 5% holdout keeps 5% of 20,000 users (within 1 point),
// the same users every time, a different draw for another campaign.
func TestHeldOut(t *testing.T) {
	a := &Campaign{Name: "cart-promo", Holdout: 0.05}
	b := &Campaign{Name: "cart-promo-2", Holdout: 0.05}
	const n = 20000
	held, both := 0, 0
	for i := range n {
		id := "o" + strconv.Itoa(i)
		ha := a.HeldOut(id)
		if ha != a.HeldOut(id) {
			t.Fatalf("%s drawn twice differently", id)
		}
		if ha {
			held++
			if b.HeldOut(id) {
				both++
			}
		}
	}
	if share := float64(held) / n; share < 0.04 || share > 0.06 {
		t.Errorf("held out %d of %d (%.2f%%), want 5%% within 1 point", held, n, 100*share)
	}
	if both > held/5 { // independent draws overlap by about 5%
		t.Errorf("%d of %d held-out users are held out by another campaign too", both, held)
	}
	if (&Campaign{Name: "x"}).HeldOut("o1") {
		t.Error("no holdout held a user out")
	}
	if !(&Campaign{Name: "x", Holdout: 1}).HeldOut("o1") {
		t.Error("a 100% holdout sent")
	}
}
