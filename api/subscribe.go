package api

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/wxcampaign/wxcampaign"
)

// IdempotencyKeyHeader carries the request id when the body has none.
const IdempotencyKeyHeader = "Idempotency-Key"

// IDsMediaType, in Accept, asks the scene endpoints for the bare JSON array
// of template ids (as ?format=ids does).
const IDsMediaType = "application/vnd.wxcampaign.ids+json"

// maxQueryText bounds busNo and openid in a scene query, as in a result.
const maxQueryText = 128

// SubscriptionRequest is the body of POST /v1/subscriptions: the
// SubscriptionResult fields as the mini program sends them, with two
// aliases a backend can forward unchanged: triggerAct for scene, and
// result, the object wx.requestSubscribeMessage gives its success callback
// ({"<tmplId>": "accept"|"acceptWithAudio"|"acceptWithAlert"|"reject"|
// "ban"|"filter", "errMsg": "..."}), instead of the id lists.
type SubscriptionRequest struct {
	OpenID              string         `json:"openId"`
	Scene               string         `json:"scene"`
	TriggerAct          string         `json:"triggerAct"`
	BusNo               string         `json:"busNo"`
	ExtraVariableMap    map[string]any `json:"extraVariableMap"`
	AgreeTemplateIDs    []string       `json:"agreeTemplateIds"`
	RejectTemplateIDs   []string       `json:"rejectTemplateIds"`
	BanTemplateIDs      []string       `json:"banTemplateIds"`
	FilterTemplateIDs   []string       `json:"filterTemplateIds"`
	LongTermTemplateIDs []string       `json:"longTermTemplateIds"`
	RequestID           string         `json:"requestId"`
	Result              map[string]any `json:"result"`
}

// SubscriptionResponse is the answer to POST /v1/subscriptions.
type SubscriptionResponse struct {
	// RequestID is the request id recorded: the body's, the
	// Idempotency-Key header's, or one generated for a request without
	// either (then a retry of the same request is recorded again).
	RequestID string `json:"requestId"`
	Credits   int    `json:"credits"`   // new one-time credits recorded
	LongTerm  int    `json:"longTerm"`  // long-term grants recorded
	Rejected  int    `json:"rejected"`  // rejected, banned or filtered ids recorded
	Duplicate bool   `json:"duplicate"` // requestId was recorded before; nothing new stored
}

// resultValues maps the values of a wx.requestSubscribeMessage result to
// the list they go to; acceptWithAudio and acceptWithAlert are accepts.
var resultValues = map[string]string{
	"accept": "agree", "acceptWithAudio": "agree", "acceptWithAlert": "agree",
	"reject": "reject", "ban": "ban", "filter": "filter",
}

// resultMeta are keys of a wx.requestSubscribeMessage result that are not
// template ids.
var resultMeta = map[string]bool{"errMsg": true, "errCode": true}

