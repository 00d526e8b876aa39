package reliability

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/store"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// pushReceiver is the message-push URL: it checks the signature and
// stores subscribe_msg_sent_event deliveries.
func pushReceiver(t *testing.T, db *store.DB) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if !wechat.VerifyPushSignature(pushToken, q.Get("signature"), q.Get("timestamp"), q.Get("nonce")) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(io.LimitReader(r.Body, wechat.MaxPushBody))
		ev, err := wechat.ParsePush(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var ds []store.Delivery
		for _, it := range ev.Items {
			ds = append(ds, store.Delivery{MsgID: it.MsgID, OpenID: ev.OpenID, TemplateID: it.TemplateID, ErrCode: it.ErrorCode, Status: it.ErrorStatus, SentAt: ev.CreateTime})
		}
		if _, err := db.RecordDeliveries(r.Context(), time.Now(), ds); err != nil {
			t.Logf("record deliveries: %v", err)
			http.Error(w, "store", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "success")
	})
}
