package rules

import (
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// priceDrop is the price-drop campaign of docs/rules.md.
func priceDrop() Spec {
	return Spec{
		Campaign: "price-drop",
		Facts:    []FactSpec{{Name: "product", Key: "grant.biz_no"}},
		When:     `product != nil && product.price < num(grant.vars.saved_price) && product.stock > 0`,
		Page:     `"pages/goods/detail?id=" + grant.biz_no`,
		Data: []Field{
			{Key: "thing1", Expr: "product.name"},
			{Key: "amount2", Expr: "money(product.price)"},
			{Key: "amount3", Expr: "money(num(grant.vars.saved_price))"},
			{Key: "thing4", Expr: `"降价了，快来看看"`},
		},
	}
}

func benchEnv(b *testing.B) (*Program, *Env) {
	b.Helper()
	p, err := Compile(priceDrop())
	if err != nil {
		b.Fatal(err)
	}
	g := &wxcampaign.Grant{ID: 7, OpenID: "o-1", TemplateID: "T", BizNo: "1001",
		Vars: map[string]any{"saved_price": "99.00"}, Kind: wxcampaign.OneTime}
	row := map[string]any{"name": "Nike Air 42码", "price": 79.5, "stock": int64(3)}
	e := p.NewEnv()
	e.Reset(g, time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC))
	e.SetFact("product", row)
	return p, e
}

// BenchmarkWhen measures rule evaluations of the price-drop example.
func BenchmarkWhen(b *testing.B) {
	p, e := benchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		ok, err := p.When(e)
		if err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkRender measures rendering the four data fields and the page.
func BenchmarkRender(b *testing.B) {
	p, e := benchEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Render(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGrant measures the whole per-grant path: Reset, SetFact, When and
// Render.
func BenchmarkGrant(b *testing.B) {
	p, e := benchEnv(b)
	g := &wxcampaign.Grant{ID: 7, OpenID: "o-1", TemplateID: "T", BizNo: "1001",
		Vars: map[string]any{"saved_price": 99.0}, Kind: wxcampaign.OneTime}
	row := map[string]any{"name": "Nike Air 42码", "price": 79.5, "stock": int64(3)}
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	for b.Loop() {
		e.Reset(g, now)
		e.SetFact("product", row)
		if ok, err := p.When(e); err != nil || !ok {
			b.Fatal(ok, err)
		}
		if _, err := p.Render(e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompile measures compiling the price-drop campaign.
func BenchmarkCompile(b *testing.B) {
	spec := priceDrop()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(spec); err != nil {
			b.Fatal(err)
		}
	}
}