// subscriptionResult turns a decoded request into the result to record:
// scene from scene or triggerAct, id lists from result, requestId from the
// body or the header (generated when neither has one), repeated ids folded,
// at most maxIDs distinct ids, and the wxcampaign rules (Validate).
func subscriptionResult(req SubscriptionRequest, header string, maxIDs int) (wxcampaign.SubscriptionResult, error) {
	res := wxcampaign.SubscriptionResult{
		OpenID: req.OpenID, Scene: req.Scene, BusNo: req.BusNo, ExtraVariableMap: req.ExtraVariableMap,
		AgreeTemplateIDs: req.AgreeTemplateIDs, RejectTemplateIDs: req.RejectTemplateIDs,
		BanTemplateIDs: req.BanTemplateIDs, FilterTemplateIDs: req.FilterTemplateIDs,
		LongTermTemplateIDs: req.LongTermTemplateIDs, RequestID: req.RequestID,
	}
	switch {
	case req.TriggerAct != "" && req.Scene != "" && req.TriggerAct != req.Scene:
		return res, wxcampaign.Errorf(wxcampaign.EINVALID, "scene %q and triggerAct %q differ: send one of them", req.Scene, req.TriggerAct)
	case req.TriggerAct != "":
		res.Scene = req.TriggerAct
	}
	if err := wxcampaign.CheckText(IdempotencyKeyHeader+" header", header); err != nil {
		return res, err
	}
	switch {
	case header != "" && req.RequestID != "" && header != req.RequestID:
		return res, wxcampaign.Errorf(wxcampaign.EINVALID, "requestId %q and the %s header %q differ: send one of them", req.RequestID, IdempotencyKeyHeader, header)
	case header != "":
		res.RequestID = header
	case req.RequestID == "":
		res.RequestID = newRequestID()
	}
	if req.Result != nil {
		if len(req.AgreeTemplateIDs)+len(req.RejectTemplateIDs)+len(req.BanTemplateIDs)+len(req.FilterTemplateIDs) > 0 {
			return res, wxcampaign.Errorf(wxcampaign.EINVALID, "result and agreeTemplateIds/rejectTemplateIds/banTemplateIds/filterTemplateIds are both set: send one of them")
		}
		ids := make([]string, 0, len(req.Result))
		for id := range req.Result {
			if !resultMeta[id] {
				ids = append(ids, id)
			}
		}
		sort.Strings(ids) // the object has no order: a stable one
		for _, id := range ids {
			v, _ := req.Result[id].(string)
			list, ok := resultValues[v]
			if !ok {
				return res, wxcampaign.Errorf(wxcampaign.EINVALID, "result[%q] is %s: want accept, acceptWithAudio, acceptWithAlert, reject, ban or filter", id, describe(req.Result[id]))
			}
			switch list {
			case "agree":
				res.AgreeTemplateIDs = append(res.AgreeTemplateIDs, id)
			case "reject":
				res.RejectTemplateIDs = append(res.RejectTemplateIDs, id)
			case "ban":
				res.BanTemplateIDs = append(res.BanTemplateIDs, id)
			case "filter":
				res.FilterTemplateIDs = append(res.FilterTemplateIDs, id)
			}
		}
	}
	res.Normalize()
	if n := res.TemplateCount(); n > maxIDs {
		return res, wxcampaign.Errorf(wxcampaign.EINVALID, "%d template ids in one result: one wx.requestSubscribeMessage call takes at most %d (http.max_templates_per_result)", n, maxIDs)
	}
	if err := res.Validate(); err != nil {
		return res, err
	}
	return res, nil
}

// describe shows a JSON value of a result for an error message.
func describe(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v (not a string)", v)
}

// newRequestID returns a request id for a request that brought none.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return "auto-" + hex.EncodeToString(b[:])
}

// decodeSubscription decodes, checks and converts a POST
// /v1/subscriptions body (subscriptionResult).
func decodeSubscription(body []byte, header string, maxIDs int) (wxcampaign.SubscriptionResult, error) {
	var req SubscriptionRequest
	if err := decodeJSON(body, &req); err != nil {
		return wxcampaign.SubscriptionResult{}, err
	}
	if err := checkRawStrings(body); err != nil {
		return wxcampaign.SubscriptionResult{}, err
	}
	return subscriptionResult(req, header, maxIDs)
}

func (s *Server) handleSubscription(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(w, r, s.cfg.MaxBody)
	var res wxcampaign.SubscriptionResult
	if err == nil {
		res, err = decodeSubscription(body, r.Header.Get(IdempotencyKeyHeader), s.cfg.MaxTemplatesPerResult)
	}
	if err != nil {
		s.fail(w, r, "decode subscription", err)
		return
	}
	// The kinds are decided here, before the store is called: what the
	// client marked long-term, and what the campaigns know to be.
	for _, id := range res.AgreeTemplateIDs {
		if s.deps.Catalog.KindOf(id) == wxcampaign.LongTerm && !slices.Contains(res.LongTermTemplateIDs, id) {
			res.LongTermTemplateIDs = append(res.LongTermTemplateIDs, id)
		}
	}
	var rec wxcampaign.RecordResult
	if s.batch != nil {
		rec, err = s.batch.record(r.Context(), subscription{res, s.cfg.Now()})
	} else {
		rec, err = s.deps.Subs.RecordSubscription(r.Context(), res, s.cfg.Now())
	}
	if err != nil {
		s.fail(w, r, "record subscription", err)
		return
	}
	status := http.StatusCreated
	out := SubscriptionResponse{RequestID: res.RequestID, Credits: rec.Credits, LongTerm: rec.LongTerm, Rejected: rec.Rejected}
	switch {
	case rec.Conflict:
		writeError(w, wxcampaign.Errorf(wxcampaign.ECONFLICT, "requestId %q was recorded before with a different body: a retry must send the same result, a new result needs a new requestId", res.RequestID))
		return
	case rec.Duplicate:
		// Nothing new was stored: report zero new credits whatever the
		// store counted the first time.
		status = http.StatusOK
		out = SubscriptionResponse{RequestID: res.RequestID, Duplicate: true}
	}
	writeJSON(w, status, out)
}

