package keyword

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		key     string
		typ     Type
		idx     int
		wantErr string
	}{
		{"thing1", Thing, 1, ""},
		{"thing12", Thing, 12, ""},
		{"character_string12", CharacterString, 12, ""},
		{"phone_number3", PhoneNumber, 3, ""},
		{"car_number8", CarNumber, 8, ""},
		{"amount2", Amount, 2, ""},
		{"enum1", Enum, 1, ""},
		{"short_thing6", ShortThing, 6, ""},
		{"short_1", "", 0, `unknown type "short_"`},
		{"colour1", "", 0, `unknown type "colour"`},
		{"thing", "", 0, "missing index"},
		{"thing0", "", 0, "invalid index"},
		{"thing01", "", 0, "invalid index"},
		{"thing1234567890", "", 0, "invalid index"},
		{"12", "", 0, "no type"},
		{"", "", 0, "no type"},
		{"Thing1", "", 0, "unknown type"},
		{"thing1a", "", 0, "unknown type"},
		{"thing 1", "", 0, "unknown type"},
	}
	for _, tt := range tests {
		typ, idx, err := Parse(tt.key)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Parse(%q) error = %v, want containing %q", tt.key, err, tt.wantErr)
			}
			continue
		}
		if err != nil || typ != tt.typ || idx != tt.idx {
			t.Errorf("Parse(%q) = %q, %d, %v; want %q, %d", tt.key, typ, idx, err, tt.typ, tt.idx)
		}
	}
}

