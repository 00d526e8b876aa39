package wechat

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Events of the message push URL that concern subscription messages
// (WECHAT.md "Subscriptions").
const (
	// EventSubscribePopup: the user answered a subscription popup; one item
	// per template id with SubscribeStatus accept, reject, ban, filter, ...
	EventSubscribePopup = "subscribe_msg_popup_event"
	// EventSubscribeChange: the user changed a subscription in the service
	// notification settings (today only "reject" is pushed).
	EventSubscribeChange = "subscribe_msg_change_event"
	// EventSubscribeSent: the result of a sent subscription message, one per
	// delivered message: MsgID, ErrorCode (0 = delivered) and ErrorStatus.
	EventSubscribeSent = "subscribe_msg_sent_event"
)

// MaxPushBody is a sensible bound for a push body (WeChat's are well under
// 4 KiB); ParsePush does not bound its input, the HTTP handler must.
const MaxPushBody = 64 << 10

// ErrPushEncrypted is returned by ParsePush for a body in safe mode
// (安全模式, an Encrypt field): this package reads plain-text pushes only.
var ErrPushEncrypted = errors.New("wechat: parse push: encrypted (safe mode) push bodies are not supported; set the push to plain-text mode")

// PushItem is one entry of a push event's List.
type PushItem struct {
	TemplateID string
	// SubscribeStatus is SubscribeStatusString of a popup or change event:
	// accept, reject, ban, filter, acceptWithAudio, acceptWithAlert, ...
	SubscribeStatus string
	PopupScene      string // popup event: where the popup was shown ("0" = a mini program page)
	MsgID           int64  // sent event: the msgid subscribeMessage.send returned
	ErrorCode       int    // sent event: 0 delivered, else the failure
	ErrorStatus     string // sent event: "success" or the failure, e.g. "fail_user_block"
}

// PushEvent is one message or event posted to the message push URL.
type PushEvent struct {
	ToUserName string // the mini program's original id (gh_...)
	OpenID     string // FromUserName: the user
	MsgType    string // "event" for events
	// Event is EventSubscribeSent, EventSubscribePopup, EventSubscribeChange
	// or any other event name WeChat pushes (Items is then empty); "" when
	// MsgType is not "event".
	Event      string
	CreateTime time.Time // UTC, second precision
	Items      []PushItem
}

// SignPush returns the signature WeChat puts in the push URL's query: the
// hex SHA-1 of token, timestamp and nonce sorted and concatenated.
func SignPush(token, timestamp, nonce string) string {
	parts := []string{token, timestamp, nonce}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(parts[0] + parts[1] + parts[2]))
	return hex.EncodeToString(sum[:])
}

// VerifyPushSignature reports whether signature is SignPush(token,
// timestamp, nonce), compared in constant time (hex case is ignored). An
// empty token never verifies: anyone could compute that signature. It does
// not check the timestamp's age; a handler that wants replay protection
// compares it with its clock.
func VerifyPushSignature(token, signature, timestamp, nonce string) bool {
	if token == "" || len(signature) != 2*sha1.Size {
		return false
	}
	want := SignPush(token, timestamp, nonce)
	return subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(signature))) == 1
}

// ParsePush decodes a push body in either format WeChat uses: JSON (the
// first non-space byte is '{') or XML (it is '<'). In JSON the List is an
// object for one entry and an array for several (a wrapper object named
// after the event, as in XML, is accepted too); in XML the entries are
// <List> elements inside <SubscribeMsgPopupEvent>, <SubscribeMsgChangeEvent>
// or <SubscribeMsgSentEvent>. CreateTime, MsgID, ErrorCode and PopupScene may
// be JSON strings or numbers.
//
// It rejects, with an error saying why: anything that is not one JSON
// object or one <xml> document, a missing FromUserName, MsgType or
// CreateTime, an event message without Event, and for the three
// subscription events an empty List, an entry without TemplateId, a sent
// entry without a numeric MsgID and ErrorCode, a popup or change entry
// without SubscribeStatusString. Unknown fields are ignored. A safe-mode
// (encrypted) body gives ErrPushEncrypted.
func ParsePush(body []byte) (PushEvent, error) {
	t := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if len(t) == 0 {
		return PushEvent{}, errors.New("wechat: parse push: empty body")
	}
	var raw rawPush
	var err error
	switch t[0] {
	case '{':
		err = raw.fromJSON(t)
	case '<':
		err = raw.fromXML(t)
	default:
		return PushEvent{}, fmt.Errorf("wechat: parse push: body starts with %q, neither JSON nor XML", rune(t[0]))
	}
	if err != nil {
		if errors.Is(err, ErrPushEncrypted) {
			return PushEvent{}, ErrPushEncrypted
		}
		return PushEvent{}, fmt.Errorf("wechat: parse push: %w", err)
	}
	ev, err := raw.toEvent()
	if err != nil {
		return PushEvent{}, fmt.Errorf("wechat: parse push: %w", err)
	}
	return ev, nil
}

