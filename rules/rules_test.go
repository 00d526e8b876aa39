package rules

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

var shanghai = time.FixedZone("CST", 8*3600)

// base is a valid spec that each compile test case modifies.
func base() Spec {
	return Spec{
		Campaign: "c",
		Facts:    []FactSpec{{Name: "product", Key: "grant.biz_no"}},
		When:     "product != nil",
		Data:     []Field{{Key: "thing1", Expr: "product.name"}},
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Spec)
		want   []CompileError // Field, Line, Column, and a part of Msg
	}{
		{"misspelt grant field", func(s *Spec) { s.When = "grant.bizno == \"1\"" },
			[]CompileError{{"when", 1, 7, "type grant has no field bizno"}}},
		{"unknown fact", func(s *Spec) { s.When = "order != nil" },
			[]CompileError{{"when", 1, 1, "unknown name order"}}},
		{"int plus string", func(s *Spec) { s.Data[0].Expr = `grant.id + "x"` },
			[]CompileError{{"data.thing1", 1, 10, "mismatched types int64 and string"}}},
		{"when not bool", func(s *Spec) { s.When = "grant.openid" },
			[]CompileError{{"when", 1, 1, "want a bool, got string"}}},
		{"when not bool, second line", func(s *Spec) { s.When = "\n  grant.id + 1" },
			[]CompileError{{"when", 2, 3, "want a bool, got int"}}},
		{"data bool", func(s *Spec) { s.Data[0].Expr = "grant.id > 3" },
			[]CompileError{{"data.thing1", 1, 1, "want a string or a number, got bool"}}},
		{"data time", func(s *Spec) { s.Data[0].Expr = "grant.granted_at" },
			[]CompileError{{"data.thing1", 1, 1, "date(), clock() or datetime()"}}},
		{"page not string", func(s *Spec) { s.Page = "grant.id" },
			[]CompileError{{"page", 1, 1, "want a string, got int64"}}},
		{"syntax error", func(s *Spec) { s.When = "product != nil &&" },
			[]CompileError{{"when", 1, 0, "unexpected token EOF"}}},
		{"syntax error line 2", func(s *Spec) { s.Data[0].Expr = "product.name +\n  )" },
			[]CompileError{{"data.thing1", 2, 3, "unexpected token"}}},
		{"unknown keyword type", func(s *Spec) { s.Data = append(s.Data, Field{"colour2", `"red"`}) },
			[]CompileError{{"data.colour2", 0, 0, `unknown type "colour"`}}},
		{"missing index", func(s *Spec) { s.Data = append(s.Data, Field{"thing", `"x"`}) },
			[]CompileError{{"data.thing", 0, 0, "missing index"}}},
		{"duplicate key", func(s *Spec) { s.Data = append(s.Data, Field{"thing1", `"x"`}) },
			[]CompileError{{"data.thing1", 0, 0, "duplicate data key"}}},
		{"no data", func(s *Spec) { s.Data = nil },
			[]CompileError{{"data", 0, 0, "no data fields"}}},
		{"empty data expr", func(s *Spec) { s.Data[0].Expr = " " },
			[]CompileError{{"data.thing1", 0, 0, "empty expression"}}},
		{"constant phrase", func(s *Spec) { s.Data = append(s.Data, Field{"phrase2", `"abc"`}) },
			[]CompileError{{"data.phrase2", 1, 1, "constant can never be sent: not Chinese characters only"}}},
		{"constant folded", func(s *Spec) { s.Data = append(s.Data, Field{"amount2", `"12" + " yuan"`}) },
			[]CompileError{{"data.amount2", 1, 1, "not an amount"}}},
		{"long constant thing, skip", func(s *Spec) {
			s.Overflow = Skip
			s.Data = append(s.Data, Field{"thing4", `"` + strings.Repeat("长", 21) + `"`})
		}, []CompileError{{"data.thing4", 1, 1, "longer than 20 characters"}}},
		{"constant nil", func(s *Spec) { s.Data = append(s.Data, Field{"thing2", "nil"}) },
			[]CompileError{{"data.thing2", 1, 1, "evaluates to nil"}}},
		{"constant page with space", func(s *Spec) { s.Page = `"pages/a b"` },
			[]CompileError{{"page", 1, 1, "path has ' '"}}},
		{"constant page not in pages", func(s *Spec) { s.Page = `"pages/gone/index?id=1"`; s.Pages = []string{"pages/index/index"} },
			[]CompileError{{"page", 1, 1, `"pages/gone/index" is not a page of the mini program`}}},
		{"page path known before the query", func(s *Spec) {
			s.Page = `"pages/gone/index?id=" + grant.biz_no`
			s.Pages = []string{"pages/index/index"}
		}, []CompileError{{"page", 1, 1, `"pages/gone/index" is not a page`}}},
		{"page path with a bad character before the query", func(s *Spec) { s.Page = `"pages/a b?id=" + grant.biz_no` },
			[]CompileError{{"page", 1, 1, "path has ' '"}}},
		{"enum literal outside the values", func(s *Spec) {
			s.Data = append(s.Data, Field{"enum2", `product.stock > 0 ? "有货" : "缺货了"`})
			s.Enums = map[string][]string{"enum2": {"有货", "缺货"}}
		}, []CompileError{{"data.enum2", 1, 28, `"缺货了" can never be sent: not one of the enum values (有货, 缺货)`}}},
		{"enum literal after ??", func(s *Spec) {
			s.Data = append(s.Data, Field{"enum2", `grant.vars.state ?? "unknown"`})
			s.Enums = map[string][]string{"enum2": {"有货", "缺货"}}
		}, []CompileError{{"data.enum2", 1, 21, `"unknown" can never be sent`}}},
		{"fact key sees no facts", func(s *Spec) {
			s.Facts = append(s.Facts, FactSpec{"sku", "product.sku_id"})
		}, []CompileError{{"facts.sku.key", 1, 1, "unknown name product"}}},
		{"fact key bool", func(s *Spec) { s.Facts[0].Key = `grant.biz_no == ""` },
			[]CompileError{{"facts.product.key", 1, 1, "want a string or a number, got bool"}}},
		{"fact name reserved", func(s *Spec) { s.Facts = append(s.Facts, FactSpec{"len", "grant.id"}) },
			[]CompileError{{"facts.len", 0, 0, "reserved"}}},
		{"fact name grant", func(s *Spec) { s.Facts = append(s.Facts, FactSpec{"grant", "grant.id"}) },
			[]CompileError{{"facts.grant", 0, 0, "reserved"}}},
		{"fact name invalid", func(s *Spec) { s.Facts = append(s.Facts, FactSpec{"my-order", "grant.id"}) },
			[]CompileError{{"facts.my-order", 0, 0, "not an identifier"}}},
		{"fact duplicate", func(s *Spec) { s.Facts = append(s.Facts, FactSpec{"product", "grant.id"}) },
			[]CompileError{{"facts.product", 0, 0, "duplicate fact"}}},
		{"bad overflow", func(s *Spec) { s.Overflow = "cut" },
			[]CompileError{{"overflow", 0, 0, `unknown overflow "cut"`}}},
		{"enum for unknown key", func(s *Spec) { s.Enums = map[string][]string{"enum3": {"a"}} },
			[]CompileError{{"enums.enum3", 0, 0, "not an enum key of data"}}},
		{"num of bool", func(s *Spec) { s.When = "num(true) > 1" },
			[]CompileError{{"when", 1, 1, "num: want a number or a numeric string, got bool"}}},
		{"date of int", func(s *Spec) { s.Data[0].Expr = "date(grant.id)" },
			[]CompileError{{"data.thing1", 1, 1, "date: want a time, got int64"}}},
		{"date of duration", func(s *Spec) { s.Data[0].Expr = `date(duration("1h"))` },
			[]CompileError{{"data.thing1", 1, 1, "a duration is not a point in time"}}},
		{"date two args", func(s *Spec) { s.Data[0].Expr = `date(grant.granted_at, 1)` },
			[]CompileError{{"data.thing1", 1, 1, "date takes one argument (a time), got 2"}}},
		{"truncate length string", func(s *Spec) { s.Data[0].Expr = `truncate(product.name, "5")` },
			[]CompileError{{"data.thing1", 1, 1, "truncate: want an integer length, got string"}}},
		{"builtin now disabled", func(s *Spec) { s.When = "now() > grant.granted_at" },
			[]CompileError{{"when", 1, 0, ""}}},
		{"several problems at once", func(s *Spec) {
			s.When = "grant.bizno"
			s.Page = "1"
			s.Data = append(s.Data, Field{"colour2", "x"}, Field{"amount3", "true"})
		}, []CompileError{
			{"when", 1, 7, "no field bizno"},
			{"page", 1, 1, "want a string, got int"},
			{"data.colour2", 0, 0, "unknown type"},
			{"data.amount3", 1, 1, "want a string or a number, got bool"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base()
			tt.modify(&spec)
			p, err := Compile(spec)
			if err == nil {
				t.Fatalf("Compile succeeded, want %d errors", len(tt.want))
			}
			if p != nil {
				t.Errorf("Compile returned a program with an error")
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error %T is not Errors", err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, w := range tt.want {
				g := errs[i]
				if g.Field != w.Field || g.Line != w.Line || w.Column != 0 && g.Column != w.Column || !strings.Contains(g.Msg, w.Msg) {
					t.Errorf("error %d = %q %d:%d %q; want %q %d:%d containing %q", i, g.Field, g.Line, g.Column, g.Msg, w.Field, w.Line, w.Column, w.Msg)
				}
				if w.Column != 0 && g.Column != w.Column {
					t.Errorf("error %d column = %d, want %d (%v)", i, g.Column, w.Column, g)
				}
			}
		})
	}
}

