package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/wxcampaign/wxcampaign"
	"github.com/wxcampaign/wxcampaign/wechat"
)

// PushPath is where the API serves WeChat's message push when
// Config.PushToken is set: the URL to enter in the mini program console.
const PushPath = "/wechat/push"

// MaxPushSkew is how far the timestamp of a push may be from the server
// clock, either way; an older or newer one is refused as a replay.
const MaxPushSkew = 5 * time.Minute

// safeModeMessage is the reason given for an encrypted (safe mode) push.
const safeModeMessage = "safe mode not supported: use plaintext"

// Deliveries records the delivery events WeChat pushes; the store
// implements it.
type Deliveries interface {
	// RecordDeliveries stores ds as received at receivedAt, idempotent by
	// msgid, and returns how many were new.
	RecordDeliveries(ctx context.Context, receivedAt time.Time, ds []wxcampaign.Delivery) (int, error)
}

// PushStats counts what the message push endpoint did since the server was
// built. Requests are counted once each; items once per List entry.
type PushStats struct {
	Verified     int64 // GET URL verifications answered
	Accepted     int64 // POSTs answered "success" (recorded or ignored)
	Unauthorized int64 // bad signature, bad or stale timestamp
	Invalid      int64 // bodies refused with 400 or 413 (garbage, safe mode, too large)
	Failed       int64 // POSTs answered 500 (store errors): WeChat retries them

	Delivered        int64 // sent-event entries stored for the first time
	DuplicateSent    int64 // sent-event entries already stored (a repeated push)
	Rejects          int64 // change-event rejects recorded (long-term grants revoked)
	DuplicateRejects int64 // change-event rejects already recorded (a repeated push)
	ChangeIgnored    int64 // change-event entries with a status other than reject
	Popups           int64 // popup-event entries (recorded with Deps.Popups for balances and stats, never as grants)
	OtherEvents      int64 // pushes of any other event or message type (ignored)
}

// pushCounters are the live counters behind PushStats.
type pushCounters struct {
	verified, accepted, unauthorized, invalid, failed      atomic.Int64
	delivered, dupSent, rejects, dupRejects, changeIgnored atomic.Int64
	popups, other                                          atomic.Int64
}

// PushStats returns the message push counters.
func (s *Server) PushStats() PushStats {
	c := &s.push
	return PushStats{
		Verified: c.verified.Load(), Accepted: c.accepted.Load(), Unauthorized: c.unauthorized.Load(),
		Invalid: c.invalid.Load(), Failed: c.failed.Load(),
		Delivered: c.delivered.Load(), DuplicateSent: c.dupSent.Load(), Rejects: c.rejects.Load(),
		DuplicateRejects: c.dupRejects.Load(), ChangeIgnored: c.changeIgnored.Load(),
		Popups: c.popups.Load(), OtherEvents: c.other.Load(),
	}
}

// registerPushMetrics exposes the push counters on reg as
// wxcampaign_push_requests_total{result} and
// wxcampaign_push_items_total{event,outcome}.
func (s *Server) registerPushMetrics(reg prometheus.Registerer) error {
	c := &s.push
	counter := func(name, help string, labels prometheus.Labels, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(v.Load()) })
	}
	const (
		reqName  = "wxcampaign_push_requests_total"
		reqHelp  = "Requests to the WeChat message push endpoint, by result."
		itemName = "wxcampaign_push_items_total"
		itemHelp = "Entries of WeChat message push events, by event and outcome."
	)
	cs := []prometheus.Collector{
		counter(reqName, reqHelp, prometheus.Labels{"result": "verified"}, &c.verified),
		counter(reqName, reqHelp, prometheus.Labels{"result": "accepted"}, &c.accepted),
		counter(reqName, reqHelp, prometheus.Labels{"result": "unauthorized"}, &c.unauthorized),
		counter(reqName, reqHelp, prometheus.Labels{"result": "invalid"}, &c.invalid),
		counter(reqName, reqHelp, prometheus.Labels{"result": "failed"}, &c.failed),
		counter(itemName, itemHelp, prometheus.Labels{"event": "sent", "outcome": "recorded"}, &c.delivered),
		counter(itemName, itemHelp, prometheus.Labels{"event": "sent", "outcome": "duplicate"}, &c.dupSent),
		counter(itemName, itemHelp, prometheus.Labels{"event": "change", "outcome": "recorded"}, &c.rejects),
		counter(itemName, itemHelp, prometheus.Labels{"event": "change", "outcome": "duplicate"}, &c.dupRejects),
		counter(itemName, itemHelp, prometheus.Labels{"event": "change", "outcome": "ignored"}, &c.changeIgnored),
		counter(itemName, itemHelp, prometheus.Labels{"event": "popup", "outcome": "ignored"}, &c.popups),
		counter(itemName, itemHelp, prometheus.Labels{"event": "other", "outcome": "ignored"}, &c.other),
	}
	for _, col := range cs {
		if err := reg.Register(col); err != nil {
			return err
		}
	}
	return nil
}