func TestCheck(t *testing.T) {
	twenty := strings.Repeat("好", 20)
	tests := []struct {
		key   string
		value string
		want  string // "" = valid, else the reason
	}{
		// every type: empty, newline, control characters
		{"thing1", "", "empty"},
		{"number1", "", "empty"},
		{"enum1", "", "empty"},
		{"thing1", "a\nb", "contains a control character"},
		{"thing1", "a\rb", "contains a control character"},
		{"thing1", "a\tb", "contains a control character"},
		{"thing1", "a\u2028b", "contains a control character"},
		{"character_string1", "ab\x00", "contains a control character"},
		{"date1", "2019-10-01\n", "contains a control character"},
		{"thing1", "a\xffb", "not valid UTF-8"},

		// thing
		{"thing1", twenty, ""},
		{"thing1", twenty + "好", "longer than 20 characters"},
		{"thing1", strings.Repeat("a", 20), ""},
		{"thing1", strings.Repeat("a", 21), "longer than 20 characters"},
		{"thing1", "降价了，快来看看 Nike 42码!", ""},
		{"thing1", "🎉 sale", ""},
		{"thing1", strings.Repeat("🎉", 20), ""},
		{"thing1", strings.Repeat("🎉", 21), "longer than 20 characters"},
		{"thing1", "１２３", ""},

		// number
		{"number1", "123", ""},
		{"number1", "-12.5", ""},
		{"number1", "0.001", ""},
		{"number1", strings.Repeat("9", 32), ""},
		{"number1", strings.Repeat("9", 33), "more than 32 digits"},
		{"number1", strings.Repeat("9", 16) + "." + strings.Repeat("9", 16), ""},
		{"number1", strings.Repeat("9", 16) + "." + strings.Repeat("9", 17), "more than 32 digits"},
		{"number1", "１２３", "not a number"},
		{"number1", "12.", "not a number"},
		{"number1", ".5", "not a number"},
		{"number1", "1.2.3", "not a number"},
		{"number1", "+1", "not a number"},
		{"number1", "1e5", "not a number"},
		{"number1", "1,000", "not a number"},
		{"number1", "-", "not a number"},
		{"number1", " 1", "not a number"},

		// letter
		{"letter1", "abcXYZ", ""},
		{"letter1", strings.Repeat("a", 32), ""},
		{"letter1", strings.Repeat("a", 33), "longer than 32 characters"},
		{"letter1", "abc1", "not letters only"},
		{"letter1", "ab c", "not letters only"},
		{"letter1", "ａｂ", "not letters only"},
		{"letter1", "café", "not letters only"},

		// symbol
		{"symbol1", "!?", ""},
		{"symbol1", "%$#@&", ""},
		{"symbol1", "%$#@&*", "longer than 5 characters"},
		{"symbol1", "，。", ""},
		{"symbol1", "a!", "not symbols only"},
		{"symbol1", "1", "not symbols only"},
		{"symbol1", "! ?", "not symbols only"},

		// character_string
		{"character_string1", "ORDER-2019_10/01#1", ""},
		{"character_string1", strings.Repeat("x", 32), ""},
		{"character_string1", strings.Repeat("x", 33), "longer than 32 characters"},
		{"character_string1", "ab cd", "not ASCII letters, digits and symbols only"},
		{"character_string1", "订单1", "not ASCII letters, digits and symbols only"},
		{"character_string1", "１２", "not ASCII letters, digits and symbols only"},

		// time
		{"time1", "15:01", ""},
		{"time1", "9:05", ""},
		{"time1", "00:00:59", ""},
		{"time1", "23:59", ""},
		{"time1", "24:00", "not a time"},
		{"time1", "15:60", "not a time"},
		{"time1", "15:1", "not a time"},
		{"time1", "15", "not a time"},
		{"time1", "2019年10月1日 15:01", ""},
		{"time1", "2019-10-01 15:01:02", ""},
		{"time1", "10月1日 15:01", ""},
		{"time1", "15:01~16:00", ""},
		{"time1", "15:01 ~ 16:00", ""},
		{"time1", "2019年10月1日 15:01~2019年10月1日 17:00", ""},
		{"time1", "15:01~", "not a time"},
		{"time1", "15:01~16:00~17:00", "not a time"},
		{"time1", "2019年10月1日", "not a time"},
		{"time1", "3pm", "not a time"},
		{"time1", "１５:01", "not a time"},

		// date
		{"date1", "2019年10月1日", ""},
		{"date1", "2019-10-01", ""},
		{"date1", "2019/10/1", ""},
		{"date1", "2019.10.01", ""},
		{"date1", "2019年10月", ""},
		{"date1", "10月1日", ""},
		{"date1", "2月29日", ""},
		{"date1", "2020-02-29", ""},
		{"date1", "2019-02-29", "not a date"},
		{"date1", "2019-13-01", "not a date"},
		{"date1", "2019-10-32", "not a date"},
		{"date1", "2019-10/01", "not a date"},
		{"date1", "19-10-01", "not a date"},
		{"date1", "2019年13月", "not a date"},
		{"date1", "2019年10月1日 15:01", ""},
		{"date1", "2019-10-01 15:01", ""},
		{"date1", "2019-10-01~2019-10-07", ""},
		{"date1", "2019年10月1日 ~ 2019年10月7日", ""},
		{"date1", "2019-10-01 25:00", "not a date"},
		{"date1", "15:01", "not a date"},
		{"date1", "yesterday", "not a date"},

		// amount
		{"amount1", "¥12.50", ""},
		{"amount1", "￥12.50", ""},
		{"amount1", "$3", ""},
		{"amount1", "€0.99", ""},
		{"amount1", "£1", ""},
		{"amount1", "12.50元", ""},
		{"amount1", "¥12.50元", ""},
		{"amount1", "12.50", ""},
		{"amount1", "¥" + strings.Repeat("9", 10) + ".99", ""},
		{"amount1", "¥" + strings.Repeat("9", 11), "more than 10 integer digits"},
		{"amount1", "¥¥12", "not an amount"},
		{"amount1", "¥１２", "not an amount"},
		{"amount1", "１２元", "not an amount"},
		{"amount1", "12元元", "not an amount"},
		{"amount1", "元", "not an amount"},
		{"amount1", "¥", "not an amount"},
		{"amount1", "-¥12", "not an amount"},
		{"amount1", "¥-12", "not an amount"},
		{"amount1", "1,234.00", "not an amount"},
		{"amount1", "¥12.", "not an amount"},
		{"amount1", "12 元", "not an amount"},
		{"amount1", "RMB12", "not an amount"},

		// phone_number
		{"phone_number1", "+86 138-0013-8000", ""},
		{"phone_number1", "(010)12345678", ""},
		{"phone_number1", "13800138000", ""},
		{"phone_number1", strings.Repeat("1", 17), ""},
		{"phone_number1", strings.Repeat("1", 18), "longer than 17 characters"},
		{"phone_number1", "138a0013800", "not a phone number"},
		{"phone_number1", "---", "not a phone number"},
		{"phone_number1", " 138", "not a phone number"},
		{"phone_number1", "１３８", "not a phone number"},

		// car_number
		{"car_number1", "粤B12345", ""},
		{"car_number1", "粤B1234学", ""},
		{"car_number1", "粤AD12345", ""},
		{"car_number1", "粤AD123456", "longer than 8 characters"},
		{"car_number1", "B12345", ""},
		{"car_number1", "粤B12中45", "not a car number"},
		{"car_number1", "粤B·12345", "not a car number"},
		{"car_number1", "粤", "not a car number"},

		// name
		{"name1", "张三", ""},
		{"name1", "阿卜杜·热合曼", ""},
		{"name1", strings.Repeat("张", 10), ""},
		{"name1", strings.Repeat("张", 11), "longer than 10 characters"},
		{"name1", "John Smith", ""},
		{"name1", strings.Repeat("a", 20), ""},
		{"name1", strings.Repeat("a", 21), "longer than 20 characters"},
		{"name1", "张John", ""},
		{"name1", "张" + strings.Repeat("a", 9), ""},
		{"name1", "张" + strings.Repeat("a", 10), "longer than 10 characters"},
		{"name1", "R2D2", "not a name"},

		// phrase
		{"phrase1", "已发货", ""},
		{"phrase1", "五个汉字啊", ""},
		{"phrase1", "六个汉字啊啊", "longer than 5 characters"},
		{"phrase1", "abc", "not Chinese characters only"},
		{"phrase1", "已 发货", "not Chinese characters only"},
		{"phrase1", "已发货!", "not Chinese characters only"},

		// enum with no list: anything non-empty
		{"enum1", "whatever", ""},

		// keys
		{"colour1", "x", `unknown type "colour"`},
	}
	for _, tt := range tests {
		err := Check(tt.key, tt.value, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.want == "" && err != nil || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("Check(%q, %q) = %q, want %q", tt.key, tt.value, got, tt.want)
		}
	}
}

