package rules_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/rules"
)

// The price-drop campaign: tell a user when a product they saved got
// cheaper than the price they saw.
func Example() {
	p, err := rules.Compile(rules.Spec{
		Campaign: "price-drop",
		Facts:    []rules.FactSpec{{Name: "product", Key: "grant.biz_no"}},
		When:     `product != nil && product.price < num(grant.vars.saved_price) && product.stock > 0`,
		Page:     `"pages/goods/detail?id=" + grant.biz_no`,
		Data: []rules.Field{
			{Key: "thing1", Expr: "product.name"},
			{Key: "amount2", Expr: "money(product.price)"},
			{Key: "amount3", Expr: "money(num(grant.vars.saved_price))"},
			{Key: "thing4", Expr: `"降价了，快来看看"`},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	g := &wxcampaign.Grant{ID: 1, OpenID: "o-1", BizNo: "1001", Vars: map[string]any{"saved_price": "99.00"}}
	e := p.NewEnv() // one per goroutine, reused for every grant
	e.Reset(g, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))

	key, _ := p.FactKey("product", e) // the engine looks the row up by this key
	fmt.Println("key:", key)
	e.SetFact("product", map[string]any{"name": "Nike Air 42码", "price": 79.5, "stock": int64(3)})

	ok, err := p.When(e)
	fmt.Println("when:", ok, err)
	m, err := p.Render(e)
	fmt.Println(m.Data["thing1"], m.Data["amount2"], m.Data["amount3"], m.Data["thing4"], err)
	fmt.Println(m.Page)
	// Output:
	// key: 1001
	// when: true <nil>
	// Nike Air 42码 ¥79.50 ¥99.00 降价了，快来看看 <nil>
	// pages/goods/detail?id=1001
}

// Compile reports every problem at once, with its place.
func ExampleCompile_errors() {
	_, err := rules.Compile(rules.Spec{
		When: "grant.bizno == order.id",
		Data: []rules.Field{
			{Key: "colour1", Expr: `"red"`},
			{Key: "phrase2", Expr: `"abc"`},
			{Key: "thing3", Expr: "grant.id > 3"},
		},
	})
	var errs rules.Errors
	if errors.As(err, &errs) {
		for _, e := range errs {
			fmt.Println(e)
		}
	}
	// Output:
	// when:1:7: type grant has no field bizno
	// data.colour1: "colour1": unknown type "colour"
	// data.phrase2:1:1: constant can never be sent: not Chinese characters only
	// data.thing3:1:1: want a string or a number, got bool
}

// A value that breaks its keyword rule is a RenderError naming the key.
func ExampleProgram_Render_invalid() {
	p, _ := rules.Compile(rules.Spec{
		Facts: []rules.FactSpec{{Name: "order", Key: "grant.biz_no"}},
		Data:  []rules.Field{{Key: "amount2", Expr: "order.total"}},
	})
	e := p.NewEnv()
	e.Reset(&wxcampaign.Grant{BizNo: "A1"}, time.Now())
	e.SetFact("order", map[string]any{"total": "about 12 yuan"})
	_, err := p.Render(e)
	fmt.Println(err)
	// Output:
	// render invalid: amount2: not an amount
}

// An order left unpaid for 30 minutes, with its time shown in the
// campaign's zone (the zone of now).
func ExampleProgram_When_unpaid() {
	p, _ := rules.Compile(rules.Spec{
		Facts: []rules.FactSpec{{Name: "order", Key: "grant.biz_no"}},
		When:  `order != nil && order.status == "unpaid" && now - order.created_at > duration("30m")`,
		Data:  []rules.Field{{Key: "time1", Expr: "datetime(order.created_at)"}},
	})
	shanghai := time.FixedZone("CST", 8*3600)
	e := p.NewEnv()
	e.Reset(&wxcampaign.Grant{BizNo: "A1"}, time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai))
	e.SetFact("order", map[string]any{"status": "unpaid", "created_at": time.Date(2024, 5, 1, 1, 20, 0, 0, time.UTC)})
	ok, _ := p.When(e)
	m, _ := p.Render(e)
	fmt.Println(ok, m.Data["time1"])
	// Output:
	// true 2024年5月1日 09:20
}
