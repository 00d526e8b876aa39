package store_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store"
)

func TestTemplatesRegistry(t *testing.T) {
	order := store.Template{ID: "T-ORDER", Title: "订单未支付提醒", Kind: wxcampaign.OneTime,
		Content: "订单号:{{character_string1.DATA}}\n状态:{{enum2.DATA}}\n", Example: "订单号:123\n",
		Keys: []store.TemplateKey{
			{Key: "character_string1", Type: "character_string", Label: "订单号", Example: "123"},
			{Key: "enum2", Type: "enum", Label: "状态", Enum: []string{"待支付", "已取消"}},
		}}
	remind := store.Template{ID: "T-REMIND", Title: "预约提醒 🎉", Kind: wxcampaign.LongTerm, Content: "服务:{{short_thing1.DATA}}\n",
		Keys: []store.TemplateKey{{Key: "short_thing1", Type: "short_thing", Label: "服务"}}}
	t1 := t0.Add(time.Hour)
	eachDriver(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		reg, err := db.Templates(ctx, "wxapp")
		if err != nil || reg.Synced() || len(reg.Templates) != 0 {
			t.Fatalf("before any sync: %+v, %v", reg, err)
		}
		res, err := db.SyncTemplates(ctx, "wxapp", []store.Template{remind, order}, t0)
		if err != nil || res != (store.SyncResult{Added: 2}) {
			t.Fatalf("first sync = %+v, %v", res, err)
		}
		reg, err = db.Templates(ctx, "wxapp")
		if err != nil {
			t.Fatal(err)
		}
		if !reg.SyncedAt.Equal(t0) || len(reg.Templates) != 2 {
			t.Fatalf("registry = %+v", reg)
		}
		// WeChat's order, every field back as it went in.
		for i, want := range []store.Template{remind, order} {
			got := reg.Templates[i]
			if !got.SyncedAt.Equal(t0) {
				t.Errorf("template %d synced at %v", i, got.SyncedAt)
			}
			got.SyncedAt = time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("template %d\n got %+v\nwant %+v", i, got, want)
			}
		}
		// Another appid has its own registry.
		if other, _ := db.Templates(ctx, "other"); other.Synced() {
			t.Errorf("other appid synced: %+v", other)
		}

		// A second sync: one changed (an enum value added), one removed, one added.
		order2 := order
		order2.Keys = []store.TemplateKey{order.Keys[0], {Key: "enum2", Type: "enum", Label: "状态", Enum: []string{"待支付", "已取消", "已关闭"}}}
		added := store.Template{ID: "T-NEW", Title: "新", Kind: wxcampaign.OneTime, Keys: []store.TemplateKey{{Key: "thing1", Type: "thing"}}}
		res, err = db.SyncTemplates(ctx, "wxapp", []store.Template{order2, added}, t1)
		if err != nil || res != (store.SyncResult{Added: 1, Changed: 1, Removed: 1}) {
			t.Fatalf("second sync = %+v, %v", res, err)
		}
		res, err = db.SyncTemplates(ctx, "wxapp", []store.Template{order2, added}, t1)
		if err != nil || res != (store.SyncResult{Unchanged: 2}) {
			t.Fatalf("same list again = %+v, %v", res, err)
		}
		reg, _ = db.Templates(ctx, "wxapp")
		if len(reg.Templates) != 2 || reg.Templates[0].ID != "T-ORDER" || len(reg.Templates[0].Keys[1].Enum) != 3 || reg.Templates[1].ID != "T-NEW" {
			t.Errorf("after the second sync: %+v", reg.Templates)
		}

		// Bad lists change nothing.
		for name, ts := range map[string][]store.Template{
			"duplicate id": {order, order},
			"no id":        {{Kind: wxcampaign.OneTime}},
			"long id":      {{ID: strings.Repeat("x", 129), Kind: wxcampaign.OneTime}},
			"no kind":      {{ID: "T"}},
		} {
			if _, err := db.SyncTemplates(ctx, "wxapp", ts, t1.Add(time.Hour)); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
		if _, err := db.SyncTemplates(ctx, "", nil, t1); err == nil {
			t.Error("empty appid: no error")
		}
		if reg, _ := db.Templates(ctx, "wxapp"); !reg.SyncedAt.Equal(t1) || len(reg.Templates) != 2 {
			t.Errorf("a refused sync changed the registry: %+v", reg)
		}

		// An empty list is a sync too: synced, no templates.
		res, err = db.SyncTemplates(ctx, "wxapp", nil, t1.Add(time.Minute))
		if err != nil || res != (store.SyncResult{Removed: 2}) {
			t.Fatalf("empty sync = %+v, %v", res, err)
		}
		if reg, _ := db.Templates(ctx, "wxapp"); !reg.Synced() || len(reg.Templates) != 0 {
			t.Errorf("after an empty sync: %+v", reg)
		}
	})
}
