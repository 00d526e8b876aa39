// Package keyword owns WeChat's rules for subscription message keyword
// values (WECHAT.md, "Keyword values"). The renderer checks every rendered
// value with it before a send, and the WeChat simulator uses the same rules
// to answer 47003, so the two can never disagree.
//
// A data key is a type plus a 1-based index ("thing1", "character_string12").
// Lengths are counted in characters, which this package takes to be Unicode
// code points (runes): an emoji made of several code points counts as several
// characters. Where WeChat's published rules leave room, the package picks
// the stricter reading; every choice is listed in docs/rules.md.
package keyword

import (
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Type is the type part of a data key, such as "thing" or "amount".
type Type string

// The keyword types WeChat defines.
const (
	Thing           Type = "thing"
	Number          Type = "number"
	Letter          Type = "letter"
	Symbol          Type = "symbol"
	CharacterString Type = "character_string"
	Time            Type = "time"
	Date            Type = "date"
	Amount          Type = "amount"
	PhoneNumber     Type = "phone_number"
	CarNumber       Type = "car_number"
	Name            Type = "name"
	Phrase          Type = "phrase"
	Enum            Type = "enum"
	// ShortThing is a thing of at most 5 characters. WeChat's published
	// keyword table does not list it; live templates use it and the limit
	// comes from developers' tests (docs/wechat.md gives the sources).
	ShortThing Type = "short_thing"
)

// Types lists every known type, in the order of WECHAT.md.
var Types = []Type{Thing, Number, Letter, Symbol, CharacterString, Time, Date, Amount, PhoneNumber, CarNumber, Name, Phrase, Enum, ShortThing}

// Valid reports whether t is a known keyword type.
func (t Type) Valid() bool {
	for _, k := range Types {
		if t == k {
			return true
		}
	}
	return false
}

// Truncatable reports whether a value of the type may be shortened with an
// ellipsis when a campaign asks for it (the thing family: thing and
// short_thing, free text of any character). Every other type has a format a
// shortened value would break.
func (t Type) Truncatable() bool { return t == Thing || t == ShortThing }

// MaxLen is the longest value, in characters, that a type allows; 0 for
// types whose length follows from their format (time, date, amount, enum).
// For name it is the limit for text with a Chinese character (10); text of
// letters and symbols only may have 20.
func (t Type) MaxLen() int {
	switch t {
	case Thing:
		return 20
	case Number, Letter, CharacterString:
		return 32
	case Symbol, Phrase, ShortThing:
		return 5
	case PhoneNumber:
		return 17
	case CarNumber:
		return 8
	case Name:
		return 10
	}
	return 0
}

// ErrTooLong is wrapped by every "longer than N characters" error, so that a
// caller may decide to truncate instead.
var ErrTooLong = errors.New("too long")

// reason is an error whose text is a short reason without the key.
type reason struct {
	msg  string
	long bool
}

func (r *reason) Error() string { return r.msg }

func (r *reason) Is(target error) bool { return r.long && target == ErrTooLong }

func fail(msg string) error { return &reason{msg: msg} }

func tooLong(n int) error {
	return &reason{msg: "longer than " + strconv.Itoa(n) + " characters", long: true}
}

// Parse splits a data key such as "thing1" or "character_string12" into its
// type and index. The index is a decimal number from 1 without leading zeros.
func Parse(key string) (Type, int, error) {
	i := len(key)
	for i > 0 && key[i-1] >= '0' && key[i-1] <= '9' {
		i--
	}
	t, digits := Type(key[:i]), key[i:]
	if t == "" {
		return "", 0, errors.New("keyword: " + strconv.Quote(key) + ": no type")
	}
	if !t.Valid() {
		return "", 0, errors.New("keyword: " + strconv.Quote(key) + ": unknown type " + strconv.Quote(string(t)))
	}
	if digits == "" {
		return "", 0, errors.New("keyword: " + strconv.Quote(key) + ": missing index")
	}
	if digits[0] == '0' || len(digits) > 9 {
		return "", 0, errors.New("keyword: " + strconv.Quote(key) + ": invalid index " + strconv.Quote(digits))
	}
	n, _ := strconv.Atoi(digits) // at most 9 digits: cannot fail
	return t, n, nil
}

// Check reports whether value is valid for the data key under WeChat's
// rules. enum lists the allowed values for enum keys; nil accepts any
// non-empty value. The error text is a short reason without the key, such as
// "not an amount" or "longer than 20 characters".
func Check(key, value string, enum []string) error {
	t, _, err := Parse(key)
	if err != nil {
		return err
	}
	return CheckType(t, value, enum)
}

// CheckType is Check for an already parsed type.
func CheckType(t Type, value string, enum []string) error {
	if value == "" {
		return fail("empty")
	}
	if !utf8.ValidString(value) {
		return fail("not valid UTF-8")
	}
	n := 0
	for _, r := range value {
		if isControl(r) {
			return fail("contains a control character")
		}
		n++
	}
	switch t {
	case Thing:
		if n > 20 {
			return tooLong(20)
		}
		return nil
	case ShortThing:
		if n > 5 {
			return tooLong(5)
		}
		return nil
	case Number:
		return checkNumber(value)
	case Letter:
		if n > 32 {
			return tooLong(32)
		}
		for i := 0; i < len(value); i++ {
			if !isASCIILetter(value[i]) {
				return fail("not letters only")
			}
		}
		return nil
	case Symbol:
		if n > 5 {
			return tooLong(5)
		}
		for _, r := range value {
			if !isSymbol(r) {
				return fail("not symbols only")
			}
		}
		return nil
	case CharacterString:
		if n > 32 {
			return tooLong(32)
		}
		for i := 0; i < len(value); i++ {
			if c := value[i]; c <= ' ' || c > '~' {
				return fail("not ASCII letters, digits and symbols only")
			}
		}
		return nil
	case Time:
		if !rangeOf(value, isTimeValue) {
			return fail("not a time")
		}
		return nil
	case Date:
		if !rangeOf(value, isDateValue) {
			return fail("not a date")
		}
		return nil
	case Amount:
		return checkAmount(value)
	case PhoneNumber:
		return checkPhone(value, n)
	case CarNumber:
		return checkCar(value, n)
	case Name:
		return checkName(value, n)
	case Phrase:
		if n > 5 {
			return tooLong(5)
		}
		for _, r := range value {
			if !unicode.Is(unicode.Han, r) {
				return fail("not Chinese characters only")
			}
		}
		return nil
	case Enum:
		if enum == nil {
			return nil
		}
		for _, v := range enum {
			if v == value {
				return nil
			}
		}
		return fail("not one of the enum values")
	}
	return fail("unknown keyword type " + strconv.Quote(string(t)))
}

// Truncate shortens s to at most n characters (runes), ending in "…" when it
// cuts. Trailing spaces before the ellipsis are dropped, and invalid UTF-8 is
// replaced by U+FFFD, so the result is always valid UTF-8 of at most n runes.
func Truncate(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if n <= 0 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut, i := 0, 0
	for j := range s {
		if i == n-1 {
			cut = j
			break
		}
		i++
	}
	head := strings.TrimRightFunc(s[:cut], func(r rune) bool {
		return unicode.IsSpace(r) || r == '\u200d' || unicode.Is(unicode.Variation_Selector, r)
	})
	return head + "…"
}

// isControl reports control characters, including newlines and the Unicode
// line and paragraph separators.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isSymbol reports punctuation and symbol characters.
func isSymbol(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) }

