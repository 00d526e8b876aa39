package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat"
)

// baselineRun resets the store, starts a simulator with latency and runs
// the baseline against it for Config.Baseline.
func (r *runner) baselineRun(ctx context.Context, n int, lat time.Duration) error {
	r.logf("baseline at latency %v for %v", lat, r.cfg.Baseline)
	if err := r.reset(ctx); err != nil {
		return err
	}
	s, err := r.startSim(ctx, lat)
	if err != nil {
		return err
	}
	client, err := wechat.New(wechat.Config{BaseURL: s.base, AppID: appID, Secret: appSecret, Timeout: 10 * time.Second})
	if err != nil {
		_, _ = s.stop()
		return fmt.Errorf("bench: baseline: %w", err)
	}
	cpu0, db0, st0, sim0 := selfCPU(), serverCPU(r.dbPID), r.dbStatus(ctx), serverCPU(s.cmd.Process.Pid)
	br, err := Baseline(ctx, r.db, client, r.camp.Template.ID, r.cfg.Baseline)
	m := measure{Wall: br.Wall, CPU: selfCPU() - cpu0, DB: r.dbStatus(ctx).sub(st0), SimCPU: serverCPU(s.cmd.Process.Pid) - sim0}
	if d := serverCPU(r.dbPID); d > 0 {
		m.DBCPU = d - db0
	}
	if err != nil {
		_, _ = s.stop()
		return err
	}
	_, _, st, verr := verifySim(ctx, s.base)
	r.check(fmt.Sprintf("baseline %d @%v", n, lat), verr == nil && st.Sends == int64(br.Sent) && br.Failed == 0,
		"sent %d (simulator: %d), %d failed, %d grants looked at (%v)", br.Sent, st.Sends, br.Failed, br.Looked, verr)
	if _, err := s.stop(); err != nil {
		return err
	}
	r.add(Row{Phase: "baseline", N: n, Latency: lat, Concurrency: 1, Count: br.Sent, Unit: "msgs/s", P50: br.P50, P99: br.P99,
		SimCPU: m.SimCPU, Note: fmt.Sprintf("%d grants looked at in %s", br.Looked, br.Wall.Round(time.Millisecond))}, m)
	return nil
}

// BaselineResult is what Baseline did.
type BaselineResult struct {
	Looked, Sent, Failed int
	Wall                 time.Duration
	P50, P99             time.Duration // send-call latency
}

// Baseline is the loop a team would write from WeChat's samples, the
// reference the engine is measured against: page the template's active
// grants, and for each grant in turn SELECT its product, check the price
// and the stock, send (one request in flight, the same wechat client) and
// UPDATE the grant as used. It stops after d or when the grants run out.
func Baseline(ctx context.Context, db *sql.DB, client *wechat.Client, templateID string, d time.Duration) (BaselineResult, error) {
	var res BaselineResult
	var lat []time.Duration
	start := time.Now()
	deadline := start.Add(d)
	var after int64
	type grant struct {
		id            int64
		openid, bizNo string
		vars          sql.NullString
	}
walk:
	for time.Now().Before(deadline) {
		rows, err := db.QueryContext(ctx, "SELECT id, openid, biz_no, vars FROM grants WHERE template_id = ? AND status = 'active' AND id > ? ORDER BY id LIMIT 1000", templateID, after)
		if err != nil {
			return res, fmt.Errorf("bench: baseline: list grants: %w", err)
		}
		var page []grant
		for rows.Next() {
			var g grant
			if err := rows.Scan(&g.id, &g.openid, &g.bizNo, &g.vars); err != nil {
				rows.Close()
				return res, fmt.Errorf("bench: baseline: list grants: %w", err)
			}
			page = append(page, g)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("bench: baseline: list grants: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, g := range page {
			if !time.Now().Before(deadline) {
				break walk
			}
			after = g.id
			res.Looked++
			var name string
			var price float64
			var stock int
			err := db.QueryRowContext(ctx, "SELECT name, price, stock FROM products WHERE id = ?", g.bizNo).Scan(&name, &price, &stock)
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("bench: baseline: product: %w", err)
			}
			var vars struct {
				SavedPrice string `json:"saved_price"`
			}
			if g.vars.Valid {
				_ = json.Unmarshal([]byte(g.vars.String), &vars)
			}
			saved, err := strconv.ParseFloat(vars.SavedPrice, 64)
			if err != nil || !(price < saved) || stock <= 0 {
				continue
			}
			if len([]rune(name)) > 20 {
				name = string([]rune(name)[:19]) + "…"
			}
			t0 := time.Now()
			_, err = client.Send(ctx, wechat.Message{ToUser: g.openid, TemplateID: templateID, Page: "pages/goods/detail?id=" + g.bizNo,
				Data:  map[string]string{"thing1": name, "amount2": fmt.Sprintf("¥%.2f", price), "amount3": fmt.Sprintf("¥%.2f", saved), "thing4": "降价了，快来看看"},
				State: "formal", Lang: "zh_CN"})
			lat = append(lat, time.Since(t0))
			if err != nil {
				res.Failed++
				continue
			}
			res.Sent++
			if _, err := db.ExecContext(ctx, "UPDATE grants SET status = 'consumed', consumed_at = NOW(6) WHERE id = ?", g.id); err != nil {
				return res, fmt.Errorf("bench: baseline: mark used: %w", err)
			}
		}
	}
	res.Wall = time.Since(start)
	if len(lat) > 0 {
		slices.Sort(lat)
		res.P50 = lat[(len(lat)-1)/2]
		res.P99 = lat[(len(lat)*99+99)/100-1]
	}
	return res, nil
}
