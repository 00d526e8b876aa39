package wxsim

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/wxcampaign/wxcampaign/keyword"
)

// sendReq is the body of subscribeMessage.send.
type sendReq struct {
	ToUser     string            `json:"touser"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page"`
	State      string            `json:"miniprogram_state"`
	Lang       string            `json:"lang"`
	Data       map[string]string // data values by key
}

// handleSend answers subscribeMessage.send. The checks run in this order:
// injected HTTP 503/500, access token, JSON body, touser, overlap with
// another send to the same openid (43108), latency, injected -1, template,
// page, miniprogram_state, lang, data keys and values, quota (45009),
// credit (43101); then the message is delivered, its subscribe_msg_sent_event
// queued for Config.PushURL (unless dropped at Faults.PushDropRate) and, at
// the injected rate, its reply withheld.
func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	f := s.faults.Load()
	if s.roll(f.HTTP503) {
		s.http503.Add(1)
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if s.roll(f.HTTP500) {
		s.http500.Add(1)
		http.Error(w, "500 Internal Server Error", http.StatusInternalServerError)
		return
	}
	tok := queryParam(r.URL.RawQuery, "access_token")
	if code, msg := s.checkToken(tok); code != 0 {
		s.writeErr(w, code, msg)
		return
	}
	bp, err := readBody(r, 1<<20)
	if err != nil {
		s.writeErr(w, 47001, "data format error")
		return
	}
	var req sendReq
	err = decodeSend(*bp, &req)
	bodyPool.Put(bp)
	if err != nil {
		s.writeErr(w, 47001, "data format error")
		return
	}
	if req.ToUser == "" {
		s.writeErr(w, 40003, "invalid openid")
		return
	}

	sh := s.shardOf(req.ToUser)
	sh.mu.Lock()
	if sh.inflight[req.ToUser] > 0 {
		sh.mu.Unlock()
		s.overlaps.Add(1)
		s.writeErr(w, 43108, "concurrent send to the same user")
		return
	}
	sh.inflight[req.ToUser]++
	sh.mu.Unlock()
	defer func() {
		sh.mu.Lock()
		if n := sh.inflight[req.ToUser]; n <= 1 {
			delete(sh.inflight, req.ToUser)
		} else {
			sh.inflight[req.ToUser] = n - 1
		}
		sh.mu.Unlock()
	}()

	sleep(r.Context(), f.Latency)
	if s.roll(f.SystemBusy) {
		s.writeErr(w, -1, "system error")
		return
	}
	t := s.templates[req.TemplateID]
	if t == nil {
		s.writeErr(w, 40037, "invalid template_id")
		return
	}
	if !s.validPage(req.Page) {
		s.writeErr(w, 41030, "invalid page")
		return
	}
	switch req.State {
	case "", "developer", "trial", "formal":
	default:
		s.writeErr(w, 47003, "argument invalid! miniprogram_state invalid")
		return
	}
	switch req.Lang {
	case "", "zh_CN", "en_US", "zh_HK", "zh_TW":
	default:
		s.writeErr(w, 47003, "argument invalid! lang invalid")
		return
	}
	if msg := t.checkData(&req); msg != "" {
		s.writeErr(w, 47003, msg)
		return
	}
	if f.QuotaAfter > 0 {
		if n := s.quotaUsed.Add(1); n > int64(f.QuotaAfter) {
			s.quotaUsed.Add(-1)
			s.writeErr(w, 45009, "reach max api daily quota limit")
			return
		}
	} else {
		s.quotaUsed.Add(1)
	}

	ck := ""
	if t.oneTime && !s.loose {
		ck = creditKey(req.ToUser, req.TemplateID)
	}
	sh.mu.Lock()
	if ck != "" {
		c := sh.credits[ck]
		if c <= 0 {
			sh.mu.Unlock()
			s.quotaUsed.Add(-1)
			s.writeErr(w, 43101, "user refuse to accept the msg")
			return
		}
		if c == 1 {
			delete(sh.credits, ck)
		} else {
			sh.credits[ck] = c - 1
		}
	}
	id := s.msgID.Add(1)
	at := s.now()
	if len(sh.msgs) >= s.perShard {
		drop := max(1, len(sh.msgs)/2)
		n := copy(sh.msgs, sh.msgs[drop:])
		clear(sh.msgs[n:])
		sh.msgs = sh.msgs[:n]
		s.dropped.Add(int64(drop))
	}
	sh.msgs = append(sh.msgs, Delivered{MsgID: id, ToUser: req.ToUser, TemplateID: req.TemplateID, Page: req.Page,
		State: req.State, Lang: req.Lang, Data: req.Data, At: at})
	sh.mu.Unlock()

	if n := s.delivered.Add(1); f.ExpireTokenEvery > 0 && n%int64(f.ExpireTokenEvery) == 0 {
		s.expireToken(tok)
	}
	if s.push != nil {
		if s.roll(f.PushDropRate) {
			s.push.dropped.Add(1) // the push that never comes
		} else {
			s.push.enqueue(pushJob{openid: req.ToUser, templateID: req.TemplateID, msgID: id, at: at.Unix()})
		}
	}
	if s.roll(f.WithholdAfterDeliver) {
		s.withheld.Add(1)
		d := f.WithholdFor
		if d <= 0 {
			d = 30 * time.Second
		}
		sleep(r.Context(), d)
	}
	b := make([]byte, 0, 64)
	b = append(b, `{"errcode":0,"errmsg":"ok","msgid":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, '}')
	writeJSON(w, b)
}

// validPage reports whether page is acceptable: empty, or a page that
// passes keyword.CheckPage (no leading "/", at most 1024 bytes, a path of
// letters, digits and _-.@, a query without white space or control
// characters), the rule the renderer applies too; and, when Config.Pages is
// set, one of those pages, query ignored.
func (s *Server) validPage(page string) bool {
	if page == "" {
		return true
	}
	if keyword.CheckPage(page) != nil {
		return false
	}
	if s.pages != nil {
		return s.pages[keyword.PagePath(page)]
	}
	return true
}

// checkData returns "" when the data has exactly the template's keys and
// every value passes its keyword rule, else the 47003 errmsg.
func (t *template) checkData(req *sendReq) string {
	for _, k := range t.keys {
		if _, ok := req.Data[k.name]; !ok {
			return "argument invalid! data." + k.name + ".value is empty"
		}
	}
	if len(req.Data) != len(t.keys) {
		extra := make([]string, 0, len(req.Data)-len(t.keys))
		for k := range req.Data {
			if _, ok := t.index[k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		return "argument invalid! data." + extra[0] + " is not in template"
	}
	for _, k := range t.keys {
		if err := keyword.CheckType(k.typ, req.Data[k.name], k.enum); err != nil {
			return "argument invalid! data." + k.name + ".value invalid"
		}
	}
	return ""
}
