package engine_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sirupsen/logrus"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/engine"
	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// ExampleEngine_Run previews, then sends, a price-drop campaign on an
// embedded SQLite store against the WeChat simulator.
func ExampleEngine_Run() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wxcampaign-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// The ledger, with a business table the campaign joins.
	db, err := store.Open(ctx, store.Config{Driver: store.SQLite, DSN: filepath.Join(dir, "wxcampaign.db")})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(ctx); err != nil {
		log.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE products (id VARCHAR(64) PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), stock INT)`,
		`INSERT INTO products VALUES ('p1', '无线降噪耳机', 12.50, 5), ('p2', '保温杯', 30.00, 3)`,
	} {
		if _, err := db.SQLX().ExecContext(ctx, q); err != nil {
			log.Fatal(err)
		}
	}

	c, err := campaigns.Parse("price-drop.yaml", []byte(`name: price-drop
schedule: "*/10 * * * *"
timezone: Asia/Shanghai
template:
  id: tplPriceDrop
  kind: one_time
  page: '"pages/goods/detail?id=" + grant.biz_no'
facts:
  product:
    query: SELECT id, name, price, stock FROM products WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: product != nil && product.price < num(grant.vars.saved_price) && product.stock > 0
data:
  thing1: product.name
  amount2: money(product.price)
limits:
  - {scope: user_template, max: 1, window: 24h}
`), campaigns.Defaults{})
	if err != nil {
		log.Fatal(err)
	}

	// WeChat: the simulator over loopback, knowing the template.
	sim, err := wxsim.New(wxsim.Config{AppID: "wxexample", Secret: "example-secret",
		Templates: []wxsim.TemplateDef{{ID: "tplPriceDrop", Keys: []string{"thing1", "amount2"}}}})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	client, err := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: "wxexample", Secret: "example-secret", Tokens: db, Logger: quiet})
	if err != nil {
		log.Fatal(err)
	}

	// Three users added a product to the cart at the price they saw.
	for i, s := range []struct{ openid, product, saved string }{
		{"oAlice", "p1", "15.00"}, // 12.50 now: dropped
		{"oBob", "p2", "30.00"},   // unchanged
		{"oCarol", "p2", "35.00"}, // 30.00 now: dropped
	} {
		r := wx.SubscriptionResult{OpenID: s.openid, Scene: "add_to_cart", BusNo: s.product, RequestID: fmt.Sprint("req-", i),
			ExtraVariableMap: map[string]any{"saved_price": s.saved}, AgreeTemplateIDs: []string{"tplPriceDrop"}}
		if _, err := db.RecordSubscription(ctx, r, time.Now()); err != nil {
			log.Fatal(err)
		}
		sim.AddCredits(s.openid, "tplPriceDrop", 1)
	}

	eng, err := engine.New(engine.Config{AppID: "wxexample", Logger: quiet}, db, db.Facts(), client)
	if err != nil {
		log.Fatal(err)
	}
	tick := time.Date(2024, 6, 3, 10, 0, 0, 0, c.Location)
	for _, dry := range []bool{true, false} {
		var lines []string
		sum, err := eng.Run(ctx, c, engine.Options{At: tick, DryRun: dry, Report: func(g engine.GrantReport) {
			lines = append(lines, fmt.Sprintf("  %s: %s (%s)", g.OpenID, g.Outcome, g.Reason))
		}})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: %d looked at, %d sent\n", sum.Status, sum.Looked, sum.Counts[wx.Sent])
		sort.Strings(lines)
		for _, l := range lines {
			fmt.Println(l)
		}
	}
	fmt.Println("WeChat received:")
	msgs := sim.Messages() // in delivery order, which concurrent sends make vary
	sort.Slice(msgs, func(i, j int) bool { return msgs[i].ToUser < msgs[j].ToUser })
	for _, m := range msgs {
		fmt.Printf("  %s %s %s %s\n", m.ToUser, m.Page, m.Data["thing1"], m.Data["amount2"])
	}
	// Output:
	// preview: 3 looked at, 2 sent
	//   oAlice: sent (ok)
	//   oBob: skipped (rule false)
	//   oCarol: sent (ok)
	// done: 3 looked at, 2 sent
	//   oAlice: sent (ok)
	//   oBob: skipped (rule false)
	//   oCarol: sent (ok)
	// WeChat received:
	//   oAlice pages/goods/detail?id=p1 无线降噪耳机 ¥12.50
	//   oCarol pages/goods/detail?id=p2 保温杯 ¥30.00
}
