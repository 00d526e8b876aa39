package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Delivery is one subscribe_msg_sent_event entry pushed by WeChat.
type Delivery = wxcampaign.Delivery

// RecordDeliveries stores delivery events, idempotent by msgid (a repeated
// push, or a msgid repeated within ds, changes nothing); it returns how
// many were new. receivedAt stamps the rows. A delivery without a positive
// MsgID, an OpenID or a TemplateID is a wxcampaign.EINVALID error and
// nothing is stored.
func (db *DB) RecordDeliveries(ctx context.Context, receivedAt time.Time, ds []Delivery) (int, error) {
	for i, d := range ds {
		if d.MsgID <= 0 || d.OpenID == "" || d.TemplateID == "" {
			return 0, fmt.Errorf("store: record deliveries: %w", wxcampaign.Errorf(wxcampaign.EINVALID,
				"delivery %d: msgid, openid and template id are required", i))
		}
	}
	if len(ds) == 0 {
		return 0, nil
	}
	var n int64
	err := db.tx(ctx, "record deliveries", func(tx *sqlx.Tx) error {
		n = 0
		for _, c := range chunks(len(ds), 500) {
			var q strings.Builder
			q.WriteString(db.insertIgnore() + " INTO deliveries (msgid, openid, template_id, errcode, status, sent_at, received_at) VALUES ")
			args := make([]any, 0, 7*(c[1]-c[0]))
			for i, d := range ds[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?,?,?)")
				args = append(args, d.MsgID, d.OpenID, d.TemplateID, d.ErrCode, truncate(d.Status, 255), db.tv(d.SentAt), db.tv(receivedAt))
			}
			res, err := tx.ExecContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

// MatchDelivery returns the msgid of a successful (ErrCode 0) delivery of
// templateID to openid sent at or after since whose msgid no send_log row
// holds yet, the oldest first (by sent_at, then msgid), or 0 when there is
// none. WeChat's CreateTime has whole seconds and the clocks differ: pass
// since with a margin (e.g. the attempt's StartedAt minus a few seconds).
// Recording the msgid on the send_log row (FinishSends) takes it out of
// later matches.
func (db *DB) MatchDelivery(ctx context.Context, openid, templateID string, since time.Time) (int64, error) {
	var ids []int64
	err := db.retry(ctx, "match delivery", func() error {
		ids = ids[:0]
		return db.r.SelectContext(ctx, &ids, `SELECT d.msgid FROM deliveries d
WHERE d.openid = ? AND d.template_id = ? AND d.sent_at >= ? AND d.errcode = 0
  AND NOT EXISTS (SELECT 1 FROM send_log s WHERE s.msgid = d.msgid)
ORDER BY d.sent_at, d.msgid LIMIT 1`, openid, templateID, db.tv(since))
	})
	if err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	return ids[0], nil
}
