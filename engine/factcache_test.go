package engine

import (
	"fmt"
	"testing"
	"time"
)

func TestFactCache(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	var c factCache
	c.rotate(t0)
	c.put("product", "p1", map[string]any{"price": 1.0})
	c.put("product", "p2", nil) // known to have no row
	if row, ok := c.get("product", "p1"); !ok || row["price"] != 1.0 {
		t.Fatalf("p1: %v %v", row, ok)
	}
	if row, ok := c.get("product", "p2"); !ok || row != nil {
		t.Fatalf("p2 (no row) must be a hit with a nil row: %v %v", row, ok)
	}
	if _, ok := c.get("order", "p1"); ok {
		t.Fatal("facts must not share keys")
	}
	// Still fresh within the TTL, gone after it.
	c.rotate(t0.Add(factTTL))
	if _, ok := c.get("product", "p1"); !ok {
		t.Fatal("p1 dropped before the TTL")
	}
	c.rotate(t0.Add(factTTL + time.Second))
	if _, ok := c.get("product", "p1"); ok {
		t.Fatal("p1 kept after the TTL")
	}
	// Memory stays flat: at most two generations.
	now := t0.Add(time.Hour)
	c.rotate(now)
	for i := range 3 * factGen {
		c.rotate(now)
		c.put("product", fmt.Sprint(i), nil)
	}
	if n := c.cur.len() + c.old.len(); n > 2*factGen {
		t.Fatalf("%d keys cached, want at most %d", n, 2*factGen)
	}
	if _, ok := c.get("product", fmt.Sprint(3*factGen-1)); !ok {
		t.Fatal("the newest key is not cached")
	}
}
