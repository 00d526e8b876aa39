package store

import (
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/wxcampaign/wxcampaign"
)

// parseFast decodes the common shapes of an import line without
// reflection: one object whose keys are exactly the result's JSON names,
// each at most once; string values (escapes included, invalid UTF-8
// replaced by U+FFFD as encoding/json does), arrays of strings, null for
// any field (a string stays empty, a list or the map nil), and
// extraVariableMap as an object (decoded by encoding/json). Anything else
// (other spellings of the keys, unknown or repeated keys, null inside a
// list, malformed JSON) returns ok=false and the line goes to the strict
// decoder, which also writes the error. When ok, the result is the one the
// strict decoder gives (FuzzParseLineFast checks it).
func parseFast(line []byte) (r *wxcampaign.SubscriptionResult, ok bool) {
	p := fastParser{b: line, s: string(line)}
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
		bit, ok := p.key()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		if seen&bit != 0 {
			return nil, false
		}
		seen |= bit
		if p.null() {
			// encoding/json leaves a string as it is (empty: keys are not
			// repeated) and sets a slice or a map to nil.
			ok = true
		} else {
			ok = p.value(bit, r)
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

// key reads an object key and returns its bit in fastKeys; a key with
// escapes takes the slow path (ok=false).
func (p *fastParser) key() (uint16, bool) {
	if !p.eat('"') {
		return 0, false
	}
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			bit, ok := fastKeys[string(p.b[start:p.i])]
			p.i++
			return bit, ok
		case c == '\\' || c < 0x20:
			return 0, false
		}
		p.i++
	}
	return 0, false
}

// The keys of the fast path, one bit each.
const (
	keyOpenID uint16 = 1 << iota
	keyScene
	keyBusNo
	keyExtra
	keyAgree
	keyReject
	keyBan
	keyFilter
	keyLongTerm
	keyRequestID
)

var fastKeys = map[string]uint16{
	"openId": keyOpenID, "scene": keyScene, "busNo": keyBusNo, "extraVariableMap": keyExtra,
	"agreeTemplateIds": keyAgree, "rejectTemplateIds": keyReject, "banTemplateIds": keyBan,
	"filterTemplateIds": keyFilter, "longTermTemplateIds": keyLongTerm, "requestId": keyRequestID,
}

// value decodes the value of the key bit into r.
func (p *fastParser) value(bit uint16, r *wxcampaign.SubscriptionResult) (ok bool) {
	switch bit {
	case keyOpenID:
		r.OpenID, ok = p.str()
	case keyScene:
		r.Scene, ok = p.str()
	case keyBusNo:
		r.BusNo, ok = p.str()
	case keyRequestID:
		r.RequestID, ok = p.str()
	case keyAgree:
		r.AgreeTemplateIDs, ok = p.strs()
	case keyReject:
		r.RejectTemplateIDs, ok = p.strs()
	case keyBan:
		r.BanTemplateIDs, ok = p.strs()
	case keyFilter:
		r.FilterTemplateIDs, ok = p.strs()
	case keyLongTerm:
		r.LongTermTemplateIDs, ok = p.strs()
	case keyExtra:
		start := p.i
		if r.ExtraVariableMap, ok = p.flatObject(); ok {
			return true
		}
		// Nested values: encoding/json decodes the object.
		p.i = start
		if p.peek() != '{' || !p.skipValue() {
			return false
		}
		if err := json.Unmarshal(p.b[start:p.i], &r.ExtraVariableMap); err != nil {
			return false
		}
		ok = true
	}
	return ok
}

