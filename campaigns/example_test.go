package campaigns_test

import (
	"fmt"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
)

func ExampleParse() {
	src := `name: order-unpaid
schedule: "@every 5m"
timezone: Asia/Shanghai
template:
  id: t3IrG3Mi4aWEoR05B1yMmeFHGPMhEu-55k_Xr8Fvmu0
  kind: one_time
facts:
  order:
    query: SELECT id, status, amount, created_at FROM orders WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: order != nil && order.status == "unpaid" && now - order.created_at > duration("30m")
data:
  character_string1: order.id
  amount2: money(order.amount)
limits:
  - {scope: user_template, max: 1, window: 1d}
quiet_hours: {from: "22:00", to: "08:00"}
`
	c, err := campaigns.Parse("order-unpaid.yaml", []byte(src), campaigns.Defaults{Location: time.UTC})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name, c.Template.Kind, c.Location, c.BatchSize)
	fmt.Println(c.Limits[0].Scope, c.Limits[0].Max, c.Limits[0].Window)
	at := time.Date(2024, 6, 1, 23, 0, 0, 0, c.Location)
	fmt.Println(c.QuietHours.In(at, c.Location), c.QuietHours.End(at, c.Location).Format(time.DateTime))
	fmt.Println(c.Cron.Next(at).Format(time.DateTime))
	// Output:
	// order-unpaid one_time Asia/Shanghai 500
	// user_template 1 24h0m0s
	// true 2024-06-02 08:00:00
	// 2024-06-01 23:05:00
}

func ExampleParse_errors() {
	src := `name: price-drop
schedule: "*/10 * * *"
template:
  id: bDmywsp2oEHjwAadTGKkUJ-eJEiMiOf7H-dZ8wjfw6c
  kind: one_shot
when: "true"
data:
  thing1: '"hello"'
limits:
  - {scope: user, max: 0, window: 24h}
`
	_, err := campaigns.Parse("price-drop.yaml", []byte(src), campaigns.Defaults{})
	fmt.Println(err)
	// Output:
	// price-drop.yaml:2:11: schedule "*/10 * * *": expected exactly 5 fields, found 4: [*/10 * * *]
	// price-drop.yaml:5:9: unknown template kind "one_shot" (one_time or long_term)
	// price-drop.yaml:10:24: limits[0].max must be at least 1, got 0
}

func ExampleLoadPaths() {
	cs, err := campaigns.LoadPaths([]string{"../configs/campaigns"}, campaigns.Defaults{Location: time.UTC})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range cs {
		fmt.Printf("%-20s %-14s %s\n", c.Name, c.Schedule, c.Template.Kind)
	}
	// Output:
	// activity-launched    */5 * * * *    one_time
	// appointment-reminder */5 * * * *    long_term
	// order-unpaid         @every 5m      one_time
	// price-drop           */10 * * * *   one_time
}

func ExampleCheckTemplates() {
	src := `name: shipping
schedule: "@every 5m"
template:
  id: T-SHIP
  kind: one_time
when: "true"
data:
  thing1: grant.biz_no
  enum2: grant.vars.status
`
	c, err := campaigns.Parse("shipping.yaml", []byte(src), campaigns.Defaults{})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What getTemplateList says about the account's templates.
	ts := []campaigns.TemplateInfo{{ID: "T-SHIP", Kind: wxcampaign.OneTime, Keys: []string{"thing1", "enum2"},
		Enums: map[string][]string{"enum2": {"shipped", "delivered"}}}}
	fmt.Println(campaigns.CheckTemplates([]*campaigns.Campaign{c}, ts).Err())
	fmt.Println(c.Enums) // adopted from the template

	ts[0].Kind, ts[0].Keys = wxcampaign.LongTerm, []string{"thing1", "enum2", "time3"}
	fmt.Println(campaigns.CheckTemplates([]*campaigns.Campaign{c}, ts))
	// Output:
	// <nil>
	// map[enum2:[shipped delivered]]
	// shipping.yaml:5:9: template.kind is one_time, but template T-SHIP is long_term in the account's template list
	// shipping.yaml:7:1: data: missing key time3 of template T-SHIP (its keys: thing1, enum2, time3)
}