// pushFail writes a push error as JSON and counts it. Unlike writeError it
// sends no WWW-Authenticate header: the push is authenticated by its
// signature, not by a bearer token.
func (s *Server) pushFail(w http.ResponseWriter, r *http.Request, err error) {
	code := wxcampaign.ErrorCode(err)
	status := statusOf(code)
	switch {
	case status == http.StatusUnauthorized:
		s.push.unauthorized.Add(1)
		s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "reason": wxcampaign.ErrorMessage(err)}).Warn("api: push refused")
	case status >= 500:
		s.push.failed.Add(1)
		s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "error": redact(err.Error())}).Error("api: push")
	default:
		s.push.invalid.Add(1)
		s.log.WithFields(logrus.Fields{"method": r.Method, "path": r.URL.Path, "reason": wxcampaign.ErrorMessage(err)}).Warn("api: push refused")
	}
	msg := wxcampaign.ErrorMessage(err)
	if code == wxcampaign.EINTERNAL {
		msg = "internal error"
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeText writes a plain-text answer, as WeChat expects from a push URL.
func writeText(w http.ResponseWriter, status int, text string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// checkPush authenticates a push request: the signature over the token,
// timestamp and nonce, and a timestamp within MaxPushSkew of the clock.
func (s *Server) checkPush(q url.Values) error {
	ts := q.Get("timestamp")
	if !wechat.VerifyPushSignature(s.cfg.PushToken, q.Get("signature"), ts, q.Get("nonce")) {
		return wxcampaign.Errorf(wxcampaign.EUNAUTHORIZED, "missing or invalid push signature")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 {
		return wxcampaign.Errorf(wxcampaign.EUNAUTHORIZED, "timestamp is not a unix time")
	}
	if skew := s.cfg.Now().Sub(time.Unix(sec, 0)); skew > MaxPushSkew || skew < -MaxPushSkew {
		return wxcampaign.Errorf(wxcampaign.EUNAUTHORIZED, "timestamp is more than %v off the server clock (replayed or clock skew)", MaxPushSkew)
	}
	return nil
}

// handlePushVerify answers WeChat's URL verification: a signed GET whose
// echostr is echoed back as plain text.
func (s *Server) handlePushVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := s.checkPush(q); err != nil {
		s.pushFail(w, r, err)
		return
	}
	echo := q.Get("echostr")
	if echo == "" {
		s.pushFail(w, r, wxcampaign.Errorf(wxcampaign.EINVALID, "echostr is required"))
		return
	}
	s.push.verified.Add(1)
	writeText(w, http.StatusOK, echo)
}

// handlePush receives one pushed message or event.
func (s *Server) handlePush(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := s.checkPush(q); err != nil {
		s.pushFail(w, r, err)
		return
	}
	if q.Get("encrypt_type") != "" && !strings.EqualFold(q.Get("encrypt_type"), "raw") {
		s.pushFail(w, r, wxcampaign.Errorf(wxcampaign.EINVALID, safeModeMessage))
		return
	}
	body, err := readBody(w, r, s.cfg.MaxBody)
	if err != nil {
		if wxcampaign.ErrorCode(err) != wxcampaign.ETOOLARGE {
			err = wxcampaign.Errorf(wxcampaign.EINVALID, "reading the request body failed")
		}
		s.pushFail(w, r, err)
		return
	}
	ev, err := wechat.ParsePush(body)
	switch {
	case errors.Is(err, wechat.ErrPushEncrypted):
		s.pushFail(w, r, wxcampaign.Errorf(wxcampaign.EINVALID, safeModeMessage))
		return
	case err != nil:
		s.pushFail(w, r, wxcampaign.Errorf(wxcampaign.EINVALID, "invalid push: %s", strings.TrimPrefix(err.Error(), "wechat: parse push: ")))
		return
	}
	if err := s.handleEvent(r.Context(), ev); err != nil {
		s.pushFail(w, r, err)
		return
	}
	s.push.accepted.Add(1)
	writeText(w, http.StatusOK, "success")
}

// Bounds of the values of a push the store keeps (the columns are 128
// bytes) and of its CreateTime (a MySQL DATETIME).
const maxPushID = 128

var (
	minPushTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxPushTime = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
)

// validPushID reports whether s is a storable openid or template id.
func validPushID(s string) bool { return s != "" && len(s) <= maxPushID && utf8.ValidString(s) }

// handleEvent acts on a parsed push. Errors are application errors:
// EINVALID for an event that can never be stored (400), anything else from
// the store (500, so that WeChat retries).
func (s *Server) handleEvent(ctx context.Context, ev wechat.PushEvent) error {
	switch ev.Event {
	case wechat.EventSubscribeSent, wechat.EventSubscribeChange, wechat.EventSubscribePopup:
	default:
		s.push.other.Add(1)
		s.log.WithFields(logrus.Fields{"msg_type": clipLog(ev.MsgType), "event": clipLog(ev.Event)}).Debug("api: push ignored")
		return nil
	}
	if !validPushID(ev.OpenID) {
		return wxcampaign.Errorf(wxcampaign.EINVALID, "FromUserName must be 1 to %d bytes of UTF-8", maxPushID)
	}
	if ev.CreateTime.Before(minPushTime) || !ev.CreateTime.Before(maxPushTime) {
		return wxcampaign.Errorf(wxcampaign.EINVALID, "CreateTime %d is out of range", ev.CreateTime.Unix())
	}
	for i, it := range ev.Items {
		if !validPushID(it.TemplateID) {
			return wxcampaign.Errorf(wxcampaign.EINVALID, "List entry %d: TemplateId must be 1 to %d bytes of UTF-8", i, maxPushID)
		}
	}
	switch ev.Event {
	case wechat.EventSubscribeSent:
		return s.pushSent(ctx, ev)
	case wechat.EventSubscribeChange:
		return s.pushChange(ctx, ev)
	default:
		return s.pushPopup(ctx, ev)
	}
}

// pushSent records one delivery per entry of a subscribe_msg_sent_event.
func (s *Server) pushSent(ctx context.Context, ev wechat.PushEvent) error {
	ds := make([]wxcampaign.Delivery, len(ev.Items))
	for i, it := range ev.Items {
		if it.MsgID <= 0 {
			return wxcampaign.Errorf(wxcampaign.EINVALID, "List entry %d: MsgID must be positive", i)
		}
		status := it.ErrorStatus
		if !utf8.ValidString(status) {
			status = strings.ToValidUTF8(status, "\uFFFD")
		}
		ds[i] = wxcampaign.Delivery{MsgID: it.MsgID, OpenID: ev.OpenID, TemplateID: it.TemplateID,
			ErrCode: it.ErrorCode, Status: status, SentAt: ev.CreateTime}
	}
	n, err := s.deliveries.record(ctx, push{ds, s.cfg.Now()})
	if err != nil {
		return err
	}
	s.push.delivered.Add(int64(n))
	s.push.dupSent.Add(int64(len(ds) - n))
	return nil
}

// pushChange records each reject of a subscribe_msg_change_event as a
// subscription result with a requestId derived from the event, so that a
// repeated push stores nothing new. Other statuses are logged and ignored.
func (s *Server) pushChange(ctx context.Context, ev wechat.PushEvent) error {
	for _, it := range ev.Items {
		if it.SubscribeStatus != "reject" {
			s.push.changeIgnored.Add(1)
			s.log.WithFields(logrus.Fields{"template_id": it.TemplateID, "status": clipLog(it.SubscribeStatus)}).Info("api: push: subscription change ignored")
			continue
		}
		res := wxcampaign.SubscriptionResult{
			OpenID:            ev.OpenID,
			RejectTemplateIDs: []string{it.TemplateID},
			RequestID:         changeRequestID(ev.OpenID, it.TemplateID, ev.CreateTime),
		}
		if err := res.Validate(); err != nil {
			return err
		}
		rec, err := s.deps.Subs.RecordSubscription(ctx, res, s.cfg.Now())
		if err != nil {
			return err
		}
		if rec.Duplicate {
			s.push.dupRejects.Add(1)
		} else {
			s.push.rejects.Add(1)
			s.choices.add(wxcampaign.SourceChange, wxcampaign.ResultReject, 1)
		}
	}
	return nil
}

// changeRequestID is the deterministic requestId of one reject of a change
// event: "push:change:<openid>:<template>:<unix time>", or when that is
// longer than the 128 bytes a requestId may have, "push:change:sha256:"
// and the first 40 hex digits of the digest of the same three values.
func changeRequestID(openid, templateID string, at time.Time) string {
	unix := strconv.FormatInt(at.Unix(), 10)
	id := "push:change:" + openid + ":" + templateID + ":" + unix
	if len(id) <= 128 {
		return id
	}
	sum := sha256.Sum256([]byte(openid + "\x00" + templateID + "\x00" + unix))
	return "push:change:sha256:" + hex.EncodeToString(sum[:20])
}

// pushPopup records the entries of a subscribe_msg_popup_event with
// Deps.Popups (for balances and accept rates) and counts them. It creates
// no grant: the backend reports the same accepts through POST
// /v1/subscriptions with their business context, and recording both would
// double the one-time credits. Without Deps.Popups it logs and counts only.
func (s *Server) pushPopup(ctx context.Context, ev wechat.PushEvent) error {
	accepts := 0
	ps := make([]wxcampaign.PopupEvent, 0, len(ev.Items))
	for _, it := range ev.Items {
		if strings.HasPrefix(it.SubscribeStatus, "accept") {
			accepts++
		}
		if it.SubscribeStatus == "" || !utf8.ValidString(it.SubscribeStatus) || !utf8.ValidString(it.PopupScene) {
			continue
		}
		ps = append(ps, wxcampaign.PopupEvent{OpenID: ev.OpenID, TemplateID: it.TemplateID,
			Status: clipLog(it.SubscribeStatus), PopupScene: clipLog(it.PopupScene), At: ev.CreateTime})
	}
	s.push.popups.Add(int64(len(ev.Items)))
	if s.deps.Popups == nil || len(ps) == 0 {
		s.log.WithFields(logrus.Fields{"items": len(ev.Items), "accepts": accepts}).Info("api: push: subscription popup (not recorded)")
		return nil
	}
	n, err := s.deps.Popups.RecordPopups(ctx, s.cfg.Now(), ps)
	if err != nil {
		return err
	}
	if n == len(ps) { // a repeated push stores nothing and counts nothing
		for _, p := range ps {
			s.choices.add(wxcampaign.SourcePopup, wxcampaign.PopupResult(p.Status), 1)
		}
	}
	s.log.WithFields(logrus.Fields{"items": len(ev.Items), "accepts": accepts, "new": n}).Debug("api: push: subscription popup recorded")
	return nil
}

// clipLog shortens an untrusted value before it is logged.
func clipLog(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
