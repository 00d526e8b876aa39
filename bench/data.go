package bench

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	wx "github.com/wxcampaign/wxcampaign"
)

// Product classes: a tenth of the catalogue per class digit. Four tenths
// dropped in price and in stock (eligible), one tenth dropped but out of
// stock, five tenths unchanged. A grant's saved price is the product's
// price before the drop, so the price-drop rule holds exactly for the
// grants on dropped, in-stock products.
const (
	classDropped = iota // price dropped, in stock: the rule holds
	classNoStock        // price dropped, out of stock: the rule is false
	classSame           // price unchanged: the rule is false
)

func productClass(p int) int {
	switch d := p % 10; {
	case d < 4:
		return classDropped
	case d == 4:
		return classNoStock
	default:
		return classSame
	}
}

var productNames = []string{"云南小粒咖啡豆", "有机燕麦片", "无线降噪耳机", "机械键盘", "保温杯", "运动跑鞋", "羊毛围巾", "蓝牙音箱", "手冲咖啡壶", "空气炸锅"}

type product struct {
	id          string
	name        string
	saved, now  float64
	stock       int
	class       int
	cents, nowC int64
}

func makeProduct(p int) product {
	cents := int64(2000+(p*37)%50000) + 90 // 20.90 .. 520.80
	pr := product{id: fmt.Sprintf("p%06d", p+1), name: fmt.Sprintf("%s %d号", productNames[p%len(productNames)], p+1),
		class: productClass(p), cents: cents, nowC: cents, stock: 1 + p%50}
	if pr.class != classSame {
		pr.nowC = cents * 8 / 10
	}
	if pr.class == classNoStock {
		pr.stock = 0
	}
	pr.saved, pr.now = float64(pr.cents)/100, float64(pr.nowC)/100
	return pr
}

// createProducts makes the products table with n products.
func createProducts(ctx context.Context, db *sql.DB, n int) error {
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS products"); err != nil {
		return fmt.Errorf("bench: products: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE products (id VARCHAR(64) PRIMARY KEY, name VARCHAR(100), price DECIMAL(10,2), stock INT)`); err != nil {
		return fmt.Errorf("bench: products: %w", err)
	}
	const chunk = 1000
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		var q strings.Builder
		q.WriteString("INSERT INTO products (id, name, price, stock) VALUES ")
		args := make([]any, 0, 4*(hi-lo))
		for p := lo; p < hi; p++ {
			if p > lo {
				q.WriteByte(',')
			}
			q.WriteString("(?,?,?,?)")
			pr := makeProduct(p)
			args = append(args, pr.id, pr.name, fmt.Sprintf("%d.%02d", pr.nowC/100, pr.nowC%100), pr.stock)
		}
		if _, err := db.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("bench: insert products: %w", err)
		}
	}
	return nil
}

// eligibleCount is how many of n grants writeGrants makes eligible.
func eligibleCount(n int, share float64) int { return int(float64(n) * share) }

// writeGrants writes n subscription results (JSON Lines, one distinct
// openid each, so in-run dedup and caps never interfere) for template tpl
// over products products; exactly eligibleCount(n, share) of them hold the
// price-drop rule, spread evenly through the file.
func writeGrants(path string, n, products int, share float64, tpl string) error {
	var dropped, other []int
	for p := range products {
		if productClass(p) == classDropped {
			dropped = append(dropped, p)
		} else {
			other = append(other, p)
		}
	}
	if len(dropped) == 0 || len(other) == 0 {
		return fmt.Errorf("bench: %d products: want at least 10", products)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: grants file: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	ne, no := 0, 0
	for i := range n {
		var p int
		if int(float64(i+1)*share) > int(float64(i)*share) {
			p = dropped[ne%len(dropped)]
			ne++
		} else {
			p = other[no%len(other)]
			no++
		}
		pr := makeProduct(p)
		r := wx.SubscriptionResult{
			OpenID: fmt.Sprintf("oBench%09d", i), Scene: "add_to_cart", BusNo: pr.id,
			ExtraVariableMap: map[string]any{"saved_price": fmt.Sprintf("%d.%02d", pr.cents/100, pr.cents%100)},
			AgreeTemplateIDs: []string{tpl}, RequestID: fmt.Sprintf("bench-%09d", i),
		}
		if err := enc.Encode(&r); err != nil {
			f.Close()
			return fmt.Errorf("bench: grants file: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench: grants file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: grants file: %w", err)
	}
	return nil
}