// digits returns the length of the run of ASCII digits at the start of s.
func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

func checkNumber(v string) error {
	s := strings.TrimPrefix(v, "-")
	ip := digits(s)
	if ip == 0 {
		return fail("not a number")
	}
	n := ip
	if rest := s[ip:]; rest != "" {
		if rest[0] != '.' {
			return fail("not a number")
		}
		fp := digits(rest[1:])
		if fp == 0 || fp != len(rest)-1 {
			return fail("not a number")
		}
		n += fp
	}
	if n > 32 {
		return fail("more than 32 digits")
	}
	return nil
}

func checkAmount(v string) error {
	s := v
	if r, size := utf8.DecodeRuneInString(s); unicode.Is(unicode.Sc, r) {
		s = s[size:]
	}
	s = strings.TrimSuffix(s, "元")
	ip := digits(s)
	if ip == 0 {
		return fail("not an amount")
	}
	if rest := s[ip:]; rest != "" {
		if rest[0] != '.' {
			return fail("not an amount")
		}
		fp := digits(rest[1:])
		if fp == 0 || fp != len(rest)-1 {
			return fail("not an amount")
		}
	}
	if ip > 10 {
		return fail("more than 10 integer digits")
	}
	return nil
}

func checkPhone(v string, n int) error {
	if n > 17 {
		return tooLong(17)
	}
	if v[0] == ' ' || v[len(v)-1] == ' ' {
		return fail("not a phone number")
	}
	hasDigit := false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case isDigit(c):
			hasDigit = true
		case c == '+' || c == '-' || c == ' ' || c == '(' || c == ')':
		default:
			return fail("not a phone number")
		}
	}
	if !hasDigit {
		return fail("not a phone number")
	}
	return nil
}