// rawPush is a push in either format with every value as text.
type rawPush struct {
	toUser, fromUser, createTime, msgType, event string
	hasCreateTime                                bool
	items                                        []rawItem
}

type rawItem struct {
	templateID, status, scene, msgID, errCode, errStatus string
	hasMsgID, hasErrCode                                 bool
}

func (r *rawPush) toEvent() (PushEvent, error) {
	ev := PushEvent{ToUserName: r.toUser, OpenID: r.fromUser, MsgType: r.msgType, Event: r.event}
	switch {
	case r.fromUser == "":
		return ev, errors.New("FromUserName missing")
	case r.msgType == "":
		return ev, errors.New("MsgType missing")
	case r.msgType == "event" && r.event == "":
		return ev, errors.New("event without Event")
	case !r.hasCreateTime:
		return ev, errors.New("CreateTime missing")
	}
	sec, err := strconv.ParseInt(r.createTime, 10, 64)
	if err != nil || sec < 0 || sec > 1<<40 {
		return ev, fmt.Errorf("CreateTime %q is not a unix time", clip(r.createTime))
	}
	ev.CreateTime = time.Unix(sec, 0).UTC()
	switch ev.Event {
	case EventSubscribePopup, EventSubscribeChange, EventSubscribeSent:
	default:
		return ev, nil // other messages and events: the header only
	}
	if len(r.items) == 0 {
		return ev, fmt.Errorf("%s without a List entry", ev.Event)
	}
	ev.Items = make([]PushItem, len(r.items))
	for i, it := range r.items {
		p := &ev.Items[i]
		p.TemplateID, p.SubscribeStatus, p.PopupScene, p.ErrorStatus = it.templateID, it.status, it.scene, it.errStatus
		if it.templateID == "" {
			return ev, fmt.Errorf("%s List entry %d: TemplateId missing", ev.Event, i)
		}
		if ev.Event != EventSubscribeSent {
			if it.status == "" {
				return ev, fmt.Errorf("%s List entry %d: SubscribeStatusString missing", ev.Event, i)
			}
			continue
		}
		if !it.hasMsgID {
			return ev, fmt.Errorf("%s List entry %d: MsgID missing", ev.Event, i)
		}
		if p.MsgID, err = strconv.ParseInt(it.msgID, 10, 64); err != nil {
			return ev, fmt.Errorf("%s List entry %d: MsgID %q is not an integer", ev.Event, i, clip(it.msgID))
		}
		if !it.hasErrCode {
			return ev, fmt.Errorf("%s List entry %d: ErrorCode missing", ev.Event, i)
		}
		code, err := strconv.ParseInt(it.errCode, 10, 32)
		if err != nil {
			return ev, fmt.Errorf("%s List entry %d: ErrorCode %q is not an integer", ev.Event, i, clip(it.errCode))
		}
		p.ErrorCode = int(code)
	}
	return ev, nil
}

