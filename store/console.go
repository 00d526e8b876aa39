package store

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"
)

// CampaignPause is an operator's pause of one campaign: every replica's
// scheduler skips the campaign's ticks while it stands.
type CampaignPause struct {
	Campaign string    `json:"campaign"`
	PausedBy string    `json:"paused_by"`
	PausedAt time.Time `json:"paused_at"`
	Reason   string    `json:"reason"`
}

type pauseRow struct {
	Campaign string `db:"campaign"`
	PausedBy string `db:"paused_by"`
	PausedAt dbTime `db:"paused_at"`
	Reason   string `db:"reason"`
}

func (r pauseRow) pause() CampaignPause {
	return CampaignPause{Campaign: r.Campaign, PausedBy: r.PausedBy, PausedAt: r.PausedAt.Time, Reason: r.Reason}
}

// AuditEntry is one operator action.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // pause, resume, retry, clear_quota_pause, login
	Target string    `json:"target"`
	Detail string    `json:"detail,omitempty"`
}

type auditRow struct {
	ID     int64  `db:"id"`
	At     dbTime `db:"at"`
	Actor  string `db:"actor"`
	Action string `db:"action"`
	Target string `db:"target"`
	Detail string `db:"detail"`
}

func (db *DB) audit(ctx context.Context, tx *sqlx.Tx, e AuditEntry) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO audit (at, actor, action, target, detail) VALUES (?,?,?,?,?)",
		db.tv(e.At), truncate(e.Actor, 128), truncate(e.Action, 32), truncate(e.Target, 255), truncate(e.Detail, 1024))
	return err
}

// AddAudit records an operator action.
func (db *DB) AddAudit(ctx context.Context, e AuditEntry) error {
	return db.tx(ctx, "add audit", func(tx *sqlx.Tx) error { return db.audit(ctx, tx, e) })
}

// PauseCampaign pauses campaign for every replica, recording who and when
// (and the action in the audit table). changed is false when the campaign
// was already paused (the first pause is kept).
func (db *DB) PauseCampaign(ctx context.Context, campaign, by, reason string, at time.Time) (changed bool, err error) {
	err = db.tx(ctx, "pause campaign", func(tx *sqlx.Tx) error {
		n, err := execN(ctx, tx, db.insertIgnore()+" INTO campaign_pauses (campaign, paused_by, paused_at, reason) VALUES (?,?,?,?)",
			campaign, truncate(by, 128), db.tv(at), truncate(reason, 255))
		if err != nil {
			return err
		}
		changed = n == 1
		detail := reason
		if !changed {
			detail = "already paused"
		}
		return db.audit(ctx, tx, AuditEntry{At: at, Actor: by, Action: "pause", Target: campaign, Detail: detail})
	})
	return changed, err
}

// ResumeCampaign lifts the pause of campaign (audited); changed is false
// when it was not paused.
func (db *DB) ResumeCampaign(ctx context.Context, campaign, by string, at time.Time) (changed bool, err error) {
	err = db.tx(ctx, "resume campaign", func(tx *sqlx.Tx) error {
		n, err := execN(ctx, tx, "DELETE FROM campaign_pauses WHERE campaign = ?", campaign)
		if err != nil {
			return err
		}
		changed = n == 1
		detail := ""
		if !changed {
			detail = "was not paused"
		}
		return db.audit(ctx, tx, AuditEntry{At: at, Actor: by, Action: "resume", Target: campaign, Detail: detail})
	})
	return changed, err
}

// CampaignPaused returns the pause of campaign; ok is false when it runs.
func (db *DB) CampaignPaused(ctx context.Context, campaign string) (p CampaignPause, ok bool, err error) {
	var r pauseRow
	err = db.retry(ctx, "campaign paused", func() error {
		return db.r.GetContext(ctx, &r, "SELECT campaign, paused_by, paused_at, reason FROM campaign_pauses WHERE campaign = ?", campaign)
	})
	if isNoRows(err) {
		return CampaignPause{}, false, nil
	}
	if err != nil {
		return CampaignPause{}, false, err
	}
	return r.pause(), true, nil
}