func TestCheckEnum(t *testing.T) {
	allowed := []string{"已发货", "已签收"}
	tests := []struct {
		value string
		enum  []string
		ok    bool
	}{
		{"已发货", allowed, true},
		{"已签收", allowed, true},
		{"已取消", allowed, false},
		{"已发货 ", allowed, false},
		{"anything", nil, true},
		{"anything", []string{}, false},
	}
	for _, tt := range tests {
		err := CheckType(Enum, tt.value, tt.enum)
		if (err == nil) != tt.ok {
			t.Errorf("CheckType(enum, %q, %v) = %v, want ok=%v", tt.value, tt.enum, err, tt.ok)
		}
	}
}

func TestTooLongIs(t *testing.T) {
	err := Check("thing1", strings.Repeat("a", 21), nil)
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("errors.Is(%v, ErrTooLong) = false", err)
	}
	if err := Check("amount1", "x", nil); errors.Is(err, ErrTooLong) {
		t.Fatalf("errors.Is(%v, ErrTooLong) = true", err)
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"hello", 5, "hello"},
		{"hello", 10, "hello"},
		{"hello!", 5, "hell…"},
		{"降价了快来看看", 4, "降价了…"},
		{"降价了快来看看", 7, "降价了快来看看"},
		{"ab cd", 4, "ab…"},
		{"abc", 1, "…"},
		{"abc", 0, ""},
		{"abc", -1, ""},
		{"", 3, ""},
		{"a\xffb", 5, "a\uFFFDb"},
		{"🎉🎉🎉", 2, "🎉…"},
		{strings.Repeat("好", 25), 20, strings.Repeat("好", 19) + "…"},
	}
	for _, tt := range tests {
		if got := Truncate(tt.s, tt.n); got != tt.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
		}
	}
	// A truncated thing always passes the thing rule.
	if err := Check("thing1", Truncate(strings.Repeat("好", 25), 20), nil); err != nil {
		t.Errorf("truncated thing fails: %v", err)
	}
}

