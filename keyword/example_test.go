package keyword_test

import (
	"fmt"

	"github.com/wxcampaign/wxcampaign/keyword"
)

func ExampleCheck() {
	fmt.Println(keyword.Check("amount2", "¥12.50", nil))
	fmt.Println(keyword.Check("amount2", "12 yuan", nil))
	fmt.Println(keyword.Check("thing1", "一二三四五六七八九十一二三四五六七八九十一", nil))
	fmt.Println(keyword.Check("date3", "2019年10月1日 15:01", nil))
	// Output:
	// <nil>
	// not an amount
	// longer than 20 characters
	// <nil>
}

func ExampleParse() {
	t, i, err := keyword.Parse("character_string12")
	fmt.Println(t, i, err)
	_, _, err = keyword.Parse("colour1")
	fmt.Println(err)
	// Output:
	// character_string 12 <nil>
	// keyword: "colour1": unknown type "colour"
}

func ExampleTruncate() {
	fmt.Println(keyword.Truncate("降价了，快来看看这双限量版球鞋，仅剩最后三双库存", 20))
	// Output:
	// 降价了，快来看看这双限量版球鞋，仅剩最…
}