// CampaignPauses returns every paused campaign by name.
func (db *DB) CampaignPauses(ctx context.Context) (map[string]CampaignPause, error) {
	var rows []pauseRow
	err := db.retry(ctx, "campaign pauses", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, "SELECT campaign, paused_by, paused_at, reason FROM campaign_pauses")
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]CampaignPause, len(rows))
	for _, r := range rows {
		out[r.Campaign] = r.pause()
	}
	return out, nil
}

// ClearPause removes the shared pause key (e.g. the quota pause "quota:APPID"),
// audited; changed is false when there was none.
func (db *DB) ClearPause(ctx context.Context, key, by string, at time.Time) (changed bool, err error) {
	err = db.tx(ctx, "clear pause", func(tx *sqlx.Tx) error {
		n, err := execN(ctx, tx, "DELETE FROM pauses WHERE pause_key = ?", key)
		if err != nil {
			return err
		}
		changed = n == 1
		return db.audit(ctx, tx, AuditEntry{At: at, Actor: by, Action: "clear_pause", Target: key})
	})
	return changed, err
}

// AuditPage returns up to limit audit entries with an id below beforeID
// (0: from the newest), newest first.
func (db *DB) AuditPage(ctx context.Context, beforeID int64, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	q, args := "SELECT id, at, actor, action, target, detail FROM audit", []any{}
	if beforeID > 0 {
		q += " WHERE id < ?"
		args = append(args, beforeID)
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	var rows []auditRow
	err := db.retry(ctx, "audit page", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, q, args...)
	})
	if err != nil {
		return nil, err
	}
	out := make([]AuditEntry, len(rows))
	for i, r := range rows {
		out[i] = AuditEntry{ID: r.ID, At: r.At.Time, Actor: r.Actor, Action: r.Action, Target: r.Target, Detail: r.Detail}
	}
	return out, nil
}

// Received is one message a user received, as WeChat's delivery event
// (subscribe_msg_sent_event) reported it, with the campaign that sent it
// when the send log knows the msgid.
type Received struct {
	MsgID      int64     `json:"msgid" db:"msgid"`
	TemplateID string    `json:"template_id" db:"template_id"`
	Campaign   string    `json:"campaign" db:"campaign"`
	Status     string    `json:"status" db:"status"`
	ErrCode    int       `json:"errcode" db:"errcode"`
	SentAt     time.Time `json:"sent_at" db:"-"`
}

// ReceivedBy returns up to limit messages openid received since since, from
// any campaign, newest first. It reads the delivery events of the message
// push: without the push configured there are none.
func (db *DB) ReceivedBy(ctx context.Context, openid string, since time.Time, limit int) ([]Received, error) {
	if limit <= 0 {
		limit = 100
	}
	var rows []struct {
		Received
		At dbTime `db:"sent_at"`
	}
	err := db.retry(ctx, "received by", func() error {
		rows = rows[:0]
		return db.r.SelectContext(ctx, &rows, `SELECT d.msgid, d.template_id, COALESCE(MAX(s.campaign), '') AS campaign, d.status, d.errcode, d.sent_at
			FROM deliveries d LEFT JOIN send_log s ON s.msgid = d.msgid
			WHERE d.openid = ? AND d.sent_at >= ?
			GROUP BY d.msgid, d.template_id, d.status, d.errcode, d.sent_at
			ORDER BY d.sent_at DESC LIMIT ?`, openid, db.tv(since), limit)
	})
	if err != nil {
		return nil, err
	}
	out := make([]Received, len(rows))
	for i, r := range rows {
		out[i] = r.Received
		out[i].SentAt = r.At.Time
	}
	return out, nil
}
