//go:build !wasip1

package main

import (
	"strings"
	"testing"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func TestGCRA(t *testing.T) {
	if err := setup(Config{Rate: 1, Period: "1s", Burst: 5}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_000_000, 0)
	h := lintel.NewFakeHost()
	h.Now = func() time.Time { return now }
	var allowed, limited int
	for i := range 10 {
		h.Run()
		switch h.Status {
		case 200:
			allowed++
			if got, want := h.ResponseHeader.Get("RateLimit"), []string{`"default";r=4;t=1`, `"default";r=3;t=2`, `"default";r=2;t=3`, `"default";r=1;t=4`, `"default";r=0;t=5`}[i]; got != want {
				t.Errorf("request %d: RateLimit %q, want %q", i, got, want)
			}
			if h.ResponseHeader.Get("RateLimit-Policy") != `"default";q=5;w=5` {
				t.Errorf("RateLimit-Policy %q", h.ResponseHeader.Get("RateLimit-Policy"))
			}
		case 429:
			limited++
			if h.ResponseHeader.Get("Retry-After") != "1" || h.ResponseHeader.Get("RateLimit") == "" {
				t.Errorf("429 headers: %v", h.ResponseHeader)
			}
		default:
			t.Fatalf("status %d", h.Status)
		}
	}
	if allowed != 5 || limited != 5 {
		t.Errorf("burst of 10 at one instant: %d allowed, %d limited; want 5 and 5", allowed, limited)
	}
	now = now.Add(2 * time.Second) // two more tokens
	allowed = 0
	for range 5 {
		h.Run()
		if h.Status == 200 {
			allowed++
		}
	}
	if allowed != 2 {
		t.Errorf("after 2s at 1/s: %d allowed, want 2", allowed)
	}
}

func TestKeysAndConsumers(t *testing.T) {
	if err := setup(Config{Key: []string{"property:user", "route"}, Rate: 1, Burst: 1,
		Consumers: map[string]Limit{"alice": {Rate: 1, Burst: 3}}}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(2_000_000, 0)
	count := func(user string) int {
		h := lintel.NewFakeHost()
		h.Now = func() time.Time { return now }
		h.Properties["user"], h.Properties["route"] = user, "orders"
		n := 0
		for range 5 {
			h.Run()
			if h.Status == 200 {
				n++
			}
		}
		return n
	}
	if bob, alice := count("bob"), count("alice"); bob != 1 || alice != 3 {
		t.Errorf("bob %d (limit 1), alice %d (limit 3)", bob, alice)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Rate: 0, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: 1, Burst: 1, Period: "x"}, {Rate: 1, Burst: 1, Key: []string{"nope"}}, {Rate: 1, Burst: 1, OnStateError: "maybe"}} {
		if setup(c) == nil {
			t.Errorf("accepted %+v", c)
		}
	}
}

// TestLongKeyPartsAreHashed: keyed on header:NAME, the raw header value
// was the state key, so 60 KiB values made 60 KiB keys the store kept.
func TestLongKeyPartsAreHashed(t *testing.T) {
	if got := shortKey(strings.Repeat("x", 60<<10)); len(got) != len("sha256:")+64 {
		t.Errorf("a 60 KiB key part became a key of %d bytes", len(got))
	}
	if got := shortKey("client|1.2.3.4"); got != "client|1.2.3.4" {
		t.Errorf("a short key changed: %q", got)
	}
}
