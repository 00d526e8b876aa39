package rules

import (
	"errors"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/keyword"
)

// FuzzCompile: Compile never panics, and a program it accepts evaluates
// without panicking.
func FuzzCompile(f *testing.F) {
	f.Add("product != nil && product.price < num(grant.vars.saved_price)", "money(product.price)", "thing1", `"pages/x?id=" + grant.biz_no`)
	f.Add("grant.bizno", `grant.id + "x"`, "colour1", "1")
	f.Add(`now - product.created_at > duration("30m")`, "datetime(product.created_at)", "time2", "")
	f.Add("(", `"abc"`, "phrase3", `"/p"`)
	f.Add("let x = 1; x > 0", "truncate(str(grant.vars), 3)", "thing01", "date()")
	f.Fuzz(func(t *testing.T, when, data, key, page string) {
		spec := Spec{
			Facts: []FactSpec{{Name: "product", Key: "grant.biz_no"}},
			When:  when, Page: page,
			Data: []Field{{Key: key, Expr: data}},
		}
		p, err := Compile(spec)
		if err != nil {
			var errs Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("error %T %v is not a non-empty Errors", err, err)
			}
			return
		}
		e := p.NewEnv()
		e.Reset(&wxcampaign.Grant{ID: 1, BizNo: "1", Vars: map[string]any{"saved_price": "9"}}, time.Unix(0, 0))
		e.SetFact("product", map[string]any{"name": "n", "price": 1.0, "created_at": time.Unix(0, 0)})
		_, _ = p.When(e)
		_, _ = p.Render(e)
		_ = p.Explain(e)
	})
}

// FuzzRender: whatever the fact values, Render never panics, and every value
// it returns passes its keyword rule.
func FuzzRender(f *testing.F) {
	f.Add("Nike Air 42码", 79.5, "99.00", int64(3))
	f.Add("", 0.0, "", int64(0))
	f.Add("一二三四五六七八九十一二三四五六七八九十一", -1.0, "NaN", int64(-1))
	f.Add("a\nb", 1e300, "1e400", int64(1<<62))
	p, err := Compile(Spec{
		Facts: []FactSpec{{Name: "product", Key: "grant.biz_no"}},
		When:  priceDrop().When,
		Page:  `"pages/goods/detail?id=" + grant.biz_no`,
		Data: []Field{
			{Key: "thing1", Expr: "product.name"},
			{Key: "amount2", Expr: "money(product.price)"},
			{Key: "amount3", Expr: "money(num(grant.vars.saved_price))"},
			{Key: "number4", Expr: "product.stock"},
			{Key: "character_string5", Expr: "grant.vars.saved_price"},
			{Key: "date6", Expr: "date(grant.vars.saved_price)"},
		},
	})
	if err != nil {
		f.Fatal(err)
	}
	e := p.NewEnv()
	f.Fuzz(func(t *testing.T, name string, price float64, saved string, stock int64) {
		e.Reset(&wxcampaign.Grant{BizNo: saved, Vars: map[string]any{"saved_price": saved}}, time.Unix(0, 0))
		e.SetFact("product", map[string]any{"name": name, "price": price, "stock": stock})
		_, _ = p.When(e)
		m, err := p.Render(e)
		if err != nil {
			var re *RenderError
			if !errors.As(err, &re) {
				t.Fatalf("Render error %T is not a *RenderError: %v", err, err)
			}
			return
		}
		for k, v := range m.Data {
			if err := keyword.Check(k, v, nil); err != nil {
				t.Fatalf("Render returned %s=%q which fails its rule: %v", k, v, err)
			}
		}
	})
}
