// Package wxcampaign holds the domain types shared by every part of the
// engine: grants, subscription results, outcomes and application errors.
//
// The packages below it each own one concern: campaigns (campaign files),
// rules (expressions and rendering), keyword (WeChat's value rules), store
// (the grant ledger), wechat (the API client and its simulator), engine (runs,
// dispatch, scheduling), api (the HTTP API) and cmd/wxcampaign (the binary).
package wxcampaign

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxcampaign/wxcampaign/internal/jsonenc"
)

// Kind is the subscription kind of a template.
type Kind string

// Template kinds, as campaign files spell them.
const (
	OneTime  Kind = "one_time"  // one accept allows exactly one message
	LongTerm Kind = "long_term" // one accept allows many messages
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == OneTime || k == LongTerm }

// Grant is one permission to send a template to a user: for a one-time
// template a single credit, for a long-term template a standing grant.
type Grant struct {
	ID         int64          `json:"id"`
	OpenID     string         `json:"openid"`
	TemplateID string         `json:"template_id"`
	Scene      string         `json:"scene"`
	BizNo      string         `json:"biz_no"`
	Vars       map[string]any `json:"vars"`
	GrantedAt  time.Time      `json:"granted_at"`
	Kind       Kind           `json:"kind"`
}

// SubscriptionResult is what the mini program backend reports after
// wx.requestSubscribeMessage, in the mini program's own JSON shape.
type SubscriptionResult struct {
	OpenID            string         `json:"openId"`
	Scene             string         `json:"scene"`
	BusNo             string         `json:"busNo"`
	ExtraVariableMap  map[string]any `json:"extraVariableMap"`
	AgreeTemplateIDs  []string       `json:"agreeTemplateIds"`
	RejectTemplateIDs []string       `json:"rejectTemplateIds"`
	// BanTemplateIDs and FilterTemplateIDs are optional extensions for the
	// "ban" and "filter" results of wx.requestSubscribeMessage.
	BanTemplateIDs    []string `json:"banTemplateIds,omitempty"`
	FilterTemplateIDs []string `json:"filterTemplateIds,omitempty"`
	// LongTermTemplateIDs marks which agreed ids are long-term templates;
	// the others are one-time credits. The client may send it; the API adds
	// the ids the loaded campaigns know to be long-term before recording.
	LongTermTemplateIDs []string `json:"longTermTemplateIds,omitempty"`
	RequestID           string   `json:"requestId"`
}

// Validate checks the fields every result must have: openId and requestId
// present, lengths bounded, openId, scene, busNo and extraVariableMap valid
// UTF-8 without NUL (stored byte for byte), the scene following the one
// scene rule (CheckScene), at least one template id, and no id in two of the
// agree, reject, ban and filter lists (one call gives each id one result).
// A repeated id within a list is not an error: Normalize folds it.
func (r *SubscriptionResult) Validate() error {
	switch {
	case r.OpenID == "":
		return Errorf(EINVALID, "openId is required")
	case len(r.OpenID) > 128:
		return Errorf(EINVALID, "openId is longer than 128 bytes")
	case r.RequestID == "":
		return Errorf(EINVALID, "requestId is required")
	case len(r.RequestID) > 128:
		return Errorf(EINVALID, "requestId is longer than 128 bytes")
	case len(r.BusNo) > 128:
		return Errorf(EINVALID, "busNo is longer than 128 bytes")
	case len(r.AgreeTemplateIDs)+len(r.RejectTemplateIDs)+len(r.BanTemplateIDs)+len(r.FilterTemplateIDs) == 0:
		return Errorf(EINVALID, "no template ids: agreeTemplateIds and rejectTemplateIds are both empty")
	}
	for _, f := range []struct{ name, v string }{{"openId", r.OpenID}, {"requestId", r.RequestID}, {"busNo", r.BusNo}} {
		if err := CheckText(f.name, f.v); err != nil {
			return err
		}
	}
	if r.Scene != "" {
		if err := CheckScene(r.Scene); err != nil {
			return err
		}
	}
	if err := checkVars("extraVariableMap", r.ExtraVariableMap); err != nil {
		return err
	}
	listOf := map[string]string{}
	for _, l := range []struct {
		name string
		ids  []string
	}{{"agreeTemplateIds", r.AgreeTemplateIDs}, {"rejectTemplateIds", r.RejectTemplateIDs}, {"banTemplateIds", r.BanTemplateIDs}, {"filterTemplateIds", r.FilterTemplateIDs}, {"longTermTemplateIds", r.LongTermTemplateIDs}} {
		for _, id := range l.ids {
			if id == "" || len(id) > 128 {
				return Errorf(EINVALID, "%s: template id %q is empty or longer than 128 bytes", l.name, id)
			}
			if err := CheckText(l.name, id); err != nil {
				return err
			}
			if l.name == "longTermTemplateIds" {
				continue
			}
			if other, ok := listOf[id]; ok && other != l.name {
				return Errorf(EINVALID, "template id %q is in both %s and %s: one call gives each id one result", id, other, l.name)
			}
			listOf[id] = l.name
		}
	}
	return nil
}

