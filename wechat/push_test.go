package wechat_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wxcampaign/wxcampaign/wechat"
)

func TestSignPush(t *testing.T) {
	// sha1("1372623149" + "1409659813" + "AAAAA"): the three sorted as strings.
	const want = "aea4bea485da97e0dd0c1fdae5f4c542858bffb9"
	if got := wechat.SignPush("AAAAA", "1409659813", "1372623149"); got != want {
		t.Fatalf("SignPush = %s, want %s", got, want)
	}
	// The order of the arguments does not matter, only their sorted order.
	if got := wechat.SignPush("1372623149", "AAAAA", "1409659813"); got != want {
		t.Fatalf("SignPush permuted = %s, want %s", got, want)
	}
	tests := []struct {
		name                  string
		token, sig, ts, nonce string
		want                  bool
	}{
		{"valid", "AAAAA", want, "1409659813", "1372623149", true},
		{"upper-case hex", "AAAAA", strings.ToUpper(want), "1409659813", "1372623149", true},
		{"wrong token", "AAAAB", want, "1409659813", "1372623149", false},
		{"wrong timestamp", "AAAAA", want, "1409659814", "1372623149", false},
		{"wrong nonce", "AAAAA", want, "1409659813", "1372623148", false},
		{"empty signature", "AAAAA", "", "1409659813", "1372623149", false},
		{"short signature", "AAAAA", want[:39], "1409659813", "1372623149", false},
		{"empty token never verifies", "", wechat.SignPush("", "1", "2"), "1", "2", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wechat.VerifyPushSignature(tt.token, tt.sig, tt.ts, tt.nonce); got != tt.want {
				t.Fatalf("VerifyPushSignature = %v, want %v", got, tt.want)
			}
		})
	}
}