// fastParser reads b; s is b as one string, so that the strings without
// escapes are slices of it (one allocation per line, not one per field).
type fastParser struct {
	b []byte
	s string
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

// decodeObject decodes s, a JSON object, into the map encoding/json makes
// of it. A flat object (strings, numbers, true, false, null), the shape
// the import stores in grants.vars, is read without reflection and in one
// pass (encoding/json validates, then decodes: 0.5 s of a 1,000,000-grant
// preview); anything else goes to encoding/json. FuzzDecodeObject checks
// that both give the same result.
func decodeObject(s string) (map[string]any, error) {
	// The parser only reads b: a view of s, not a copy.
	p := fastParser{b: unsafe.Slice(unsafe.StringData(s), len(s)), s: s}
	p.ws()
	if m, ok := p.flatObject(); ok {
		if p.ws(); p.i == len(p.b) {
			return m, nil
		}
	}
	var m map[string]any
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// flatObject reads an object whose values are strings, numbers, true,
// false or null into the map encoding/json makes of it (numbers as
// float64, a repeated key's last value); ok=false on anything else.
func (p *fastParser) flatObject() (map[string]any, bool) {
	if !p.eat('{') {
		return nil, false
	}
	m := make(map[string]any, 4)
	p.ws()
	if p.eat('}') {
		return m, true
	}
	for {
		p.ws()
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		var v any
		switch c := p.peek(); {
		case c == '"':
			if v, ok = p.str(); !ok {
				return nil, false
			}
		case c == '-' || '0' <= c && c <= '9':
			if v, ok = p.number(); !ok {
				return nil, false
			}
		case p.null():
			v = nil
		case p.word("true"):
			v = true
		case p.word("false"):
			v = false
		default:
			return nil, false
		}
		m[k] = v
		p.ws()
		if p.eat('}') {
			return m, true
		}
		if !p.eat(',') {
			return nil, false
		}
	}
}

// number reads a JSON number (RFC 8259 grammar) as float64; a number out
// of float64's range is not ok (encoding/json refuses it too).
func (p *fastParser) number() (float64, bool) {
	start := p.i
	p.eat('-')
	digits := func() int {
		n := 0
		for p.i < len(p.b) && '0' <= p.b[p.i] && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	switch {
	case p.eat('0'):
	case digits() == 0:
		return 0, false
	}
	if p.eat('.') && digits() == 0 {
		return 0, false
	}
	if p.eat('e') || p.eat('E') {
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(p.s[start:p.i], 64)
	return f, err == nil
}

// word reads the literal w.
func (p *fastParser) word(w string) bool {
	if len(p.b)-p.i >= len(w) && string(p.b[p.i:p.i+len(w)]) == w {
		p.i += len(w)
		return true
	}
	return false
}

// null reads a JSON null.
func (p *fastParser) null() bool {
	if len(p.b)-p.i >= 4 && string(p.b[p.i:p.i+4]) == "null" {
		p.i += 4
		return true
	}
	return false
}

// str reads a string. Without escapes and in valid UTF-8 (the common
// case) it is one copy; otherwise strEscaped decodes it.
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
			s := p.s[start:p.i]
			p.i++
			if !ascii && !utf8.ValidString(s) {
				p.i = start
				return p.strEscaped()
			}
			return s, true
		case c == '\\':
			p.i = start
			return p.strEscaped()
		case c < 0x20:
			return "", false
		case c >= 0x80:
			ascii = false
		}
		p.i++
	}
	return "", false
}

// strEscaped decodes the rest of a string from p.i (after the opening
// quote) as encoding/json does: the escapes of RFC 8259, a \u surrogate
// pair as one rune and a lone surrogate or an invalid UTF-8 byte as U+FFFD.
func (p *fastParser) strEscaped() (string, bool) {
	out := make([]byte, 0, 32)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if p.i+1 >= len(p.b) {
				return "", false
			}
			e := p.b[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				rr, ok := hex4(p.b[p.i:])
				if !ok {
					return "", false
				}
				p.i += 4
				if utf16.IsSurrogate(rr) {
					if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
						if rr1, ok := hex4(p.b[p.i+2:]); ok {
							if dec := utf16.DecodeRune(rr, rr1); dec != unicode.ReplacementChar {
								p.i += 6
								out = utf8.AppendRune(out, dec)
								continue
							}
						}
					}
					rr = unicode.ReplacementChar
				}
				out = utf8.AppendRune(out, rr)
			default:
				return "", false
			}
		case c < utf8.RuneSelf:
			out = append(out, c)
			p.i++
		default:
			rr, size := utf8.DecodeRune(p.b[p.i:])
			if rr == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.b[p.i:p.i+size]...)
			}
			p.i += size
		}
	}
	return "", false
}

// hex4 decodes the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
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
