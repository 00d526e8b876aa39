package wxcampaign_test

import (
	"testing"

	"github.com/wxcampaign/wxcampaign"
)

func TestPopupResult(t *testing.T) {
	for status, want := range map[string]string{
		"accept": "accept", "acceptWithAudio": "accept", "acceptWithAlert": "accept",
		"reject": "reject", "ban": "ban", "filter": "filter", "": "", "Accept": "", "rejected": "",
	} {
		if got := wxcampaign.PopupResult(status); got != want {
			t.Errorf("PopupResult(%q) = %q, want %q", status, got, want)
		}
	}
}