func TestCompileValid(t *testing.T) {
	specs := map[string]Spec{
		"price drop": priceDrop(),
		"unpaid order": {
			Facts: []FactSpec{{Name: "order", Key: "grant.biz_no"}},
			When:  `order != nil && order.status == "unpaid" && now - order.created_at > duration("30m")`,
			Data: []Field{
				{Key: "character_string1", Expr: "order.order_no"},
				{Key: "amount2", Expr: "money(order.total)"},
				{Key: "time3", Expr: "datetime(order.created_at)"},
				{Key: "phrase4", Expr: `"待支付"`},
			},
			Page: `"pages/order/pay?id=" + str(order.id)`,
		},
		"no when, no facts":             {Data: []Field{{Key: "thing1", Expr: `campaign.name + " " + grant.scene`}}},
		"long constant thing, truncate": {Overflow: Truncate, Data: []Field{{Key: "thing1", Expr: `"` + strings.Repeat("长", 30) + `"`}}},
		"enum": {
			Data:  []Field{{Key: "enum1", Expr: `grant.vars.status`}},
			Enums: map[string][]string{"enum1": {"a", "b"}},
		},
		"numbers as data": {Data: []Field{{Key: "number1", Expr: `grant.id * 2`}, {Key: "number2", Expr: `1.5`}}},
		"time arithmetic on grant": {
			When: `now - grant.granted_at < duration("24h") && grant.kind == "one_time"`,
			Data: []Field{{Key: "date1", Expr: "date(now)"}, {Key: "time2", Expr: "clock(grant.granted_at)"}},
		},
		"optional chaining": {
			Facts: []FactSpec{{Name: "product", Key: "grant.vars.sku"}},
			When:  `(product?.stock ?? 0) > 0`,
			Data:  []Field{{Key: "thing1", Expr: `product?.name ?? "商品"`}},
		},
	}
	for name, spec := range specs {
		if _, err := Compile(spec); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func grant() *wxcampaign.Grant {
	return &wxcampaign.Grant{
		ID: 42, OpenID: "o-abc", TemplateID: "TPL", Scene: "cart", BizNo: "1001",
		Vars:      map[string]any{"saved_price": "99.00"},
		GrantedAt: time.Date(2024, 4, 30, 23, 30, 0, 0, time.UTC),
		Kind:      wxcampaign.OneTime,
	}
}

func TestWhen(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai)
	tests := []struct {
		name    string
		when    string
		row     map[string]any // nil: no row
		vars    map[string]any
		want    bool
		wantErr string
	}{
		{"price dropped", priceDrop().When, map[string]any{"price": 79.5, "stock": int64(3)}, nil, true, ""},
		{"price same", priceDrop().When, map[string]any{"price": 99.0, "stock": int64(3)}, nil, false, ""},
		{"out of stock", priceDrop().When, map[string]any{"price": 79.5, "stock": int64(0)}, nil, false, ""},
		{"no row", priceDrop().When, nil, nil, false, ""},
		{"int price", priceDrop().When, map[string]any{"price": int64(79), "stock": int64(3)}, nil, true, ""},
		{"saved price as JSON number", priceDrop().When, map[string]any{"price": 79.5, "stock": int64(3)}, map[string]any{"saved_price": 99.0}, true, ""},
		{"saved price not numeric", priceDrop().When, map[string]any{"price": 79.5, "stock": int64(3)}, map[string]any{"saved_price": "n/a"}, false, `num: "n/a" is not a number`},
		{"saved price missing", priceDrop().When, map[string]any{"price": 79.5, "stock": int64(3)}, map[string]any{}, false, "num: nil is not a number"},
		{"field of nil fact", "product.price < 100", nil, nil, false, "cannot fetch price from <nil> (1:9)"},
		{"optional chaining on nil fact", "product?.price == nil", nil, nil, true, ""},
		{"unpaid 31m", `product.status == "unpaid" && now - product.created_at > duration("30m")`,
			map[string]any{"status": "unpaid", "created_at": now.Add(-31 * time.Minute)}, nil, true, ""},
		{"unpaid 29m", `product.status == "unpaid" && now - product.created_at > duration("30m")`,
			map[string]any{"status": "unpaid", "created_at": now.Add(-29 * time.Minute)}, nil, false, ""},
		{"nil result", "product?.active", nil, nil, false, "evaluates to nil, want a bool"},
		{"grant fields", `grant.id == 42 && grant.openid == "o-abc" && grant.template_id == "TPL" && grant.scene == "cart" && grant.kind == "one_time" && campaign.name == "c"`, nil, nil, true, ""},
		{"granted within a day", `now - grant.granted_at < duration("24h")`, nil, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := base()
			spec.When = tt.when
			p, err := Compile(spec)
			if err != nil {
				t.Fatal(err)
			}
			g := grant()
			if tt.vars != nil {
				g.Vars = tt.vars
			}
			e := p.NewEnv()
			e.Reset(g, now)
			e.SetFact("product", tt.row)
			got, err := p.When(e)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("When error = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("When = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestRender(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai)
	created := time.Date(2024, 5, 1, 1, 5, 0, 0, time.UTC) // 09:05 in Shanghai
	row := map[string]any{"name": "Nike Air 42码", "price": 79.5, "stock": int64(3), "created_at": created, "qty": int64(2), "ratio": 0.25}
	tests := []struct {
		name     string
		key      string
		expr     string
		overflow Overflow
		enums    []string
		want     string
		wantErr  string // full RenderError text
	}{
		{"thing", "thing1", "product.name", "", nil, "Nike Air 42码", ""},
		{"money", "amount2", "money(product.price)", "", nil, "¥79.50", ""},
		{"money of string", "amount2", "money(grant.vars.saved_price)", "", nil, "¥99.00", ""},
		{"money rounds", "amount2", "money(12.345678)", "", nil, "¥12.35", ""},
		{"amount from number", "amount2", `str(product.price) + "元"`, "", nil, "79.5元", ""},
		{"number int", "number1", "product.qty", "", nil, "2", ""},
		{"number float no trailing zeros", "number1", "product.price * 2", "", nil, "159", ""},
		{"number small float", "number1", "product.ratio", "", nil, "0.25", ""},
		{"date in campaign zone", "date1", "date(product.created_at)", "", nil, "2024年5月1日", ""},
		{"clock in campaign zone", "time1", "clock(product.created_at)", "", nil, "09:05", ""},
		{"datetime in campaign zone", "time1", "datetime(product.created_at)", "", nil, "2024年5月1日 09:05", ""},
		{"date across midnight", "date1", "date(grant.granted_at)", "", nil, "2024年5月1日", ""},
		{"time range", "time1", `clock(now) + "~" + clock(now + duration("2h"))`, "", nil, "10:00~12:00", ""},
		{"date of string", "date1", `date("2024-02-29")`, "", nil, "2024年2月29日", ""},
		{"truncate fn", "thing1", "truncate(product.name, 5)", "", nil, "Nike…", ""},
		{"thing overflow truncates", "thing1", `product.name + "，限时降价，快来看看吧朋友们"`, Truncate, nil, "Nike Air 42码，限时降价，快…", ""},
		{"thing overflow skips by default", "thing1", `product.name + "，限时降价，快来看看吧朋友们"`, "", nil, "", "render invalid: thing1: longer than 20 characters"},
		{"thing overflow skip", "thing1", `product.name + "，限时降价，快来看看吧朋友们"`, Skip, nil, "", "render invalid: thing1: longer than 20 characters"},
		{"other types never truncate", "character_string1", `"` + strings.Repeat("x", 33) + `" + grant.biz_no`, "", nil, "", "render invalid: character_string1: longer than 32 characters"},
		{"not an amount", "amount2", `str(product.price)`, "", nil, "79.5", ""},
		{"not an amount 2", "amount2", `product.name`, "", nil, "", "render invalid: amount2: not an amount"},
		{"empty", "thing1", `grant.vars.missing ?? ""`, "", nil, "", "render invalid: thing1: empty"},
		{"newline", "thing1", `product.name + "\n"`, "", nil, "", "render invalid: thing1: contains a control character"},
		{"nil", "thing1", "grant.vars.missing", "", nil, "", "render invalid: thing1: evaluates to nil"},
		{"bool at run time", "thing1", "grant.vars.flag", "", nil, "", "render invalid: thing1: evaluates to bool, want a string or a number"},
		{"runtime error", "amount2", "money(product.name)", "", nil, "", `render invalid: amount2: money: "Nike Air 42码" is not a number (1:1)`},
		{"enum ok", "enum1", `"b"`, "", []string{"a", "b"}, "b", ""},
		{"enum bad", "enum1", `grant.scene`, "", []string{"a", "b"}, "", "render invalid: enum1: not one of the enum values"},
		{"enum from a conditional", "enum1", `grant.scene == "cart" ? "a" : "b"`, "", []string{"a", "b"}, "a", ""},
		{"short_thing", "short_thing2", `"配送中"`, "", nil, "配送中", ""},
		{"short_thing overflow truncates", "short_thing2", `product.name`, Truncate, nil, "Nike…", ""},
		{"short_thing overflow skips by default", "short_thing2", `product.name`, "", nil, "", "render invalid: short_thing2: longer than 5 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := Spec{Campaign: "c", Facts: []FactSpec{{Name: "product", Key: "grant.biz_no"}},
				Data: []Field{{Key: tt.key, Expr: tt.expr}}, Overflow: tt.overflow}
			if tt.enums != nil {
				spec.Enums = map[string][]string{tt.key: tt.enums}
			}
			p, err := Compile(spec)
			if err != nil {
				t.Fatal(err)
			}
			e := p.NewEnv()
			g := grant()
			g.Vars = map[string]any{"saved_price": "99.00", "flag": true}
			e.Reset(g, now)
			e.SetFact("product", row)
			m, err := p.Render(e)
			if tt.wantErr != "" {
				var re *RenderError
				if !errors.As(err, &re) || err.Error() != tt.wantErr {
					t.Fatalf("Render error = %v (%T), want %q", err, err, tt.wantErr)
				}
				if re.Key != tt.key {
					t.Errorf("RenderError.Key = %q, want %q", re.Key, tt.key)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := m.Data[tt.key]; got != tt.want {
				t.Fatalf("%s = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}

func TestRenderPriceDrop(t *testing.T) {
	p, err := Compile(priceDrop())
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEnv()
	e.Reset(grant(), time.Now())
	e.SetFact("product", map[string]any{"name": "Nike Air 42码", "price": 79.5, "stock": int64(3)})
	m, err := p.Render(e)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{
		Data: map[string]string{"thing1": "Nike Air 42码", "amount2": "¥79.50", "amount3": "¥99.00", "thing4": "降价了，快来看看"},
		Page: "pages/goods/detail?id=1001",
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("Render = %+v, want %+v", m, want)
	}
}

func TestPage(t *testing.T) {
	tests := []struct {
		page    string
		want    string
		wantErr string
	}{
		{`"pages/goods/detail?id=" + grant.biz_no`, "pages/goods/detail?id=1001", ""},
		{`"/pages/index/index"`, "pages/index/index", ""},
		{`grant.vars.page ?? ""`, "", ""},
		{`grant.vars.bad`, "", "render invalid: page: query contains a space or a control character"},
		{`"pages/goods/detail?note=" + grant.vars.long`, "", "render invalid: page: longer than 1024 bytes"},
		{`"pages/" + grant.vars.path`, "", `render invalid: page: path has '商': want ASCII letters, digits and _-.@`},
		{`grant.vars.num`, "", "render invalid: page: evaluates to float64 1, want a string"},
		{``, "", ""},
	}
	for _, tt := range tests {
		spec := base()
		spec.Page = tt.page
		p, err := Compile(spec)
		if err != nil {
			t.Fatal(err)
		}
		e := p.NewEnv()
		g := grant()
		g.Vars = map[string]any{"bad": "pages/a?x=1 2", "num": 1.0, "long": strings.Repeat("x", 1100), "path": "商品/index"}
		e.Reset(g, time.Now())
		e.SetFact("product", map[string]any{"name": "x"})
		m, err := p.Render(e)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.wantErr || m.Page != tt.want {
			t.Errorf("page %s: got %q, %v; want %q, %q", tt.page, m.Page, err, tt.want, tt.wantErr)
		}
	}
}

// TestPagesList: with Spec.Pages, a rendered page must be one of the
// account's pages (query ignored); a page built from one grant's data that
// is not fails that grant only, naming page.
func TestPagesList(t *testing.T) {
	spec := base()
	spec.Page = `grant.vars.page`
	spec.Pages = []string{"/pages/goods/detail", "pages/index/index?x=1"}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Pages(); strings.Join(got, ",") != "pages/goods/detail,pages/index/index" {
		t.Errorf("Pages() = %q", got)
	}
	for _, tt := range []struct{ page, want, wantErr string }{
		{"pages/goods/detail?id=7", "pages/goods/detail?id=7", ""},
		{"/pages/index/index", "pages/index/index", ""},
		{"pages/goods/list", "", `render invalid: page: "pages/goods/list" is not a page of the mini program (wechat.pages)`},
		{"", "", ""},
	} {
		e := p.NewEnv()
		g := grant()
		g.Vars = map[string]any{"page": tt.page}
		e.Reset(g, time.Now())
		e.SetFact("product", map[string]any{"name": "x"})
		m, err := p.Render(e)
		got := ""
		var re *RenderError
		if err != nil {
			got = err.Error()
			if !errors.As(err, &re) || re.Key != "page" {
				t.Errorf("page %q: error %v is not a RenderError for page", tt.page, err)
			}
		}
		if got != tt.wantErr || m.Page != tt.want {
			t.Errorf("page %q: got %q, %q; want %q, %q", tt.page, m.Page, got, tt.want, tt.wantErr)
		}
	}
}

func TestFactKey(t *testing.T) {
	spec := Spec{
		Facts: []FactSpec{
			{Name: "product", Key: "grant.biz_no"},
			{Name: "order", Key: "grant.vars.order_id"},
			{Name: "user", Key: "grant.id"},
			{Name: "shop", Key: "grant.vars.shop"},
			{Name: "when_key", Key: "str(now.Year())"},
		},
		Data: []Field{{Key: "thing1", Expr: `"x"`}},
	}
	p, err := Compile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Facts(); !reflect.DeepEqual(got, []string{"product", "order", "user", "shop", "when_key"}) {
		t.Errorf("Facts = %v", got)
	}
	e := p.NewEnv()
	g := grant()
	g.Vars = map[string]any{"order_id": 123.0, "shop": 1.5}
	e.Reset(g, time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC))
	tests := []struct {
		name    string
		want    any
		wantErr string
	}{
		{"product", "1001", ""},
		{"order", int64(123), ""},
		{"user", int64(42), ""},
		{"shop", 1.5, ""},
		{"when_key", "2024", ""},
		{"nope", nil, `unknown fact "nope"`},
	}
	for _, tt := range tests {
		got, err := p.FactKey(tt.name, e)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("FactKey(%s) error = %v, want %q", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("FactKey(%s) = %#v, %v; want %#v", tt.name, got, err, tt.want)
		}
	}
	g.Vars = nil
	e.Reset(g, time.Now())
	if got, err := p.FactKey("order", e); got != nil || err != nil {
		t.Errorf("FactKey(order) without vars = %v, %v; want nil, nil", got, err)
	}
}

func TestEnvReset(t *testing.T) {
	p, err := Compile(priceDrop())
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEnv()
	row := map[string]any{"name": "x", "price": 1.0, "stock": int64(1)}
	e.Reset(grant(), time.Now())
	e.SetFact("product", row)
	if ok, err := p.When(e); !ok || err != nil {
		t.Fatalf("When = %v, %v", ok, err)
	}
	if got := e.Fact("product"); !reflect.DeepEqual(got, row) {
		t.Fatalf("Fact = %v", got)
	}
	e.Reset(grant(), time.Now())
	if e.Fact("product") != nil {
		t.Fatal("Reset kept the fact")
	}
	if ok, err := p.When(e); ok || err != nil {
		t.Fatalf("When after Reset = %v, %v; want false (no row)", ok, err)
	}
	e.SetFact("grant", row) // not a fact: ignored
	e.SetFact("unknown", row)
	if e.Fact("unknown") != nil || e.Fact("grant") != nil {
		t.Fatal("SetFact accepted a name that is no fact")
	}
	e.Reset(nil, time.Time{})
	if ok, err := p.When(e); ok || err != nil {
		t.Fatalf("When with nil grant = %v, %v", ok, err)
	}
}

func TestNowChanges(t *testing.T) {
	p, err := Compile(Spec{Data: []Field{{Key: "time1", Expr: "datetime(now)"}}})
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEnv()
	for _, now := range []time.Time{
		time.Date(2024, 5, 1, 10, 0, 0, 0, shanghai),
		time.Date(2024, 5, 1, 11, 0, 0, 0, shanghai),
		time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC),
	} {
		e.Reset(grant(), now)
		m, err := p.Render(e)
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Format(layoutDateTime); m.Data["time1"] != want {
			t.Errorf("now %v: %q, want %q", now, m.Data["time1"], want)
		}
	}
}

func TestExplain(t *testing.T) {
	p, err := Compile(priceDrop())
	if err != nil {
		t.Fatal(err)
	}
	e := p.NewEnv()
	e.Reset(grant(), time.Now())
	steps := p.Explain(e) // no row: when false, product fields fail
	var fields []string
	for _, s := range steps {
		fields = append(fields, s.Field)
	}
	if want := []string{"when", "data.thing1", "data.amount2", "data.amount3", "data.thing4", "page"}; !reflect.DeepEqual(fields, want) {
		t.Fatalf("fields = %v, want %v", fields, want)
	}
	if steps[0].Value != false || steps[0].Err != nil {
		t.Errorf("when step = %+v", steps[0])
	}
	if steps[1].Err == nil || !strings.Contains(steps[1].Err.Error(), "cannot fetch name from <nil>") {
		t.Errorf("thing1 step = %+v", steps[1])
	}
	if steps[3].Value != "¥99.00" || steps[3].Err != nil {
		t.Errorf("amount3 step = %+v", steps[3])
	}
	if steps[5].Value != "pages/goods/detail?id=1001" {
		t.Errorf("page step = %+v", steps[5])
	}
}

func TestErrorsText(t *testing.T) {
	errs := Errors{
		{Field: "when", Line: 1, Column: 7, Msg: "type grant has no field bizno"},
		{Field: "data.colour2", Msg: `unknown type "colour"`},
	}
	want := "when:1:7: type grant has no field bizno\ndata.colour2: unknown type \"colour\""
	if errs.Error() != want {
		t.Fatalf("Errors.Error() = %q, want %q", errs.Error(), want)
	}
	if got := (&RenderError{Key: "amount2", Reason: "not an amount"}).Error(); got != "render invalid: amount2: not an amount" {
		t.Fatalf("RenderError = %q", got)
	}
}

// TestConcurrent runs one Program from several goroutines, each with its own
// Env, under -race.
func TestConcurrent(t *testing.T) {
	p, err := Compile(priceDrop())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	for i := range 4 {
		go func() {
			e := p.NewEnv()
			g := grant()
			g.BizNo = string(rune('a' + i))
			for range 200 {
				e.Reset(g, time.Now())
				e.SetFact("product", map[string]any{"name": "x", "price": 1.0, "stock": int64(1)})
				if ok, err := p.When(e); !ok || err != nil {
					done <- err
					return
				}
				m, err := p.Render(e)
				if err != nil || m.Page != "pages/goods/detail?id="+g.BizNo {
					done <- errors.New("bad render: " + m.Page)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
