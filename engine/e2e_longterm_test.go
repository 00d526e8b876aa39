package engine_test

import (
	"fmt"
	"testing"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/store/storetest"
	"github.com/wxcampaign/wxcampaign/wechat/wxsim"
)

// TestE2ELongTerm: an appointment reminder on a long-term template. A
// long-term grant is never used up: it is sent once per appointment
// (repeat: once), stays active after a delivered message and after one that
// may have arrived, and only a revocation (43101) ends it.
func TestE2ELongTerm(t *testing.T) {
	eachDriver(t, func(t *testing.T, nc storetest.NamedConfig) {
		c := parseCampaign(t, `name: appointment-reminder
schedule: "*/10 * * * *"
timezone: Asia/Shanghai
template:
  id: tplAppointment
  kind: long_term
facts:
  appointment:
    query: SELECT id, service, start_at FROM appointments WHERE id IN (:keys)
    key: grant.biz_no
    column: id
when: appointment != nil && appointment.start_at > now && appointment.start_at - now <= duration("1h")
data:
  thing1: appointment.service
  time2: datetime(appointment.start_at)
`)
		tpl := simTemplate(c)
		w := newWorld(t, nc, tpl)
		w.exec(`CREATE TABLE appointments (id VARCHAR(64) PRIMARY KEY, service VARCHAR(100), start_at DATETIME)`)
		grants := map[string]int64{}
		for i, start := range []time.Time{at(3, 10, 30), at(3, 10, 50), at(3, 12, 0)} {
			id, openid := fmt.Sprintf("m%d", i), fmt.Sprintf("oLong%d", i)
			w.exec(`INSERT INTO appointments VALUES (?,?,?)`, id, "牙齿清洁", sqlTime(start))
			if _, err := w.db.RecordSubscription(w.ctx, wx.SubscriptionResult{OpenID: openid, Scene: "booked", BusNo: id,
				AgreeTemplateIDs: []string{c.Template.ID}, LongTermTemplateIDs: []string{c.Template.ID}, RequestID: "lt-" + id}, at(1, 12, 0)); err != nil {
				t.Fatal(err)
			}
			grants[openid] = w.maxGrantID()
		}
		// 10:00: the 10:30 and 10:50 appointments are within the hour.
		r := w.mustRun(c, at(3, 10, 0))
		equalSets(t, "first reminders", w.recipients(c.Template.ID), []string{"oLong0", "oLong1"})
		if r.sum.Counts[wx.Sent] != 2 {
			t.Fatalf("first run: %+v", r.sum)
		}
		// The long-term grants stay available after their message.
		if got := len(w.available(c.Template.ID)); got != 3 {
			t.Fatalf("available after sending = %d, want 3 (long-term grants are not used up)", got)
		}
		// 10:10: the same appointments are still within the hour, but each
		// grant gets this campaign's message once.
		r = w.mustRun(c, at(3, 10, 10))
		if r.sum.Counts[wx.Sent] != 0 || r.sum.Counts[wx.Skipped] != 3 {
			t.Fatalf("second run sent again: %+v", r.sum)
		}
		// 11:10: the 12:00 appointment's reminder; its reply is withheld
		// past the client timeout: outcome unknown, the grant stays.
		w.sim.SetFaults(wxsim.Faults{WithholdAfterDeliver: 1, WithholdFor: 2 * w.timeout})
		r = w.mustRun(c, at(3, 11, 10))
		w.sim.SetFaults(wxsim.Faults{})
		if r.sum.Counts[wx.Unknown] != 1 {
			t.Fatalf("withheld reply: %+v", r.sum)
		}
		if got := len(w.available(c.Template.ID)); got != 3 {
			t.Fatalf("available after an unknown send = %d, want 3", got)
		}
		if got := len(w.sim.Messages()); got != 3 {
			t.Fatalf("messages = %d, want 3", got)
		}
		noDuplicates(t, w.sim)
	})
}
