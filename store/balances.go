package store

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/wxcampaign/wxcampaign"
)

// Balance is what the ledger knows of one user and one template.
type Balance = wxcampaign.Balance

// Balances returns, per template the user openid ever answered, the
// credits available, the long-term grant state, the last message sent and
// when the user last accepted, rejected and banned it, sorted by template
// id. Rejects and bans come from subscription results, settings changes and
// popup events; accepts from the grants (a popup accept creates no credit,
// but it counts as the latest accept). now decides which reservations are
// live. An empty openid is a wxcampaign.EINVALID error; an unknown user has
// no balances (an empty slice).
func (db *DB) Balances(ctx context.Context, openid string, now time.Time) ([]Balance, error) {
	if openid == "" {
		return nil, wxcampaign.Errorf(wxcampaign.EINVALID, "openid is required")
	}
	by := map[string]*Balance{}
	get := func(tmpl string) *Balance {
		b := by[tmpl]
		if b == nil {
			b = &Balance{TemplateID: tmpl, Kind: wxcampaign.OneTime}
			by[tmpl] = b
		}
		return b
	}
	later := func(t *time.Time, v time.Time) {
		if v.After(*t) {
			*t = v
		}
	}
	err := db.retry(ctx, "balances", func() error {
		clear(by)
		var grants []struct {
			TemplateID string `db:"template_id"`
			Kind       string `db:"kind"`
			Status     string `db:"status"`
			N          int    `db:"n"`
			Reserved   int    `db:"reserved"`
			Last       dbTime `db:"last"`
		}
		// In flight: a send_log row holds the grant (inflight_grant, unique).
		if err := db.r.SelectContext(ctx, &grants, `SELECT g.template_id, g.kind, g.status, COUNT(*) AS n,
  COUNT(f.inflight_grant) AS reserved, MAX(g.granted_at) AS last
FROM grants g
LEFT JOIN send_log f ON f.inflight_grant = g.id AND g.status = 'active'
WHERE g.openid = ? GROUP BY g.template_id, g.kind, g.status`, openid); err != nil {
			return fmt.Errorf("grants: %w", err)
		}
		for _, g := range grants {
			b := get(g.TemplateID)
			later(&b.LastAcceptAt, g.Last.Time)
			if g.Kind == string(wxcampaign.LongTerm) {
				b.Kind = wxcampaign.LongTerm
				switch {
				case g.Status == StatusActive:
					b.LongTerm = wxcampaign.LongTermActive
				case b.LongTerm == "":
					b.LongTerm = wxcampaign.LongTermRevoked
				}
				continue
			}
			switch g.Status {
			case StatusActive:
				b.Credits += g.N
				b.Reserved += g.Reserved
			case StatusConsumed:
				b.Consumed += g.N
			}
		}
		var events []struct {
			TemplateID string `db:"template_id"`
			Result     string `db:"result"`
			Last       dbTime `db:"last"`
		}
		if err := db.r.SelectContext(ctx, &events, `SELECT template_id, result, MAX(at) AS last FROM subscription_events
WHERE openid = ? GROUP BY template_id, result`, openid); err != nil {
			return fmt.Errorf("subscription events: %w", err)
		}
		var popups []struct {
			TemplateID string `db:"template_id"`
			Result     string `db:"status"`
			Last       dbTime `db:"last"`
		}
		if err := db.r.SelectContext(ctx, &popups, `SELECT template_id, status, MAX(at) AS last FROM popup_events
WHERE openid = ? GROUP BY template_id, status`, openid); err != nil {
			return fmt.Errorf("popup events: %w", err)
		}
		for _, p := range popups {
			events = append(events, struct {
				TemplateID string `db:"template_id"`
				Result     string `db:"result"`
				Last       dbTime `db:"last"`
			}{p.TemplateID, wxcampaign.PopupResult(p.Result), p.Last})
		}
		for _, e := range events {
			switch e.Result {
			case wxcampaign.ResultReject:
				later(&get(e.TemplateID).RejectedAt, e.Last.Time)
			case wxcampaign.ResultBan:
				later(&get(e.TemplateID).BannedAt, e.Last.Time)
			case wxcampaign.ResultAccept:
				later(&get(e.TemplateID).LastAcceptAt, e.Last.Time)
			case wxcampaign.ResultFilter:
				get(e.TemplateID)
			}
		}
		var sends []struct {
			TemplateID string `db:"template_id"`
			Campaign   string `db:"campaign"`
			Status     string `db:"status"`
			MsgID      int64  `db:"msgid"`
			Started    dbTime `db:"started_at"`
			Finished   dbTime `db:"finished_at"`
		}
		if err := db.r.SelectContext(ctx, &sends, `SELECT s.template_id, s.campaign, s.status, s.msgid, s.started_at, s.finished_at FROM send_log s
WHERE s.openid = ? AND s.status IN ('sent', 'unknown') AND NOT EXISTS (SELECT 1 FROM send_log l
  WHERE l.openid = s.openid AND l.template_id = s.template_id AND l.status IN ('sent', 'unknown')
    AND (l.started_at > s.started_at OR l.started_at = s.started_at AND l.id > s.id))`, openid); err != nil {
			return fmt.Errorf("send log: %w", err)
		}
		for _, s := range sends {
			at := s.Finished.Time
			if at.IsZero() {
				at = s.Started.Time
			}
			get(s.TemplateID).LastSent = &wxcampaign.LastSend{Campaign: s.Campaign, Status: s.Status, MsgID: s.MsgID, At: at}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Balance, 0, len(by))
	for _, b := range by {
		out = append(out, *b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TemplateID < out[j].TemplateID })
	return out, nil
}

// RecordPopups stores popup events, idempotent by (openid, template,
// CreateTime): a repeated push stores nothing. It returns how many were
// new. They create no grants. An event without an OpenID, a TemplateID or a
// Status is a wxcampaign.EINVALID error and nothing is stored.
func (db *DB) RecordPopups(ctx context.Context, receivedAt time.Time, ps []wxcampaign.PopupEvent) (int, error) {
	for i, p := range ps {
		if p.OpenID == "" || p.TemplateID == "" || p.Status == "" {
			return 0, fmt.Errorf("store: record popups: %w", wxcampaign.Errorf(wxcampaign.EINVALID,
				"popup event %d: openid, template id and status are required", i))
		}
	}
	if len(ps) == 0 {
		return 0, nil
	}
	var n int64
	err := db.tx(ctx, "record popups", func(tx *sqlx.Tx) error {
		n = 0
		for _, c := range chunks(len(ps), 500) {
			var q strings.Builder
			q.WriteString(db.insertIgnore() + " INTO popup_events (openid, template_id, status, popup_scene, at, received_at) VALUES ")
			args := make([]any, 0, 6*(c[1]-c[0]))
			for i, p := range ps[c[0]:c[1]] {
				if i > 0 {
					q.WriteByte(',')
				}
				q.WriteString("(?,?,?,?,?,?)")
				args = append(args, p.OpenID, p.TemplateID, truncate(p.Status, 32), truncate(p.PopupScene, 32), db.tv(p.At), db.tv(receivedAt))
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

// ActiveCredits returns, for each of openids that has any, the number of
// active one-time grants (credits) of templateID, reserved ones included:
// what a campaign that must leave a user's last credits (reserve) compares
// against. It reads grants_openid, 1,000 openids per statement.
func (db *DB) ActiveCredits(ctx context.Context, templateID string, openids []string) (map[string]int, error) {
	out := make(map[string]int)
	ids := slices.Compact(slices.Sorted(slices.Values(openids)))
	err := db.retry(ctx, "active credits", func() error {
		clear(out)
		for _, c := range chunks(len(ids), maxIDsPerStatement) {
			part := ids[c[0]:c[1]]
			args := make([]any, 0, len(part)+1)
			args = append(args, templateID)
			for _, id := range part {
				args = append(args, id)
			}
			var rows []struct {
				OpenID string `db:"openid"`
				N      int    `db:"n"`
			}
			if err := db.r.SelectContext(ctx, &rows, "SELECT openid, COUNT(*) AS n FROM grants WHERE template_id = ? AND openid IN "+in(len(part))+
				" AND status = 'active' AND kind = 'one_time' GROUP BY openid", args...); err != nil {
				return err
			}
			for _, r := range rows {
				out[r.OpenID] = r.N
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
