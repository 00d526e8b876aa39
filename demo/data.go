// Package demo builds the demo world: business tables (products,
// activities, orders, appointments), subscription results for the example
// campaigns, and the run that previews and sends each of them against the
// simulator. `wxcampaign demo` and the benchmarks use it.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	wx "github.com/wxcampaign/wxcampaign"
)

// Size says how much demo data to make.
type Size struct {
	Products     int // default 500
	PriceGrants  int // price-drop subscriptions; default 5000
	Activities   int // default 20
	ActGrants    int // default 2000
	Orders       int // default 2000 (one subscription each)
	Appointments int // default 1000 (long-term subscriptions)
	DropShare    float64
	Seed         uint64
}

// DefaultSize is about 10,000 grants.
var DefaultSize = Size{Products: 500, PriceGrants: 5000, Activities: 20, ActGrants: 2000, Orders: 2000, Appointments: 1000, DropShare: 0.3, Seed: 1}

// Templates are the template ids of the example campaigns.
type Templates struct {
	PriceDrop, Activity, Order, Appointment string
}

// Credit is one one-time credit to feed the simulator's ledger.
type Credit struct{ OpenID, TemplateID string }

// Data is what Seed made.
type Data struct {
	Results []wx.SubscriptionResult
	Credits []Credit
	// Eligible counts, per template, the grants whose rule should hold at
	// the demo time (before caps and dedup).
	Eligible map[string]int
}

// JSONL returns the results as JSON Lines, the shape of `grants import`.
func (d *Data) JSONL() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i := range d.Results {
		_ = enc.Encode(&d.Results[i])
	}
	return b.Bytes()
}

var productNames = []string{"云南小粒咖啡豆", "有机燕麦片", "无线降噪耳机", "机械键盘", "保温杯", "运动跑鞋", "羊毛围巾", "蓝牙音箱", "手冲咖啡壶", "空气炸锅"}
var places = []string{"上海国际会议中心", "北京798艺术区", "深圳湾体育中心", "杭州西湖文化广场", "成都太古里"}
var services = []string{"牙齿清洁", "体检套餐", "理发预约", "汽车保养", "宠物美容"}

// Schema creates the business tables (driver "sqlite" or "mysql"); they
// are dropped first so a demo starts clean.
func Schema(ctx context.Context, db *sqlx.DB) error {
	stmts := []string{
		`DROP TABLE IF EXISTS products`, `DROP TABLE IF EXISTS activities`,
		`DROP TABLE IF EXISTS orders`, `DROP TABLE IF EXISTS appointments`,
		`CREATE TABLE products (id VARCHAR(64) PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), stock INT)`,
		`CREATE TABLE activities (id VARCHAR(64) PRIMARY KEY, title VARCHAR(100), status VARCHAR(16), start_at DATETIME, place VARCHAR(100))`,
		`CREATE TABLE orders (id VARCHAR(64) PRIMARY KEY, openid VARCHAR(64), status VARCHAR(16), amount DECIMAL(10,2), product_name VARCHAR(100), created_at DATETIME)`,
		`CREATE TABLE appointments (id VARCHAR(64) PRIMARY KEY, openid VARCHAR(64), service VARCHAR(100), start_at DATETIME, place VARCHAR(100))`,
	}
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("demo: schema: %w", err)
		}
	}
	return nil
}

func sqlTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }

// insert writes rows in multi-row INSERTs.
func insert(ctx context.Context, db *sqlx.DB, table string, cols []string, rows [][]any) error {
	const chunk = 400
	for len(rows) > 0 {
		n := min(chunk, len(rows))
		var q strings.Builder
		fmt.Fprintf(&q, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ","))
		args := make([]any, 0, n*len(cols))
		ph := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
		for i := range n {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(ph)
			args = append(args, rows[i]...)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("demo: insert %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// Seed fills the business tables and makes the subscription results of
// the demo, relative to the demo time at.
func Seed(ctx context.Context, db *sqlx.DB, at time.Time, t Templates, sz Size) (*Data, error) {
	if err := Schema(ctx, db); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(sz.Seed, 42))
	d := &Data{Eligible: map[string]int{}}
	req := 0
	add := func(r wx.SubscriptionResult, oneTime bool) {
		req++
		r.RequestID = fmt.Sprintf("demo-%06d", req)
		d.Results = append(d.Results, r)
		if oneTime {
			for _, id := range r.AgreeTemplateIDs {
				d.Credits = append(d.Credits, Credit{OpenID: r.OpenID, TemplateID: id})
			}
		}
	}
	openid := func(i int) string { return fmt.Sprintf("oDemo%07d", i) }

	// Products: the price each user saw, then a drop on a share of them.
	type product struct {
		name       string
		saved, now float64
		stock      int64
		dropped    bool
	}
	prods := make([]product, sz.Products)
	var rows [][]any
	for i := range prods {
		p := &prods[i]
		p.name = productNames[i%len(productNames)] + fmt.Sprintf(" %d号", i+1)
		p.saved = float64(20+rng.IntN(500)) + 0.9
		p.now = p.saved
		p.stock = int64(rng.IntN(50))
		if rng.Float64() < sz.DropShare {
			p.now = float64(int((p.saved*0.8)*100)) / 100
			p.dropped = true
		}
		rows = append(rows, []any{fmt.Sprintf("p%05d", i+1), p.name, p.now, p.stock})
	}
	if err := insert(ctx, db, "products", []string{"id", "name", "price", "stock"}, rows); err != nil {
		return nil, err
	}
	for i := range sz.PriceGrants {
		pi := rng.IntN(len(prods))
		p := prods[pi]
		if p.dropped && p.stock > 0 {
			d.Eligible[t.PriceDrop]++
		}
		add(wx.SubscriptionResult{OpenID: openid(i % (sz.PriceGrants * 4 / 5)), Scene: "add_to_cart", BusNo: fmt.Sprintf("p%05d", pi+1),
			ExtraVariableMap: map[string]any{"saved_price": fmt.Sprintf("%.2f", p.saved)}, AgreeTemplateIDs: []string{t.PriceDrop}}, true)
	}

	// Activities: half launched.
	rows = rows[:0]
	launched := make([]bool, sz.Activities)
	for i := range sz.Activities {
		status := "draft"
		if i%2 == 0 {
			status, launched[i] = "launched", true
		}
		rows = append(rows, []any{fmt.Sprintf("a%03d", i+1), fmt.Sprintf("冬季新品发布会第%d场", i+1), status,
			sqlTime(at.Add(time.Duration(24+i) * time.Hour)), places[i%len(places)]})
	}
	if err := insert(ctx, db, "activities", []string{"id", "title", "status", "start_at", "place"}, rows); err != nil {
		return nil, err
	}
	for i := range sz.ActGrants {
		ai := rng.IntN(sz.Activities)
		if launched[ai] {
			d.Eligible[t.Activity]++
		}
		add(wx.SubscriptionResult{OpenID: openid(100000 + i), Scene: "activity_detail", BusNo: fmt.Sprintf("a%03d", ai+1),
			AgreeTemplateIDs: []string{t.Activity}}, true)
	}

	// Orders: created over the last two hours, a third of them paid.
	rows = rows[:0]
	for i := range sz.Orders {
		created := at.Add(-time.Duration(rng.IntN(120)) * time.Minute)
		status := "unpaid"
		if rng.IntN(3) == 0 {
			status = "paid"
		}
		if status == "unpaid" && at.Sub(created) > 30*time.Minute {
			d.Eligible[t.Order]++
		}
		id := fmt.Sprintf("o%06d", i+1)
		rows = append(rows, []any{id, openid(200000 + i), status, float64(10+rng.IntN(900)) + 0.5, productNames[i%len(productNames)], sqlTime(created)})
		add(wx.SubscriptionResult{OpenID: openid(200000 + i), Scene: "order_created", BusNo: id,
			AgreeTemplateIDs: []string{t.Order}}, true)
	}
	if err := insert(ctx, db, "orders", []string{"id", "openid", "status", "amount", "product_name", "created_at"}, rows); err != nil {
		return nil, err
	}

	// Appointments over the next three hours (long-term subscriptions).
	rows = rows[:0]
	for i := range sz.Appointments {
		start := at.Add(time.Duration(5+rng.IntN(180)) * time.Minute)
		if start.Sub(at) <= time.Hour {
			d.Eligible[t.Appointment]++
		}
		id := fmt.Sprintf("m%05d", i+1)
		rows = append(rows, []any{id, openid(300000 + i), services[i%len(services)], sqlTime(start), places[i%len(places)]})
		add(wx.SubscriptionResult{OpenID: openid(300000 + i), Scene: "appointment_booked", BusNo: id,
			AgreeTemplateIDs: []string{t.Appointment}, LongTermTemplateIDs: []string{t.Appointment}}, false)
	}
	if err := insert(ctx, db, "appointments", []string{"id", "openid", "service", "start_at", "place"}, rows); err != nil {
		return nil, err
	}
	return d, nil
}