func TestMaxLen(t *testing.T) {
	for _, typ := range Types {
		max := typ.MaxLen()
		if max == 0 {
			continue
		}
		var long string
		switch typ {
		case Thing, Letter, CharacterString, Name:
			long = strings.Repeat("a", max+1)
			if typ == Name {
				long = strings.Repeat("张", max+1)
			}
		case Number, PhoneNumber:
			long = strings.Repeat("1", max+1)
		case Symbol:
			long = strings.Repeat("!", max+1)
		case ShortThing:
			long = strings.Repeat("好", max+1)
		case Phrase:
			long = strings.Repeat("好", max+1)
		case CarNumber:
			long = strings.Repeat("A", max+1)
		}
		if err := CheckType(typ, long, nil); err == nil {
			t.Errorf("%s: %d characters accepted, MaxLen %d", typ, max+1, max)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{"thing1", "amount2", "date3", "time4", "name5", "car_number6", "x", "character_string12"} {
		f.Add(s, "¥12.50", 20)
		f.Add(s, "2019年10月1日 15:01~16:00", 5)
	}
	f.Add("number1", "-1.5", 3)
	f.Add("phone_number1", "+86 (10) 1234", 0)
	f.Add("short_thing1", "pages/a/b?id=1&x=耐克", 5)
	f.Fuzz(func(t *testing.T, key, value string, n int) {
		_ = Check(key, value, nil)
		_ = Check(key, value, []string{value})
		_, _, _ = Parse(key)
		if CheckPage(value) == nil && value != "" {
			if len(value) > MaxPageLen || value[0] == '/' || !utf8.ValidString(value) || strings.ContainsAny(value, " \t\r\n") {
				t.Fatalf("CheckPage(%q) accepted a page it must refuse", value)
			}
			if PagePath(value) == "" {
				t.Fatalf("CheckPage(%q) accepted a page without a path", value)
			}
		}
		if n > 100 || n < -1 {
			n %= 100
		}
		got := Truncate(value, n)
		if !utf8.ValidString(got) {
			t.Fatalf("Truncate(%q, %d) = %q: invalid UTF-8", value, n, got)
		}
		if c := utf8.RuneCountInString(got); c > n && !(n <= 0 && c == 0) {
			t.Fatalf("Truncate(%q, %d) = %q: %d runes", value, n, got, c)
		}
	})
}

// TestShortThing: short_thing takes at most 5 characters (runes) of any
// kind, like a thing of 5; an emoji of several code points counts as
// several; longer values are ErrTooLong so the overflow policy may shorten
// them.
func TestShortThing(t *testing.T) {
	tests := []struct {
		value string
		want  string // "" = valid
	}{
		{"配送中", ""},
		{"已发货了吗", ""}, // exactly 5
		{"已发货了吗？", "longer than 5 characters"}, // 6
		{"abcde", ""},
		{"abcdef", "longer than 5 characters"},
		{"D-3", ""},
		{"12345", ""},
		{"🎉🎉🎉🎉🎉", ""}, // 5 emoji of one code point
		{"🎉🎉🎉🎉🎉🎉", "longer than 5 characters"},
		{"👍🏽👍🏽👍🏽", "longer than 5 characters"},  // 3 emoji with skin tone: 6 code points
		{"👨‍👩‍👧", ""},                           // family: 5 code points (3 people, 2 joiners)
		{"👨‍👩‍👧‍👦", "longer than 5 characters"}, // 7 code points
		{"", "empty"},
		{"a\nb", "contains a control character"},
		{"ab\xff", "not valid UTF-8"},
	}
	for _, tt := range tests {
		err := Check("short_thing3", tt.value, nil)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("Check(short_thing3, %q) = %q, want %q", tt.value, got, tt.want)
		}
		if tt.want == "longer than 5 characters" && !errors.Is(err, ErrTooLong) {
			t.Errorf("Check(short_thing3, %q): not ErrTooLong", tt.value)
		}
	}
	if n := ShortThing.MaxLen(); n != 5 {
		t.Errorf("ShortThing.MaxLen() = %d, want 5", n)
	}
	// The ellipsis policy keeps a shortened value valid.
	if got := Truncate("已发货了吗？", ShortThing.MaxLen()); got != "已发货了…" || Check("short_thing1", got, nil) != nil {
		t.Errorf("Truncate to 5 = %q", got)
	}
}

func TestTruncatable(t *testing.T) {
	for _, typ := range Types {
		want := typ == Thing || typ == ShortThing
		if typ.Truncatable() != want {
			t.Errorf("%s.Truncatable() = %v, want %v", typ, !want, want)
		}
	}
}

// TestEnumValues: an enum value must be one of the template's values
// exactly: no trimming, no case folding, no prefix match.
func TestEnumValues(t *testing.T) {
	values := []string{"已发货", "已签收", "Shipped"}
	tests := []struct {
		value string
		ok    bool
	}{
		{"已发货", true},
		{"Shipped", true},
		{"shipped", false},
		{"已发", false},
		{" 已签收", false},
		{"已签收\n", false},
		{"", false},
	}
	for _, tt := range tests {
		err := Check("enum4", tt.value, values)
		if (err == nil) != tt.ok {
			t.Errorf("Check(enum4, %q) = %v, want ok=%v", tt.value, err, tt.ok)
		}
		if err != nil && tt.value != "" && !strings.Contains(err.Error(), "enum") && !strings.Contains(err.Error(), "control") {
			t.Errorf("Check(enum4, %q) = %q: want the reason to say enum", tt.value, err)
		}
	}
}

func TestCheckPage(t *testing.T) {
	tests := []struct {
		page string
		want string // "" = valid, else a substring of the reason
	}{
		{"", ""},
		{"pages/index/index", ""},
		{"pages/goods/detail?id=42&from=push", ""},
		{"pages/goods/detail?name=耐克", ""},
		{"index", ""},
		{"sub-pkg/pages_2/a.b@x", ""},
		{"/pages/index/index", "starts with /"},
		{"pages//index", "empty"},
		{"pages/../secret", "empty, . or .."},
		{"pages/index/", "empty"},
		{"?id=1", "no path"},
		{"pages/商品/index", "want ASCII letters"},
		{"pages/a b", "want ASCII letters"},
		{"pages/a?x=a b", "space or a control"},
		{"pages/a?x=a\tb", "space or a control"},
		{"pages/a?x=\xff", "not valid UTF-8"},
		{"pages/a?q=" + strings.Repeat("x", MaxPageLen-len("pages/a?q=")), ""},
		{"pages/a?q=" + strings.Repeat("x", MaxPageLen-len("pages/a?q=")+1), "longer than 1024 bytes"},
	}
	for _, tt := range tests {
		err := CheckPage(tt.page)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("CheckPage(%.40q) = %v, want ok", tt.page, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("CheckPage(%.40q) = %v, want %q", tt.page, err, tt.want)
		}
	}
	if got := PagePath("/pages/a/b?id=1"); got != "pages/a/b" {
		t.Errorf("PagePath = %q", got)
	}
}