// clip shortens a bad value quoted in an error.
func clip(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// scalar is a JSON string or number, kept as text; null is "absent".
type scalar struct {
	s   string
	set bool
}

func (v *scalar) UnmarshalJSON(b []byte) error {
	switch c := b[0]; {
	case c == '"':
		v.set = true
		return json.Unmarshal(b, &v.s)
	case c == '-' || (c >= '0' && c <= '9'):
		v.s, v.set = string(b), true
		return nil
	case c == 'n':
		return nil
	}
	return fmt.Errorf("want a string or a number, got %s", clip(string(b)))
}

type jsonItem struct {
	TemplateID            scalar `json:"TemplateId"`
	SubscribeStatusString scalar
	PopupScene            scalar
	MsgID                 scalar
	ErrorCode             scalar
	ErrorStatus           scalar
}

type jsonWrapper struct {
	List json.RawMessage
}

type jsonPush struct {
	ToUserName, FromUserName, CreateTime, MsgType, Event scalar
	Encrypt                                              scalar
	List                                                 json.RawMessage
	SubscribeMsgPopupEvent                               *jsonWrapper
	SubscribeMsgChangeEvent                              *jsonWrapper
	SubscribeMsgSentEvent                                *jsonWrapper
}

func (r *rawPush) fromJSON(b []byte) error {
	var j jsonPush
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if j.Encrypt.set && !j.FromUserName.set {
		return ErrPushEncrypted
	}
	r.toUser, r.fromUser, r.msgType, r.event = j.ToUserName.s, j.FromUserName.s, j.MsgType.s, j.Event.s
	r.createTime, r.hasCreateTime = strings.TrimSpace(j.CreateTime.s), j.CreateTime.set
	list := j.List
	if len(bytes.TrimSpace(list)) == 0 {
		var w *jsonWrapper
		switch r.event {
		case EventSubscribePopup:
			w = j.SubscribeMsgPopupEvent
		case EventSubscribeChange:
			w = j.SubscribeMsgChangeEvent
		case EventSubscribeSent:
			w = j.SubscribeMsgSentEvent
		}
		if w != nil {
			list = w.List
		}
	}
	list = bytes.TrimSpace(list)
	var items []jsonItem
	switch {
	case len(list) == 0 || string(list) == "null":
	case list[0] == '{':
		var one jsonItem
		if err := json.Unmarshal(list, &one); err != nil {
			return fmt.Errorf("json List: %w", err)
		}
		items = []jsonItem{one}
	case list[0] == '[':
		if err := json.Unmarshal(list, &items); err != nil {
			return fmt.Errorf("json List: %w", err)
		}
	default:
		return fmt.Errorf("json List is neither an object nor an array: %s", clip(string(list)))
	}
	r.items = make([]rawItem, len(items))
	for i, it := range items {
		r.items[i] = rawItem{templateID: it.TemplateID.s, status: it.SubscribeStatusString.s, scene: it.PopupScene.s,
			msgID: strings.TrimSpace(it.MsgID.s), hasMsgID: it.MsgID.set,
			errCode: strings.TrimSpace(it.ErrorCode.s), hasErrCode: it.ErrorCode.set, errStatus: it.ErrorStatus.s}
	}
	return nil
}

// xmlText is the character data of an element, and whether it was there.
type xmlText struct {
	s   string
	set bool
}

func (v *xmlText) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s string
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	v.s, v.set = strings.TrimSpace(s), true
	return nil
}

type xmlItem struct {
	TemplateID            xmlText `xml:"TemplateId"`
	SubscribeStatusString xmlText
	PopupScene            xmlText
	MsgID                 xmlText
	MsgId                 xmlText //nolint:revive // the spelling some pushes use
	ErrorCode             xmlText
	ErrorStatus           xmlText
}

type xmlList struct {
	List []xmlItem
}

type xmlPush struct {
	XMLName                                              xml.Name `xml:"xml"`
	ToUserName, FromUserName, CreateTime, MsgType, Event xmlText
	Encrypt                                              xmlText
	SubscribeMsgPopupEvent                               xmlList
	SubscribeMsgChangeEvent                              xmlList
	SubscribeMsgSentEvent                                xmlList
}

func (r *rawPush) fromXML(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	var x xmlPush
	if err := d.Decode(&x); err != nil {
		return fmt.Errorf("xml: %w", err)
	}
	for { // nothing but white space, comments and processing instructions may follow
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("xml after </xml>: %w", err)
		}
		switch tok := tok.(type) {
		case xml.Comment, xml.ProcInst:
		case xml.CharData:
			if len(bytes.TrimSpace(tok)) != 0 {
				return errors.New("xml: text after </xml>")
			}
		default:
			return errors.New("xml: more than one root element")
		}
	}
	if x.Encrypt.set && !x.FromUserName.set {
		return ErrPushEncrypted
	}
	r.toUser, r.fromUser, r.msgType, r.event = x.ToUserName.s, x.FromUserName.s, x.MsgType.s, x.Event.s
	r.createTime, r.hasCreateTime = x.CreateTime.s, x.CreateTime.set
	var list []xmlItem
	switch r.event {
	case EventSubscribePopup:
		list = x.SubscribeMsgPopupEvent.List
	case EventSubscribeChange:
		list = x.SubscribeMsgChangeEvent.List
	case EventSubscribeSent:
		list = x.SubscribeMsgSentEvent.List
	}
	r.items = make([]rawItem, len(list))
	for i, it := range list {
		id := it.MsgID
		if !id.set {
			id = it.MsgId
		}
		r.items[i] = rawItem{templateID: it.TemplateID.s, status: it.SubscribeStatusString.s, scene: it.PopupScene.s,
			msgID: id.s, hasMsgID: id.set, errCode: it.ErrorCode.s, hasErrCode: it.ErrorCode.set, errStatus: it.ErrorStatus.s}
	}
	return nil
}