func checkCar(v string, n int) error {
	if n > 8 {
		return tooLong(8)
	}
	if n < 2 {
		return fail("not a car number")
	}
	i := 0
	for _, r := range v {
		han := unicode.Is(unicode.Han, r)
		ok := r < utf8.RuneSelf && (isASCIILetter(byte(r)) || isDigit(byte(r)))
		if !ok && !(han && (i == 0 || i == n-1)) {
			return fail("not a car number")
		}
		i++
	}
	return nil
}

func checkName(v string, n int) error {
	han := false
	for _, r := range v {
		switch {
		case unicode.Is(unicode.Han, r):
			han = true
		case unicode.IsLetter(r), isSymbol(r), r == ' ':
		default:
			return fail("not a name")
		}
	}
	if han && n > 10 {
		return tooLong(10)
	}
	if n > 20 {
		return tooLong(20)
	}
	return nil
}

// rangeOf accepts v when it is one value, or two joined by "~" (spaces around
// the "~" allowed), each accepted by ok.
func rangeOf(v string, ok func(string) bool) bool {
	a, b, found := strings.Cut(v, "~")
	if !found {
		return ok(v)
	}
	return ok(strings.TrimRight(a, " ")) && ok(strings.TrimLeft(b, " "))
}

// isTimeValue accepts "15:01", "15:01:30", and either after a date and a
// space ("2019年10月1日 15:01", "2019-10-01 15:01").
func isTimeValue(s string) bool {
	if d, c, found := strings.Cut(s, " "); found {
		return isDate(d) && isClock(c)
	}
	return isClock(s)
}

// isDateValue accepts a date, optionally followed by a space and a time.
func isDateValue(s string) bool {
	if d, c, found := strings.Cut(s, " "); found {
		return isDate(d) && isClock(c)
	}
	return isDate(s)
}

// isClock accepts H:MM or HH:MM with an optional :SS, 24-hour.
func isClock(s string) bool {
	h := digits(s)
	if h < 1 || h > 2 || len(s) < h+3 || s[h] != ':' {
		return false
	}
	hh, _ := strconv.Atoi(s[:h])
	if hh > 23 || !twoDigits(s[h+1:h+3], 59) {
		return false
	}
	rest := s[h+3:]
	if rest == "" {
		return true
	}
	return len(rest) == 3 && rest[0] == ':' && twoDigits(rest[1:], 59)
}

func twoDigits(s string, max int) bool {
	if len(s) != 2 || !isDigit(s[0]) || !isDigit(s[1]) {
		return false
	}
	return int(s[0]-'0')*10+int(s[1]-'0') <= max
}

