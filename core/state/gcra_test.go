package state

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

// gcraCases are the decisions testdata/gcra.json holds, which the Go SDK's
// fake host must make too: the two cannot share code (the SDK is its own
// module without dependencies), so they share this table.
type gcraCases struct {
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

func TestGCRADecisionsMatchTheSharedTable(t *testing.T) {
	b, err := os.ReadFile("../../testdata/gcra.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases gcraCases
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	for _, c := range cases.Cases {
		m := NewMemory(0)
		start := time.Unix(1_700_000_000, 0)
		now := start
		m.now = func() time.Time { return now }
		for i, s := range c.Steps {
			now = start.Add(time.Duration(s.AtMS) * time.Millisecond)
			d, err := m.GCRA(ctx, "k", time.Duration(c.IntervalMS)*time.Millisecond, c.Burst)
			want := Decision{Allowed: s.Allowed, Remaining: s.Remaining, RetryAfter: time.Duration(s.RetryAfterMS) * time.Millisecond, Reset: time.Duration(s.ResetMS) * time.Millisecond}
			if err != nil || d != want {
				t.Errorf("%s, step %d: %+v %v, want %+v", c.Name, i, d, err, want)
			}
		}
		m.Close()
	}
}