// Bodies shaped like WeChat's documented samples.
const (
	sentJSONOne = `{
  "ToUserName": "gh_123456789abc",
  "FromUserName": "o7esq5PHRGBQYmeNyfG064wEFVpQ",
  "CreateTime": "1620963428",
  "MsgType": "event",
  "Event": "subscribe_msg_sent_event",
  "List": {
      "TemplateId": "BEwX0BOT3MqK3Uc5oTU3CGBqzjpndk2jzUb5vQhRK2w",
      "MsgID": "1864323726461255680",
      "ErrorCode": "0",
      "ErrorStatus": "success"
    }
}`
	sentJSONMany = `{"ToUserName":"gh_123456789abc","FromUserName":"o-user","CreateTime":1620963428,"MsgType":"event",
"Event":"subscribe_msg_sent_event","List":[
 {"TemplateId":"T1","MsgID":"1864323726461255680","ErrorCode":"0","ErrorStatus":"success"},
 {"TemplateId":"T2","MsgID":1864323726461255681,"ErrorCode":10005,"ErrorStatus":"fail_user_block"}]}`
	sentXMLOne = `<xml>
    <ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
    <FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
    <CreateTime>1620963428</CreateTime>
    <MsgType><![CDATA[event]]></MsgType>
    <Event><![CDATA[subscribe_msg_sent_event]]></Event>
    <SubscribeMsgSentEvent>
        <List>
            <TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
            <MsgID>1700827132819554304</MsgID>
            <ErrorCode>0</ErrorCode>
            <ErrorStatus><![CDATA[success]]></ErrorStatus>
        </List>
    </SubscribeMsgSentEvent>
</xml>`
	sentXMLMany = `<?xml version="1.0" encoding="UTF-8"?>
<xml><ToUserName><![CDATA[gh_123456789abc]]></ToUserName><FromUserName><![CDATA[o-user]]></FromUserName>
<CreateTime>1620963428</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe_msg_sent_event]]></Event>
<SubscribeMsgSentEvent>
<List><TemplateId><![CDATA[T1]]></TemplateId><MsgID>1</MsgID><ErrorCode>0</ErrorCode><ErrorStatus><![CDATA[success]]></ErrorStatus></List>
<List><TemplateId><![CDATA[T2]]></TemplateId><MsgId>2</MsgId><ErrorCode>10006</ErrorCode><ErrorStatus><![CDATA[fail_system_error]]></ErrorStatus></List>
</SubscribeMsgSentEvent></xml>
`
	popupJSONMany = `{
"ToUserName": "gh_123456789abc",
"FromUserName": "o7esq5OI1Uej6Xixw1lA2H7XDVbc",
"CreateTime": "1620973045",
"MsgType": "event",
"Event": "subscribe_msg_popup_event",
"List": [ {
"TemplateId": "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68",
"SubscribeStatusString": "accept",
"PopupScene": "0"
}, {
"TemplateId": "T-OTHER",
"SubscribeStatusString": "reject",
"PopupScene": 0
}]
}`
	popupJSONOne = `{"ToUserName":"gh_1","FromUserName":"o-1","CreateTime":"1620973045","MsgType":"event","Event":"subscribe_msg_popup_event",
"List":{"TemplateId":"T1","SubscribeStatusString":"ban","PopupScene":"0"}}`
	popupXMLMany = `<xml>
<ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
<FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
<CreateTime>1610969440</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe_msg_popup_event]]></Event>
<SubscribeMsgPopupEvent>
<List>
<TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
<SubscribeStatusString><![CDATA[accept]]></SubscribeStatusString>
<PopupScene>2</PopupScene>
</List>
<List>
<TemplateId><![CDATA[9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI]]></TemplateId>
<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
<PopupScene>2</PopupScene>
</List>
</SubscribeMsgPopupEvent>
</xml>`
	changeXMLOne = `<xml>
<ToUserName><![CDATA[gh_123456789abc]]></ToUserName>
<FromUserName><![CDATA[otFpruAK8D-E6EfStSYonYSBZ8_4]]></FromUserName>
<CreateTime>1610969440</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[subscribe_msg_change_event]]></Event>
<SubscribeMsgChangeEvent>
<List>
<TemplateId><![CDATA[VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc]]></TemplateId>
<SubscribeStatusString><![CDATA[reject]]></SubscribeStatusString>
</List>
</SubscribeMsgChangeEvent>
</xml>`
	changeJSONOne = `{"ToUserName":"gh_123456789abc","FromUserName":"o7esq5OI1Uej6Xixw1lA2H7XDVbc","CreateTime":"1610969440",
"MsgType":"event","Event":"subscribe_msg_change_event","List":{"TemplateId":"T1","SubscribeStatusString":"reject"}}`
	changeJSONWrapped = `{"ToUserName":"gh_1","FromUserName":"o-1","CreateTime":1610969440,"MsgType":"event","Event":"subscribe_msg_change_event",
"SubscribeMsgChangeEvent":{"List":[{"TemplateId":"T1","SubscribeStatusString":"reject"},{"TemplateId":"T2","SubscribeStatusString":"reject"}]}}`
	textJSON    = `{"ToUserName":"gh_1","FromUserName":"o-1","CreateTime":1482048670,"MsgType":"text","Content":"hello","MsgId":1234567890123456}`
	enterXML    = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o-1]]></FromUserName><CreateTime>1482048670</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[user_enter_tempsession]]></Event><SessionFrom><![CDATA[x]]></SessionFrom></xml>`
	encryptJSON = `{"ToUserName":"gh_1","Encrypt":"bXlzZWNyZXQ="}`
	encryptXML  = `<xml><ToUserName><![CDATA[gh_1]]></ToUserName><Encrypt><![CDATA[bXlzZWNyZXQ=]]></Encrypt></xml>`
)

func TestParsePush(t *testing.T) {
	at := func(sec int64) time.Time { return time.Unix(sec, 0).UTC() }
	tests := []struct {
		name string
		body string
		want wechat.PushEvent
	}{
		{"sent JSON one (List object, strings)", sentJSONOne, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "o7esq5PHRGBQYmeNyfG064wEFVpQ",
			MsgType: "event", Event: wechat.EventSubscribeSent, CreateTime: at(1620963428), Items: []wechat.PushItem{
				{TemplateID: "BEwX0BOT3MqK3Uc5oTU3CGBqzjpndk2jzUb5vQhRK2w", MsgID: 1864323726461255680, ErrorStatus: "success"}}}},
		{"sent JSON many (List array, numbers)", sentJSONMany, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "o-user",
			MsgType: "event", Event: wechat.EventSubscribeSent, CreateTime: at(1620963428), Items: []wechat.PushItem{
				{TemplateID: "T1", MsgID: 1864323726461255680, ErrorStatus: "success"},
				{TemplateID: "T2", MsgID: 1864323726461255681, ErrorCode: 10005, ErrorStatus: "fail_user_block"}}}},
		{"sent XML one", sentXMLOne, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "otFpruAK8D-E6EfStSYonYSBZ8_4",
			MsgType: "event", Event: wechat.EventSubscribeSent, CreateTime: at(1620963428), Items: []wechat.PushItem{
				{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", MsgID: 1700827132819554304, ErrorStatus: "success"}}}},
		{"sent XML many (MsgID and MsgId)", sentXMLMany, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "o-user",
			MsgType: "event", Event: wechat.EventSubscribeSent, CreateTime: at(1620963428), Items: []wechat.PushItem{
				{TemplateID: "T1", MsgID: 1, ErrorStatus: "success"},
				{TemplateID: "T2", MsgID: 2, ErrorCode: 10006, ErrorStatus: "fail_system_error"}}}},
		{"popup JSON many", popupJSONMany, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "o7esq5OI1Uej6Xixw1lA2H7XDVbc",
			MsgType: "event", Event: wechat.EventSubscribePopup, CreateTime: at(1620973045), Items: []wechat.PushItem{
				{TemplateID: "hD-ixGOhYmUfjOnI8MCzQMPshzGVeux_2vzyvQu7O68", SubscribeStatus: "accept", PopupScene: "0"},
				{TemplateID: "T-OTHER", SubscribeStatus: "reject", PopupScene: "0"}}}},
		{"popup JSON one", popupJSONOne, wechat.PushEvent{ToUserName: "gh_1", OpenID: "o-1",
			MsgType: "event", Event: wechat.EventSubscribePopup, CreateTime: at(1620973045), Items: []wechat.PushItem{
				{TemplateID: "T1", SubscribeStatus: "ban", PopupScene: "0"}}}},
		{"popup XML many", popupXMLMany, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "otFpruAK8D-E6EfStSYonYSBZ8_4",
			MsgType: "event", Event: wechat.EventSubscribePopup, CreateTime: at(1610969440), Items: []wechat.PushItem{
				{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", SubscribeStatus: "accept", PopupScene: "2"},
				{TemplateID: "9nLIlbOQZC5Y89AZteFEux3WCXRRRG5Wfzkpssu4bLI", SubscribeStatus: "reject", PopupScene: "2"}}}},
		{"change XML one", changeXMLOne, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "otFpruAK8D-E6EfStSYonYSBZ8_4",
			MsgType: "event", Event: wechat.EventSubscribeChange, CreateTime: at(1610969440), Items: []wechat.PushItem{
				{TemplateID: "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc", SubscribeStatus: "reject"}}}},
		{"change JSON one", changeJSONOne, wechat.PushEvent{ToUserName: "gh_123456789abc", OpenID: "o7esq5OI1Uej6Xixw1lA2H7XDVbc",
			MsgType: "event", Event: wechat.EventSubscribeChange, CreateTime: at(1610969440), Items: []wechat.PushItem{
				{TemplateID: "T1", SubscribeStatus: "reject"}}}},
		{"change JSON wrapped like XML", changeJSONWrapped, wechat.PushEvent{ToUserName: "gh_1", OpenID: "o-1",
			MsgType: "event", Event: wechat.EventSubscribeChange, CreateTime: at(1610969440), Items: []wechat.PushItem{
				{TemplateID: "T1", SubscribeStatus: "reject"}, {TemplateID: "T2", SubscribeStatus: "reject"}}}},
		{"other message: header only", textJSON, wechat.PushEvent{ToUserName: "gh_1", OpenID: "o-1", MsgType: "text", CreateTime: at(1482048670)}},
		{"other event: header only", enterXML, wechat.PushEvent{ToUserName: "gh_1", OpenID: "o-1", MsgType: "event",
			Event: "user_enter_tempsession", CreateTime: at(1482048670)}},
		{"leading BOM and space", "\ufeff \n" + popupJSONOne, wechat.PushEvent{ToUserName: "gh_1", OpenID: "o-1",
			MsgType: "event", Event: wechat.EventSubscribePopup, CreateTime: at(1620973045), Items: []wechat.PushItem{
				{TemplateID: "T1", SubscribeStatus: "ban", PopupScene: "0"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wechat.ParsePush([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParsePush: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParsePush =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func TestParsePushRejects(t *testing.T) {
	sent := func(list string) string {
		return `{"FromUserName":"o-1","CreateTime":"1","MsgType":"event","Event":"subscribe_msg_sent_event","List":` + list + `}`
	}
	tests := []struct {
		name, body, want string
	}{
		{"empty", "", "empty body"},
		{"spaces", "  \n", "empty body"},
		{"not JSON or XML", "hello", "neither JSON nor XML"},
		{"JSON array", `[{"FromUserName":"o"}]`, "neither JSON nor XML"},
		{"broken JSON", `{"FromUserName":`, "json"},
		{"trailing comma", `{"FromUserName":"o-1","CreateTime":"1","MsgType":"text",}`, "json"},
		{"two JSON objects", `{"FromUserName":"o-1","CreateTime":"1","MsgType":"text"} {}`, "json"},
		{"object as a string", `{"FromUserName":{"a":1},"CreateTime":"1","MsgType":"text"}`, "string or a number"},
		{"bool as CreateTime", `{"FromUserName":"o-1","CreateTime":true,"MsgType":"text"}`, "string or a number"},
		{"no FromUserName", `{"CreateTime":"1","MsgType":"text"}`, "FromUserName missing"},
		{"no MsgType", `{"FromUserName":"o-1","CreateTime":"1"}`, "MsgType missing"},
		{"event without Event", `{"FromUserName":"o-1","CreateTime":"1","MsgType":"event"}`, "without Event"},
		{"no CreateTime", `{"FromUserName":"o-1","MsgType":"text"}`, "CreateTime missing"},
		{"bad CreateTime", `{"FromUserName":"o-1","CreateTime":"yesterday","MsgType":"text"}`, "not a unix time"},
		{"negative CreateTime", `{"FromUserName":"o-1","CreateTime":-5,"MsgType":"text"}`, "not a unix time"},
		{"fractional CreateTime", `{"FromUserName":"o-1","CreateTime":1.5,"MsgType":"text"}`, "not a unix time"},
		{"sent without List", `{"FromUserName":"o-1","CreateTime":"1","MsgType":"event","Event":"subscribe_msg_sent_event"}`, "without a List entry"},
		{"sent with empty List", sent(`[]`), "without a List entry"},
		{"List a string", sent(`"x"`), "neither an object nor an array"},
		{"List of strings", sent(`["x"]`), "json List"},
		{"no TemplateId", sent(`{"MsgID":"1","ErrorCode":"0"}`), "TemplateId missing"},
		{"no MsgID", sent(`{"TemplateId":"T","ErrorCode":"0"}`), "MsgID missing"},
		{"MsgID not a number", sent(`{"TemplateId":"T","MsgID":"abc","ErrorCode":"0"}`), "MsgID \"abc\" is not an integer"},
		{"MsgID overflows", sent(`{"TemplateId":"T","MsgID":"99999999999999999999","ErrorCode":"0"}`), "not an integer"},
		{"no ErrorCode", sent(`{"TemplateId":"T","MsgID":"1"}`), "ErrorCode missing"},
		{"ErrorCode not a number", sent(`{"TemplateId":"T","MsgID":"1","ErrorCode":"ok"}`), "ErrorCode \"ok\" is not an integer"},
		{"second entry bad", sent(`[{"TemplateId":"T","MsgID":"1","ErrorCode":"0"},{"TemplateId":"T"}]`), "entry 1: MsgID missing"},
		{"popup without status", `{"FromUserName":"o-1","CreateTime":"1","MsgType":"event","Event":"subscribe_msg_popup_event","List":{"TemplateId":"T"}}`, "SubscribeStatusString missing"},
		{"XML wrong root", `<message><FromUserName>o</FromUserName></message>`, "expected element type <xml>"},
		{"XML broken", `<xml><FromUserName>o</xml>`, "xml"},
		{"XML two roots", `<xml><FromUserName>o-1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml><xml></xml>`, "more than one root"},
		{"XML trailing text", `<xml><FromUserName>o-1</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>junk`, "text after"},
		{"XML sent without List", `<xml><FromUserName>o-1</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event></xml>`, "without a List entry"},
		{"XML List under the wrong wrapper", `<xml><FromUserName>o-1</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgPopupEvent><List><TemplateId>T</TemplateId></List></SubscribeMsgPopupEvent></xml>`, "without a List entry"},
		{"XML bad MsgID", `<xml><FromUserName>o-1</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>subscribe_msg_sent_event</Event><SubscribeMsgSentEvent><List><TemplateId>T</TemplateId><MsgID>x</MsgID><ErrorCode>0</ErrorCode></List></SubscribeMsgSentEvent></xml>`, "MsgID \"x\""},
		{"XML unknown entity", `<xml><FromUserName>&bogus;</FromUserName></xml>`, "xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wechat.ParsePush([]byte(tt.body))
			if err == nil {
				t.Fatalf("ParsePush(%q) = nil error, want one containing %q", tt.body, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "wechat: parse push: ") {
				t.Fatalf("ParsePush error %q, want it to contain %q", err, tt.want)
			}
		})
	}
	for _, body := range []string{encryptJSON, encryptXML} {
		if _, err := wechat.ParsePush([]byte(body)); !errors.Is(err, wechat.ErrPushEncrypted) {
			t.Errorf("ParsePush(%q) = %v, want ErrPushEncrypted", body, err)
		}
	}
}

func FuzzParsePush(f *testing.F) {
	for _, s := range []string{sentJSONOne, sentJSONMany, sentXMLOne, sentXMLMany, popupJSONMany, popupJSONOne, popupXMLMany,
		changeXMLOne, changeJSONOne, changeJSONWrapped, textJSON, enterXML, encryptJSON, encryptXML, "", "{}", "<xml/>",
		`{"List":[]}`, `<xml><SubscribeMsgSentEvent><List/></SubscribeMsgSentEvent></xml>`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := wechat.ParsePush(body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "wechat: parse push") {
				t.Fatalf("error without context: %v", err)
			}
			return
		}
		if ev.OpenID == "" || ev.MsgType == "" || ev.CreateTime.IsZero() && ev.CreateTime.Unix() != 0 {
			t.Fatalf("accepted an event without its header: %+v", ev)
		}
		switch ev.Event {
		case wechat.EventSubscribeSent, wechat.EventSubscribePopup, wechat.EventSubscribeChange:
			if len(ev.Items) == 0 {
				t.Fatalf("accepted %s without items", ev.Event)
			}
			for _, it := range ev.Items {
				if it.TemplateID == "" {
					t.Fatalf("accepted an item without a template id: %+v", ev)
				}
				if ev.Event != wechat.EventSubscribeSent && it.SubscribeStatus == "" {
					t.Fatalf("accepted a %s item without a status: %+v", ev.Event, ev)
				}
			}
		default:
			if len(ev.Items) != 0 {
				t.Fatalf("items on a %q event: %+v", ev.Event, ev)
			}
		}
	})
}
