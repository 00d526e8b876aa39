package wechat

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/wxcampaign/wxcampaign/internal/jsonenc"
)

// Message is one subscribeMessage.send request.
type Message struct {
	ToUser     string            `json:"touser"`
	TemplateID string            `json:"template_id"`
	Page       string            `json:"page,omitempty"`
	Data       map[string]string `json:"-"` // encoded as {"k":{"value":"v"}}
	State      string            `json:"miniprogram_state,omitempty"`
	Lang       string            `json:"lang,omitempty"`
}

// MarshalJSON encodes m as WeChat expects it, with data as
// {"thing1":{"value":"..."}} and the keys in sorted order.
func (m Message) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 128+48*len(m.Data))
	b = append(b, `{"touser":`...)
	b = jsonenc.AppendString(b, m.ToUser)
	b = append(b, `,"template_id":`...)
	b = jsonenc.AppendString(b, m.TemplateID)
	if m.Page != "" {
		b = append(b, `,"page":`...)
		b = jsonenc.AppendString(b, m.Page)
	}
	if m.State != "" {
		b = append(b, `,"miniprogram_state":`...)
		b = jsonenc.AppendString(b, m.State)
	}
	if m.Lang != "" {
		b = append(b, `,"lang":`...)
		b = jsonenc.AppendString(b, m.Lang)
	}
	b = append(b, `,"data":{`...)
	var small [8]string // a template's few keys: no allocation
	keys := small[:0]
	for k := range m.Data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, k)
		b = append(b, `:{"value":`...)
		b = jsonenc.AppendString(b, m.Data[k])
		b = append(b, '}')
	}
	return append(b, "}}"...), nil
}

// UnmarshalJSON decodes the WeChat form of a message (used by tests and
// tools that read requests back).
func (m *Message) UnmarshalJSON(data []byte) error {
	type plain Message
	var raw struct {
		plain
		Data map[string]struct {
			Value string `json:"value"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	*m = Message(raw.plain)
	if raw.Data != nil {
		m.Data = make(map[string]string, len(raw.Data))
		for k, v := range raw.Data {
			m.Data[k] = v.Value
		}
	}
	return nil
}

// sendReply is the reply of subscribeMessage.send.
type sendReply struct {
	MsgID json.Number `json:"msgid"`
}

// Send calls subscribeMessage.send and returns WeChat's msgid. On 40001,
// 40014 or 42001 it replaces the token and retries once. Any failure is an
// *APIError; ClassOf tells whether the message may have arrived.
func (c *Client) Send(ctx context.Context, m Message) (msgid int64, err error) {
	body, err := m.MarshalJSON()
	if err != nil {
		return 0, &APIError{Op: "send", Class: ClassContent, Err: fmt.Errorf("encode message: %w", err)}
	}
	var r sendReply
	if err := c.callWithToken(ctx, request{op: "send", method: "POST", path: "/cgi-bin/message/subscribe/send", body: body, out: &r}); err != nil {
		return 0, err
	}
	if r.MsgID == "" {
		return 0, nil
	}
	id, err := parseMsgID(string(r.MsgID))
	if err != nil {
		// Delivered (errcode 0) but the id is unreadable: report success.
		c.log.WithField("msgid", string(r.MsgID)).Warn("wechat: send: unreadable msgid")
		return 0, nil
	}
	return id, nil
}

// parseMsgID reads a msgid that may be written as an integer or a float.
func parseMsgID(s string) (int64, error) {
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		return id, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < -9.2e18 || f > 9.2e18 {
		return 0, fmt.Errorf("msgid %q: not an int64", s)
	}
	return int64(f), nil
}
