package wxcampaign

// Reason is why a grant ended a run with its outcome: a code from the
// closed set below. Codes are stable identifiers (metric labels, JSON,
// the send log's reason column); what varies (the rule's error, the key
// that failed, WeChat's errmsg) goes into a free-text detail beside it,
// never into the code.
type Reason string

// Reason codes. The outcome tells sent, skipped, deferred, failed or
// unknown; the reason tells why.
const (
	ReasonOK        Reason = "ok"        // sent: WeChat answered 0
	ReasonConfirmed Reason = "confirmed" // sent: an ambiguous send confirmed by its delivery event

	ReasonRuleFalse        Reason = "rule_false"         // the campaign's when rule is false
	ReasonRuleError        Reason = "rule_error"         // the when rule failed to evaluate for this grant
	ReasonFactError        Reason = "fact_error"         // a fact could not be read for this grant
	ReasonFactDuplicateKey Reason = "fact_duplicate_key" // a fact query returned two rows for the grant's key
	ReasonRenderInvalid    Reason = "render_invalid"     // a data value or the page breaks WeChat's rules
	ReasonRepeatOnce       Reason = "repeat_once"        // long-term grant already sent by this campaign
	ReasonPerUserPerRun    Reason = "per_user_per_run"   // another grant of the user and template is sent this run
	ReasonQuietHours       Reason = "quiet_hours"        // deferred (or dropped) by quiet hours
	ReasonHeldOut          Reason = "held_out"           // kept unsent by the campaign's holdout (lift measurement); the credit stays

	// ReasonReservedForPriority: sending would spend one of the user's last
	// credits of the template that a campaign of higher priority reserves.
	ReasonReservedForPriority Reason = "reserved_for_priority"

	ReasonCappedUserTemplate Reason = "capped_user_template" // a user_template frequency cap is reached
	ReasonCappedUser         Reason = "capped_user"          // a user frequency cap is reached
	ReasonCappedTemplate     Reason = "capped_template"      // a template frequency cap is reached

	ReasonInFlightElsewhere Reason = "in_flight_elsewhere" // another run is sending this grant
	ReasonAlreadyAttempted  Reason = "already_attempted"   // this occurrence already tried this grant
	ReasonAmbiguousHold     Reason = "ambiguous_hold"      // an earlier send to the user may have arrived and is not settled
	ReasonShutdown          Reason = "shutdown"            // the process stopped before sending
	ReasonRunStopped        Reason = "run_stopped"         // the run stopped (campaign misconfigured)
	ReasonQuotaPaused       Reason = "quota_paused"        // WeChat's daily quota (45009): sending paused
	ReasonRetriesExhausted  Reason = "retries_exhausted"   // retryable failures (-1, 43108, 502/503, token churn) on every try
	ReasonSetAside          Reason = "set_aside"           // failed the same way in several runs in a row: not tried again

	ReasonAmbiguous     Reason = "ambiguous"         // the send may have arrived (timeout after writing, HTTP 5xx)
	ReasonAwaitingEvent Reason = "awaiting_event"    // ambiguous, left in flight for its delivery event (reconcile)
	ReasonHolderDied    Reason = "holder_died"       // the sending process died with the send in flight
	ReasonNoEvent       Reason = "no_delivery_event" // no delivery event came within the grace period: not delivered

	ReasonWeChat40003         Reason = "wechat_40003"         // touser invalid
	ReasonWeChat41030         Reason = "wechat_41030"         // page invalid or not in the live version
	ReasonWeChat43101         Reason = "wechat_43101"         // the user has no subscription left
	ReasonWeChat45168         Reason = "wechat_45168"         // content hits sensitive words
	ReasonWeChat47003         Reason = "wechat_47003"         // a data value breaks its keyword rule
	ReasonWeChatMisconfigured Reason = "wechat_misconfigured" // campaign-level refusal (40037, 43107, a constant page refused)
	ReasonWeChatConfig        Reason = "wechat_config"        // the engine's WeChat credentials or address are refused
	ReasonWeChatOther         Reason = "wechat_other"         // any other WeChat refusal; the errcode is in the detail
)

var reasons = []Reason{
	ReasonOK, ReasonConfirmed,
	ReasonRuleFalse, ReasonRuleError, ReasonFactError, ReasonFactDuplicateKey, ReasonRenderInvalid,
	ReasonRepeatOnce, ReasonPerUserPerRun, ReasonQuietHours, ReasonHeldOut, ReasonReservedForPriority,
	ReasonCappedUserTemplate, ReasonCappedUser, ReasonCappedTemplate,
	ReasonInFlightElsewhere, ReasonAlreadyAttempted, ReasonAmbiguousHold, ReasonShutdown, ReasonRunStopped,
	ReasonQuotaPaused, ReasonRetriesExhausted, ReasonSetAside,
	ReasonAmbiguous, ReasonAwaitingEvent, ReasonHolderDied, ReasonNoEvent,
	ReasonWeChat40003, ReasonWeChat41030, ReasonWeChat43101, ReasonWeChat45168, ReasonWeChat47003,
	ReasonWeChatMisconfigured, ReasonWeChatConfig, ReasonWeChatOther,
}

// Reasons returns every reason code.
func Reasons() []Reason { return append([]Reason(nil), reasons...) }

// Valid reports whether r is one of the declared codes.
func (r Reason) Valid() bool {
	for _, x := range reasons {
		if x == r {
			return true
		}
	}
	return false
}

// Explain joins a reason and its detail for people: "code: detail", or the
// code alone.
func Explain(r Reason, detail string) string {
	if detail == "" {
		return string(r)
	}
	return string(r) + ": " + detail
}