// Normalize folds repeated template ids within each list of r (a
// wx.requestSubscribeMessage call answers each id once, so a repeated id
// counts once), keeping the first occurrence's order.
func (r *SubscriptionResult) Normalize() {
	for _, l := range []*[]string{&r.AgreeTemplateIDs, &r.RejectTemplateIDs, &r.BanTemplateIDs, &r.FilterTemplateIDs, &r.LongTermTemplateIDs} {
		*l = dedupe(*l)
	}
}

// TemplateCount returns the number of distinct template ids r answers for.
func (r *SubscriptionResult) TemplateCount() int {
	seen := map[string]bool{}
	for _, ids := range [][]string{r.AgreeTemplateIDs, r.RejectTemplateIDs, r.BanTemplateIDs, r.FilterTemplateIDs} {
		for _, id := range ids {
			seen[id] = true
		}
	}
	return len(seen)
}

// Fingerprint identifies what the user did in r, apart from its requestId:
// two results with the same requestId and different fingerprints are a
// conflict, not a retry. Order and repeats within an id list do not count,
// nor LongTermTemplateIDs (the kinds are the engine's knowledge, which a
// campaign reload may change between a request and its retry).
func (r *SubscriptionResult) Fingerprint() string {
	vars, _ := r.VarsJSON() // nil when it cannot be encoded: FingerprintWith's fallback
	return r.FingerprintWith(vars)
}

// VarsJSON is ExtraVariableMap as json.Marshal encodes it ("null" when
// nil): the bytes Fingerprint hashes, and those a store keeps of it.
func (r *SubscriptionResult) VarsJSON() ([]byte, error) {
	return jsonenc.Marshal(r.ExtraVariableMap)
}

