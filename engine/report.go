package engine

import (
	"sort"
	"time"

	wx "github.com/wxcampaign/wxcampaign"
)

// GrantReport is the outcome of one grant in one run (or preview).
type GrantReport struct {
	GrantID int64             `json:"grant_id"`
	OpenID  string            `json:"openid"`
	Outcome wx.Outcome        `json:"outcome"`
	Reason  wx.Reason         `json:"reason"`           // a code of the closed set wx.Reasons
	Detail  string            `json:"detail,omitempty"` // free text: the rule's error, WeChat's errmsg, ...
	Data    map[string]string `json:"data,omitempty"`
	Page    string            `json:"page,omitempty"`
	MsgID   int64             `json:"msgid,omitempty"`
	Explain *Explanation      `json:"explain,omitempty"`
}

// Explanation tells, for one grant, every input of the decision: used by
// `preview --openid`.
type Explanation struct {
	Grant      wx.Grant                  `json:"grant"`
	FactKeys   map[string]any            `json:"fact_keys,omitempty"`
	Facts      map[string]map[string]any `json:"facts"`
	When       any                       `json:"when"`
	WhenError  string                    `json:"when_error,omitempty"`
	QuietHours string                    `json:"quiet_hours,omitempty"`
	Caps       []CapCheck                `json:"caps,omitempty"`
}

// CapCheck is the state of one frequency cap for one grant.
type CapCheck struct {
	Scope  string `json:"scope"`
	Max    int    `json:"max"`
	Window string `json:"window"`
	Used   int    `json:"used"`
	OK     bool   `json:"ok"`
}

// Summary is the result of one run.
type Summary struct {
	Campaign   string             `json:"campaign"`
	Occurrence time.Time          `json:"occurrence"`
	DryRun     bool               `json:"dry_run"`
	Status     string             `json:"status"`
	Looked     int                `json:"looked"`
	Counts     map[wx.Outcome]int `json:"counts"`
	// Reasons counts the grants by "outcome: reason code".
	Reasons   map[string]int `json:"reasons"`
	Duration  time.Duration  `json:"duration_ns"`
	PerSecond float64        `json:"messages_per_second"`
	// SendP50 and SendP99 are quantiles of the send calls' latency (live
	// runs; about 6% resolution).
	SendP50 time.Duration `json:"send_p50_ns,omitempty"`
	SendP99 time.Duration `json:"send_p99_ns,omitempty"`
	Error   string        `json:"error,omitempty"`
}

func newSummary(campaign string, occ time.Time, dry bool) *Summary {
	return &Summary{Campaign: campaign, Occurrence: occ, DryRun: dry,
		Counts: map[wx.Outcome]int{}, Reasons: map[string]int{}}
}

func (s *Summary) add(r *GrantReport) {
	s.Looked++
	s.Counts[r.Outcome]++
	s.Reasons[ReasonKey(r.Outcome, r.Reason)]++
}

// ReasonCount is one line of a summary's reasons.
type ReasonCount struct {
	Reason string
	Count  int
}

// SortedReasons returns the reasons by count, largest first.
func (s *Summary) SortedReasons() []ReasonCount {
	out := make([]ReasonCount, 0, len(s.Reasons))
	for r, n := range s.Reasons {
		out = append(out, ReasonCount{r, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Reason < out[j].Reason
	})
	return out
}

// Why is the report's reason for people: "code: detail".
func (r *GrantReport) Why() string { return wx.Explain(r.Reason, r.Detail) }

// ReasonKey is the key of Summary.Reasons for an outcome and a reason code.
func ReasonKey(o wx.Outcome, r wx.Reason) string { return string(o) + ": " + string(r) }
