//go:build !wasip1

package lintel_test

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

// TestFakeHostRateLimitMatchesTheHost: the fake host's rate_limit makes the
// decisions testdata/gcra.json holds, which core/state's store makes too
// (the SDK, a module of its own, cannot share the host's code).
func TestFakeHostRateLimitMatchesTheHost(t *testing.T) {
	b, err := os.ReadFile("../../testdata/gcra.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Cases []struct {
			Name       string `json:"name"`
			IntervalMS int64  `json:"interval_ms"`
			Burst      int    `json:"burst"`
			Steps      []struct {
				AtMS         int64 `json:"at_ms"`
				Allowed      bool  `json:"allowed"`
				Remaining    int   `json:"remaining"`
				RetryAfterMS int64 `json:"retry_after_ms"`
				ResetMS      int64 `json:"reset_ms"`
			} `json:"steps"`
		} `json:"cases"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatal(err)
	}
	for _, c := range table.Cases {
		var got lintel.RateDecision
		interval := time.Duration(c.IntervalMS) * time.Millisecond
		lintel.HandleRequest(func(lintel.Request, lintel.Response) bool {
			got, _ = lintel.RateLimit("k", interval, c.Burst)
			return true
		})
		h := lintel.NewFakeHost()
		start := time.Unix(1_700_000_000, 0)
		for i, s := range c.Steps {
			now := start.Add(time.Duration(s.AtMS) * time.Millisecond)
			h.Now = func() time.Time { return now }
			h.Run()
			want := lintel.RateDecision{Allowed: s.Allowed, Remaining: s.Remaining, RetryAfter: time.Duration(s.RetryAfterMS) * time.Millisecond, Reset: time.Duration(s.ResetMS) * time.Millisecond}
			if got != want {
				t.Errorf("%s, step %d: %+v, want %+v", c.Name, i, got, want)
			}
		}
	}
}
