package wechat_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/wxcampaign/wxcampaign/wechat"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// A client sending to the simulator: the first send spends the user's one
// credit, the second is refused with 43101 (grant gone).
func ExampleClient_Send() {
	sim, _ := wxsim.New(wxsim.Config{AppID: "wx-demo", Secret: "demo-secret", Templates: []wxsim.TemplateDef{
		{ID: "T-PRICE", Kind: "one_time", Keys: []string{"thing1", "amount2"}},
	}})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	sim.AddCredits("o-alice", "T-PRICE", 1)

	c, err := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: "wx-demo", Secret: "demo-secret"})
	if err != nil {
		panic(err)
	}
	msg := wechat.Message{ToUser: "o-alice", TemplateID: "T-PRICE", Page: "pages/item?id=7",
		Data: map[string]string{"thing1": "您关注的球鞋降价了", "amount2": "¥399.00"}}
	_, err = c.Send(context.Background(), msg)
	fmt.Println("first:", err, len(sim.Messages()))
	_, err = c.Send(context.Background(), msg)
	fmt.Println("second:", wechat.Code(err), wechat.ClassOf(err))

	msg.Data["amount2"] = "399 yuan"
	_, err = c.Send(context.Background(), msg)
	fmt.Println(err)
	// Output:
	// first: <nil> 1
	// second: 43101 grant_gone
	// wechat: send: errcode 47003: argument invalid! data.amount2.value invalid (content)
}

// Templates lists the account's templates with their keys and types.
func ExampleClient_Templates() {
	sim, _ := wxsim.New(wxsim.Config{AppID: "wx-demo", Secret: "demo-secret", Templates: []wxsim.TemplateDef{
		{ID: "T-ORDER", Title: "订单状态", Kind: "one_time", Keys: []string{"character_string1", "phrase2"}},
	}})
	srv := httptest.NewServer(sim.Handler())
	defer srv.Close()
	c, _ := wechat.New(wechat.Config{BaseURL: srv.URL, AppID: "wx-demo", Secret: "demo-secret"})
	ts, err := c.Templates(context.Background())
	if err != nil {
		panic(err)
	}
	for _, t := range ts {
		fmt.Println(t.ID, t.Title, t.Kind())
		for _, k := range t.Keys {
			fmt.Println(" ", k.Key, k.Type, k.Index)
		}
	}
	// Output:
	// T-ORDER 订单状态 one_time
	//   character_string1 character_string 1
	//   phrase2 phrase 2
}