// FingerprintWith is Fingerprint given vars, r.VarsJSON()'s bytes (nil if
// it failed), for a caller that needs both and encodes the map once.
func (r *SubscriptionResult) FingerprintWith(vars []byte) string {
	sorted := func(ids []string) []string {
		out := dedupe(ids)
		sort.Strings(out)
		return out
	}
	// The bytes are json.Marshal's of []any{openid, scene, busNo, vars,
	// the four sorted lists}: it orders map keys, so the encoding is
	// canonical. Stored fingerprints are compared with new ones, so they
	// must stay those bytes; jsonenc writes them without reflection.
	var buf [512]byte
	b := append(buf[:0], '[')
	for _, s := range []string{r.OpenID, r.Scene, r.BusNo} {
		b = append(jsonenc.AppendString(b, s), ',')
	}
	b = append(b, vars...)
	for _, ids := range [][]string{r.AgreeTemplateIDs, r.RejectTemplateIDs, r.BanTemplateIDs, r.FilterTemplateIDs} {
		b = jsonenc.AppendStrings(append(b, ','), sorted(ids))
	}
	b = append(b, ']')
	if vars == nil {
		// Only values json cannot encode (never from a decoded body).
		b = []byte(fmt.Sprintf("%#v", r))
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func dedupe(ids []string) []string {
	if len(ids) < 2 {
		return ids
	}
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// MaxSceneLen is the most characters a scene name may have.
const MaxSceneLen = 64

// CheckScene applies the one rule for scene names, shared by campaign files,
// POST /v1/subscriptions and the scene endpoints: 1 to MaxSceneLen
// characters of printable UTF-8 text (Chinese trigger names such as
// 加入购物车 included), no '/' and no control characters. The error is an
// EINVALID *Error naming the scene field.
func CheckScene(scene string) error {
	switch {
	case scene == "":
		return Errorf(EINVALID, "scene is empty")
	case !utf8.ValidString(scene):
		return Errorf(EINVALID, "scene is not valid UTF-8")
	case utf8.RuneCountInString(scene) > MaxSceneLen:
		return Errorf(EINVALID, "scene %q is longer than %d characters", scene, MaxSceneLen)
	case strings.ContainsRune(scene, '/'):
		return Errorf(EINVALID, "scene %q contains '/'", scene)
	}
	for i, c := range scene {
		if !unicode.IsPrint(c) && c != ' ' && !unicode.Is(unicode.Zs, c) {
			return Errorf(EINVALID, "scene %q has a control or non-printable character %U at byte %d", scene, c, i)
		}
	}
	return nil
}

// CheckText reports an EINVALID *Error naming field when v is not valid
// UTF-8 or contains NUL: such text could not be stored byte for byte.
func CheckText(field, v string) error {
	switch {
	case !utf8.ValidString(v):
		return Errorf(EINVALID, "%s is not valid UTF-8", field)
	case strings.IndexByte(v, 0) >= 0:
		return Errorf(EINVALID, "%s contains a NUL character", field)
	}
	return nil
}

// checkVars applies CheckText to every key and string value of v, at any depth.
func checkVars(field string, v any) error {
	switch v := v.(type) {
	case string:
		return CheckText(field, v)
	case map[string]any:
		for k, e := range v {
			if err := CheckText(field+" key", k); err != nil {
				return err
			}
			if err := checkVars(field+"."+k, e); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkVars(fmt.Sprintf("%s[%d]", field, i), e); err != nil {
				return err
			}
		}
	}
	return nil
}

// RecordResult says what recording one subscription result did.
type RecordResult struct {
	Credits   int  // one-time grants (credits) created
	LongTerm  int  // long-term grants created
	Rejected  int  // reject, ban and filter entries recorded
	Duplicate bool // the requestId was already recorded: nothing was added
	// Conflict is set with Duplicate when the requestId was recorded
	// before with a different content (Fingerprint).
	Conflict bool
}

// Delivery is one subscribe_msg_sent_event entry pushed by WeChat: the
// message MsgID of TemplateID reached (ErrCode 0) or did not reach OpenID.
type Delivery struct {
	MsgID      int64     `json:"msgid"`
	OpenID     string    `json:"openid"`
	TemplateID string    `json:"template_id"`
	ErrCode    int       `json:"errcode"`
	Status     string    `json:"status"`  // WeChat's ErrorStatus, e.g. "success"
	SentAt     time.Time `json:"sent_at"` // the event's CreateTime (whole seconds)
}

// SceneTemplate is one template that an enabled campaign offers in a scene.
type SceneTemplate struct {
	TemplateID string
	Kind       Kind
	Campaign   string
}

// Outcome is what happened to one grant in one run.
type Outcome string

// Outcomes of a grant in a run. Every grant a run looks at ends with exactly
// one outcome and one reason.
const (
	Sent     Outcome = "sent"     // delivered; a one-time grant is consumed
	Skipped  Outcome = "skipped"  // not sent this run; the grant stays available unless the reason says otherwise
	Deferred Outcome = "deferred" // held back (quiet hours, quota, shutdown); picked up by a later run
	Failed   Outcome = "failed"   // WeChat refused it permanently
	Unknown  Outcome = "unknown"  // the send may have arrived; the grant is consumed and never retried
)

// Application error codes, mapped once to HTTP status and CLI text.
const (
	EINVALID      = "invalid"
	ENOTFOUND     = "not_found"
	ECONFLICT     = "conflict"
	EUNAUTHORIZED = "unauthorized"
	ETOOLARGE     = "too_large"
	EUNAVAILABLE  = "unavailable"
	EINTERNAL     = "internal"
)

// Error is an application error with a code and a message safe to show.
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return EINTERNAL
	}
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for internal errors, so that no internal detail leaks out.
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}
