package wxsim

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeSend decodes a send body. A hand-written fast path covers the shape
// every client writes (known fields, string values without escapes, UTF-8);
// anything else goes to encoding/json, which also gives the verdict on
// malformed input. FuzzDecodeSend checks that both paths agree.
func decodeSend(b []byte, req *sendReq) error {
	if fastDecodeSend(b, req) {
		return nil
	}
	*req = sendReq{}
	return slowDecodeSend(b, req)
}

// slowDecodeSend is the encoding/json path.
func slowDecodeSend(b []byte, req *sendReq) error {
	var raw struct {
		ToUser     string `json:"touser"`
		TemplateID string `json:"template_id"`
		Page       string `json:"page"`
		State      string `json:"miniprogram_state"`
		Lang       string `json:"lang"`
		Data       map[string]struct {
			Value string `json:"value"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*req = sendReq{ToUser: raw.ToUser, TemplateID: raw.TemplateID, Page: raw.Page, State: raw.State, Lang: raw.Lang}
	if raw.Data != nil {
		req.Data = make(map[string]string, len(raw.Data))
		for k, v := range raw.Data {
			req.Data[k] = v.Value
		}
	}
	return nil
}

// scanner walks a JSON text; any surprise makes the fast path give up.
// It works on one string copy of the body, so that every decoded value is
// a substring of it: one allocation instead of one per value.
type scanner struct {
	b string
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// eat skips white space and consumes c.
func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (s *scanner) str() (string, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", false
	}
	start := s.i + 1
	ascii := true
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		switch {
		case c == '"':
			v := s.b[start:j]
			if !ascii && !utf8.ValidString(v) {
				return "", false
			}
			s.i = j + 1
			return v, true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
	}
	return "", false
}

// fastDecodeSend decodes the common shape of a send body into req and
// reports whether it could.
func fastDecodeSend(b []byte, req *sendReq) bool {
	s := scanner{b: string(b)}
	if !s.eat('{') {
		return false
	}
	seenData := false
	if s.eat('}') {
		return s.end()
	}
	for {
		key, ok := s.str()
		if !ok || !s.eat(':') {
			return false
		}
		if key == "data" {
			if seenData || !s.data(req) {
				return false
			}
			seenData = true
		} else {
			v, ok := s.str()
			if !ok {
				return false
			}
			switch key {
			case "touser":
				req.ToUser = v
			case "template_id":
				req.TemplateID = v
			case "page":
				req.Page = v
			case "miniprogram_state":
				req.State = v
			case "lang":
				req.Lang = v
			default:
				return false
			}
		}
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return s.end()
		}
		return false
	}
}

// data reads {"k":{"value":"v"},...}.
func (s *scanner) data(req *sendReq) bool {
	if !s.eat('{') {
		return false
	}
	req.Data = make(map[string]string, 8)
	if s.eat('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.eat(':') || !s.eat('{') {
			return false
		}
		if _, dup := req.Data[k]; dup {
			return false
		}
		name, ok := s.str()
		if !ok || name != "value" || !s.eat(':') {
			return false
		}
		v, ok := s.str()
		if !ok || !s.eat('}') {
			return false
		}
		req.Data[k] = v
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// end reports whether only white space is left.
func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}