// num reads 1 to max ASCII digits from the start of s.
func num(s string, max int) (int, string, bool) {
	n := digits(s)
	if n == 0 || n > max {
		return 0, s, false
	}
	v, _ := strconv.Atoi(s[:n])
	return v, s[n:], true
}

// isDate accepts Y年M月D日, Y-M-D, Y/M/D, Y.M.D, Y年M月 and M月D日, with a
// four-digit year, one- or two-digit month and day, and a real calendar day.
func isDate(s string) bool {
	first, rest, ok := num(s, 4)
	if !ok {
		return false
	}
	if digits(s) == 4 {
		year := first
		if strings.HasPrefix(rest, "年") {
			m, r, ok := num(rest[len("年"):], 2)
			if !ok || !strings.HasPrefix(r, "月") || m < 1 || m > 12 {
				return false
			}
			r = r[len("月"):]
			if r == "" {
				return true // Y年M月
			}
			d, r, ok := num(r, 2)
			return ok && r == "日" && validDay(year, m, d)
		}
		if rest == "" {
			return false
		}
		sep := rest[0]
		if sep != '-' && sep != '/' && sep != '.' {
			return false
		}
		m, r, ok := num(rest[1:], 2)
		if !ok || r == "" || r[0] != sep {
			return false
		}
		d, r, ok := num(r[1:], 2)
		return ok && r == "" && validDay(year, m, d)
	}
	// M月D日: no year, so 2月29日 is allowed.
	m, r, ok := first, rest, digits(s) <= 2
	if !ok || !strings.HasPrefix(r, "月") {
		return false
	}
	d, r, ok := num(r[len("月"):], 2)
	return ok && r == "日" && validDay(2000, m, d)
}

func validDay(year, month, day int) bool {
	if month < 1 || month > 12 || day < 1 {
		return false
	}
	days := [...]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && (year%4 == 0 && year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

// MaxPageLen is the longest page, in bytes, the engine sends. WeChat
// publishes no limit for subscribeMessage.send's page; the simulator answers
// 41030 above it, and a longer page is taken to come from bad grant data.
const MaxPageLen = 1024

// CheckPage reports whether page (already without a leading "/") is a page
// WeChat can take: "pages/x/y" with an optional query ("?id=1&from=push").
// The path is made of ASCII letters, digits and "_-./@" segments without
// an empty, "." or ".." segment, as app.json page paths are; the query is
// printable text without white space or control characters. An empty page is
// valid (a card without a link). Errors are short reasons without the word
// "page", such as "longer than 1024 bytes".
func CheckPage(page string) error {
	if page == "" {
		return nil
	}
	if len(page) > MaxPageLen {
		return fail("longer than " + strconv.Itoa(MaxPageLen) + " bytes")
	}
	if !utf8.ValidString(page) {
		return fail("not valid UTF-8")
	}
	path, query, _ := strings.Cut(page, "?")
	if path == "" {
		return fail("no path before the query")
	}
	if path[0] == '/' {
		return fail("starts with /")
	}
	for _, seg := range strings.Split(path, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fail("path has an empty, . or .. segment")
		}
		for _, r := range seg {
			if r >= utf8.RuneSelf || !isASCIILetter(byte(r)) && !isDigit(byte(r)) && r != '_' && r != '-' && r != '.' && r != '@' {
				return fail("path has " + strconv.QuoteRune(r) + ": want ASCII letters, digits and _-.@")
			}
		}
	}
	for _, r := range query {
		if unicode.IsSpace(r) || isControl(r) || r == utf8.RuneError {
			return fail("query contains a space or a control character")
		}
	}
	return nil
}

// PagePath is the path of a page without its query: "pages/x/y" for
// "pages/x/y?id=1". A leading "/" is dropped.
func PagePath(page string) string {
	path, _, _ := strings.Cut(strings.TrimLeft(page, "/"), "?")
	return path
}
