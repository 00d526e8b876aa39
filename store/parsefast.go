package store

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/wxcampaign/wxcampaign"
)

// parseFast decodes the common shape of an import line without
// reflection: one object whose keys are exactly the result's JSON names,
// each at most once, string values without escapes, arrays of such
// strings, and extraVariableMap as an object (decoded by encoding/json).
// Anything else (escapes, null, other spellings of the keys, unknown keys,
// invalid UTF-8, malformed JSON) returns ok=false and the line goes to the
// strict decoder, which also writes the error. When ok, the result is the
// one the strict decoder gives (FuzzParseLineFast checks it).
func parseFast(line []byte) (r *wxcampaign.SubscriptionResult, ok bool) {
	p := fastParser{b: line}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	r = &wxcampaign.SubscriptionResult{}
	var seen uint16
	p.ws()
	if p.eat('}') {
		return p.end(r)
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		bit, ok := fastKeys[key]
		if !ok || seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		switch key {
		case "openId":
			r.OpenID, ok = p.str()
		case "scene":
			r.Scene, ok = p.str()
		case "busNo":
			r.BusNo, ok = p.str()
		case "requestId":
			r.RequestID, ok = p.str()
		case "agreeTemplateIds":
			r.AgreeTemplateIDs, ok = p.strs()
		case "rejectTemplateIds":
			r.RejectTemplateIDs, ok = p.strs()
		case "banTemplateIds":
			r.BanTemplateIDs, ok = p.strs()
		case "filterTemplateIds":
			r.FilterTemplateIDs, ok = p.strs()
		case "longTermTemplateIds":
			r.LongTermTemplateIDs, ok = p.strs()
		case "extraVariableMap":
			start := p.i
			if p.peek() != '{' || !p.skipValue() {
				return nil, false
			}
			if err := json.Unmarshal(line[start:p.i], &r.ExtraVariableMap); err != nil {
				return nil, false
			}
		}
		if !ok {
			return nil, false
		}
		p.ws()
		if p.eat('}') {
			return p.end(r)
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

var fastKeys = map[string]uint16{
	"openId": 1 << 0, "scene": 1 << 1, "busNo": 1 << 2, "extraVariableMap": 1 << 3,
	"agreeTemplateIds": 1 << 4, "rejectTemplateIds": 1 << 5, "banTemplateIds": 1 << 6,
	"filterTemplateIds": 1 << 7, "longTermTemplateIds": 1 << 8, "requestId": 1 << 9,
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) end(r *wxcampaign.SubscriptionResult) (*wxcampaign.SubscriptionResult, bool) {
	p.ws()
	if p.i != len(p.b) {
		return nil, false
	}
	return r, true
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (p *fastParser) str() (string, bool) {
	if !p.eat('"') {
		return "", false
	}
	start := p.i
	ascii := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			s := p.b[start:p.i]
			p.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\' || c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return "", false
}

// strs reads an array of str strings; [] is an empty, non-nil slice.
func (p *fastParser) strs() ([]string, bool) {
	if !p.eat('[') {
		return nil, false
	}
	out := []string{}
	p.ws()
	if p.eat(']') {
		return out, true
	}
	for {
		p.ws()
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
		p.ws()
		if p.eat(']') {
			return out, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// skipValue moves past one object or array, honouring strings and their
// escapes; the content is validated by the decoder it is handed to.
func (p *fastParser) skipValue() bool {
	depth := 0
	for p.i < len(p.b) {
		c := p.b[p.i]
		p.i++
		switch c {
		case '"':
			for {
				if p.i >= len(p.b) {
					return false
				}
				c := p.b[p.i]
				p.i++
				if c == '\\' {
					p.i++
				} else if c == '"' {
					break
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return true
			}
			if depth < 0 {
				return false
			}
		}
	}
	return false
}