// SceneTemplatesResponse is the answer to the scene endpoints.
// WeChat forbids mixing one-time and long-term ids in one
// wx.requestSubscribeMessage call, so they come in two lists; each holds at
// most Config.MaxTemplates ids and is never null.
type SceneTemplatesResponse struct {
	Scene           string   `json:"scene"`
	TmplIDs         []string `json:"tmplIds"`
	LongTermTmplIDs []string `json:"longTermTmplIds"`
}

// handleSceneTemplates serves GET /v1/scenes/{scene}/templates (the scene
// percent-encoded in the path) and GET /v1/scenes/templates?triggerAct=
// (or ?scene=). Query: busNo and openid are checked and accepted (openid
// is reserved for offers per user); format=ids, or Accept:
// application/vnd.wxcampaign.ids+json, answers the bare array of ids for
// wx.requestSubscribeMessage: the one-time ids, or the long-term ids when
// the scene has no one-time template or kind=long_term asks for them.
func (s *Server) handleSceneTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	scene := r.PathValue("scene")
	if scene == "" {
		var err error
		if scene, err = sceneFromQuery(q.Get("triggerAct"), q.Get("scene")); err != nil {
			writeError(w, err)
			return
		}
	}
	if err := wxcampaign.CheckScene(scene); err != nil {
		writeError(w, err)
		return
	}
	for _, name := range []string{"busNo", "openid"} {
		v := q.Get(name)
		if err := wxcampaign.CheckText(name, v); err != nil {
			writeError(w, err)
			return
		}
		if len(v) > maxQueryText {
			writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "%s is longer than %d bytes", name, maxQueryText))
			return
		}
	}
	idsOnly, viaAccept := false, acceptsIDs(r.Header.Get("Accept"))
	switch f := q.Get("format"); f {
	case "", "json":
		idsOnly = viaAccept
	case "ids":
		idsOnly = true
	default:
		writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "format %q: want ids or json", f))
		return
	}
	kind := wxcampaign.Kind(q.Get("kind"))
	if kind != "" && !kind.Valid() {
		writeError(w, wxcampaign.Errorf(wxcampaign.EINVALID, "kind %q: want one_time or long_term", kind))
		return
	}

	out := SceneTemplatesResponse{Scene: scene, TmplIDs: []string{}, LongTermTmplIDs: []string{}}
	seen := make(map[string]bool)
	for _, t := range s.deps.Catalog.SceneTemplates(scene) {
		if t.TemplateID == "" || seen[t.TemplateID] {
			continue
		}
		seen[t.TemplateID] = true
		list := &out.TmplIDs
		if t.Kind == wxcampaign.LongTerm {
			list = &out.LongTermTmplIDs
		}
		if len(*list) < s.cfg.MaxTemplates {
			*list = append(*list, t.TemplateID)
		}
	}
	if !idsOnly {
		writeJSON(w, http.StatusOK, out)
		return
	}
	ids := out.TmplIDs
	if kind == wxcampaign.LongTerm || kind == "" && len(ids) == 0 {
		ids = out.LongTermTmplIDs
	}
	if viaAccept {
		w.Header().Set("Content-Type", IDsMediaType)
	}
	writeJSON(w, http.StatusOK, ids)
}

// sceneFromQuery returns the scene of ?triggerAct= or ?scene=.
func sceneFromQuery(triggerAct, scene string) (string, error) {
	switch {
	case triggerAct != "" && scene != "" && triggerAct != scene:
		return "", wxcampaign.Errorf(wxcampaign.EINVALID, "scene %q and triggerAct %q differ: send one of them", scene, triggerAct)
	case triggerAct != "":
		return triggerAct, nil
	case scene != "":
		return scene, nil
	}
	return "", wxcampaign.Errorf(wxcampaign.EINVALID, "triggerAct (or scene) is required")
}

// acceptsIDs reports whether an Accept header asks for IDsMediaType.
func acceptsIDs(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == IDsMediaType {
			return true
		}
	}
	return false
}
