package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/wxcampaign/wxcampaign"
)

// SubscriptionStat counts what users chose for one template on one day.
type SubscriptionStat = wxcampaign.SubscriptionStat

// changePrefix starts the request ids of the rejects the push endpoint
// records from subscribe_msg_change_event (api.changeRequestID).
const changePrefix = "push:change:"

// hourExpr is the dialect's "YYYY-MM-DD HH" of a stored UTC time column.
func (db *DB) hourExpr(col string) string {
	if db.sqlite() {
		return "substr(" + col + ", 1, 13)"
	}
	return "DATE_FORMAT(" + col + ", '%Y-%m-%d %H')"
}

// SubscriptionStats counts accepts, rejects, bans and filters per day (in
// loc), source, scene and template for choices made in [from, to):
// accepts are the grants recorded (one per accepted template of a result),
// rejects, bans and filters the subscription events; rejects recorded from
// settings changes have the source wxcampaign.SourceChange; popup events
// (wxcampaign.SourcePopup) are counted apart, since the backend usually
// reports the same choices as results. Rows are summed per UTC hour in the
// database and the hours assigned to the day of loc they start in: exact
// for every zone whose offset is a whole number of hours (Asia/Shanghai).
// Rows are sorted by day, source, scene and template.
func (db *DB) SubscriptionStats(ctx context.Context, from, to time.Time, loc *time.Location) ([]SubscriptionStat, error) {
	if loc == nil {
		loc = time.UTC
	}
	if !to.After(from) {
		return nil, wxcampaign.Errorf(wxcampaign.EINVALID, "the range is empty: to (%s) is not after from (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	type key struct{ day, source, scene, tmpl string }
	by := map[key]*SubscriptionStat{}
	add := func(hour, source, scene, tmpl, result string, n int) error {
		t, err := time.ParseInLocation("2006-01-02 15", hour, time.UTC)
		if err != nil {
			return fmt.Errorf("hour %q: %w", hour, err)
		}
		k := key{t.In(loc).Format(time.DateOnly), source, scene, tmpl}
		s := by[k]
		if s == nil {
			s = &SubscriptionStat{Day: k.day, Source: source, Scene: scene, TemplateID: tmpl}
			by[k] = s
		}
		switch result {
		case wxcampaign.ResultAccept:
			s.Accept += n
		case wxcampaign.ResultReject:
			s.Reject += n
		case wxcampaign.ResultBan:
			s.Ban += n
		case wxcampaign.ResultFilter:
			s.Filter += n
		}
		return nil
	}
	type row struct {
		Hour   string `db:"hour"`
		Change bool   `db:"change"`
		Scene  string `db:"scene"`
		Tmpl   string `db:"template_id"`
		Result string `db:"result"`
		N      int    `db:"n"`
	}
	fromV, toV := db.tv(from), db.tv(to)
	err := db.retry(ctx, "subscription stats", func() error {
		clear(by)
		var rows []row
		if err := db.r.SelectContext(ctx, &rows, "SELECT "+db.hourExpr("granted_at")+` AS hour, 0 AS `+"`change`"+`, scene, template_id, 'accept' AS result, COUNT(*) AS n
FROM grants WHERE granted_at >= ? AND granted_at < ? GROUP BY 1, 3, 4`, fromV, toV); err != nil {
			return fmt.Errorf("grants: %w", err)
		}
		var events []row
		if err := db.r.SelectContext(ctx, &events, "SELECT "+db.hourExpr("at")+` AS hour, CASE WHEN request_id LIKE '`+changePrefix+`%' THEN 1 ELSE 0 END AS `+"`change`"+`, scene, template_id, result, COUNT(*) AS n
FROM subscription_events WHERE at >= ? AND at < ? GROUP BY 1, 2, 3, 4, 5`, fromV, toV); err != nil {
			return fmt.Errorf("subscription events: %w", err)
		}
		for _, r := range append(rows, events...) {
			source := wxcampaign.SourceResult
			if r.Change {
				source = wxcampaign.SourceChange
			}
			if err := add(r.Hour, source, r.Scene, r.Tmpl, r.Result, r.N); err != nil {
				return err
			}
		}
		var popups []row
		if err := db.r.SelectContext(ctx, &popups, "SELECT "+db.hourExpr("at")+` AS hour, 0 AS `+"`change`"+`, popup_scene AS scene, template_id, status AS result, COUNT(*) AS n
FROM popup_events WHERE at >= ? AND at < ? GROUP BY 1, 3, 4, 5`, fromV, toV); err != nil {
			return fmt.Errorf("popup events: %w", err)
		}
		for _, r := range popups {
			if err := add(r.Hour, wxcampaign.SourcePopup, "popup:"+r.Scene, r.Tmpl, wxcampaign.PopupResult(r.Result), r.N); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]SubscriptionStat, 0, len(by))
	for _, s := range by {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return strings.Join([]string{a.Day, a.Source, a.Scene, a.TemplateID}, "\x00") < strings.Join([]string{b.Day, b.Source, b.Scene, b.TemplateID}, "\x00")
	})
	return out, nil
}
