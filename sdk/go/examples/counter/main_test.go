//go:build !wasip1

package main

import (
	"testing"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

// The plugin's unit test runs natively against the SDK's fake host.
func TestCountsPerClient(t *testing.T) {
	h := lintel.NewFakeHost()
	for want := range []string{"1", "2", "3"} {
		h.Run()
		if got := h.ResponseHeader.Get("X-Request-Count"); got != []string{"1", "2", "3"}[want] {
			t.Fatalf("request %d: X-Request-Count = %q", want+1, got)
		}
	}
	h.Properties["client_ip"] = "198.51.100.7"
	h.Run()
	if got := h.ResponseHeader.Get("X-Request-Count"); got != "1" {
		t.Errorf("another client starts at 1, got %q", got)
	}
	if h.Declared()&lintel.Stateless == 0 {
		t.Error("the plugin should declare itself stateless")
	}
}
