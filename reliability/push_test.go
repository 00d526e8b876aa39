package reliability

import (
	"net/http"
	"testing"

	"github.com/wxcampaign/wxcampaign/api"
	"github.com/wxcampaign/wxcampaign/campaigns"
	"github.com/wxcampaign/wxcampaign/store"
)

// pushReceiver is the product's HTTP API serving WeChat's message push
// (/wechat/push): it checks the signature and stores the delivery events.
func pushReceiver(t *testing.T, db *store.DB) http.Handler {
	srv, err := api.New(api.Config{Tokens: []string{"reliability-api-token"}, PushToken: pushToken},
		api.Deps{Subs: db, Catalog: campaigns.NewCatalog(nil), Deliveries: db})
	if err != nil {
		t.Fatal(err)
	}
	return srv.Handler()
}
