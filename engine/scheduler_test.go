package engine

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestNextTick(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	parse := func(spec string) cron.Schedule {
		s, err := cron.ParseStandard(spec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		spec string
		now  time.Time
		want time.Time
	}{
		{"@every 5m", time.Date(2026, 11, 22, 10, 3, 17, 0, time.UTC), time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC)},
		{"@every 5m", time.Date(2026, 11, 22, 10, 5, 0, 0, time.UTC), time.Date(2026, 11, 22, 10, 10, 0, 0, time.UTC)},
		{"@every 2s", time.Date(2026, 11, 22, 10, 0, 1, 500, time.UTC), time.Date(2026, 11, 22, 10, 0, 2, 0, time.UTC)},
		{"*/10 * * * *", time.Date(2026, 11, 22, 10, 3, 0, 0, sh), time.Date(2026, 11, 22, 10, 10, 0, 0, sh)},
		{"CRON_TZ=Asia/Shanghai 0 9 * * *", time.Date(2026, 11, 22, 2, 0, 0, 0, time.UTC), time.Date(2026, 11, 23, 9, 0, 0, 0, sh)},
	}
	for _, c := range cases {
		if got := nextTick(parse(c.spec), c.now); !got.Equal(c.want) {
			t.Errorf("%s after %s = %s, want %s", c.spec, c.now, got, c.want)
		}
	}
	// Two replicas starting at different moments agree on the occurrence.
	s := parse("@every 1m")
	a := nextTick(s, time.Date(2026, 1, 1, 0, 0, 12, 0, time.UTC))
	b := nextTick(s, time.Date(2026, 1, 1, 0, 0, 47, 0, time.UTC))
	if !a.Equal(b) {
		t.Errorf("replicas disagree: %s vs %s", a, b)
	}
}
