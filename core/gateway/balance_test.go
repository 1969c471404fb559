package gateway_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// balanceConfig is one route to service api over targets a, b and c,
// with the service keys given.
func balanceConfig(keys string) string {
	return `
[services.api]
targets = ["{{a}}", "{{b}}", "{{c}}"]
` + keys + `
[[routes]]
path = "/*rest"
service = "api"
`
}

func threeUpstreams(t *testing.T, h http.HandlerFunc) (a, b, c *gatewaytest.Upstream, vars map[string]string) {
	a, b, c = gatewaytest.NewUpstream(t, h), gatewaytest.NewUpstream(t, h), gatewaytest.NewUpstream(t, h)
	return a, b, c, map[string]string{"a": a.URL, "b": b.URL, "c": c.URL}
}

// TestBalanceWeights: weighted round robin gives each target its share
// exactly, spread out rather than in runs; weight 0 drains a target.
func TestBalanceWeights(t *testing.T) {
	a, b, c, vars := threeUpstreams(t, nil)
	h := gatewaytest.Start(t, balanceConfig(`weights = [3, 1, 0]`), vars)
	for range 40 {
		if resp, _ := h.Do("GET", "/x", nil); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if a.Count() != 30 || b.Count() != 10 || c.Count() != 0 {
		t.Errorf("a %d, b %d, c %d: want 30, 10, 0", a.Count(), b.Count(), c.Count())
	}
}

// TestBalanceLeastRequests: while one target holds requests, new ones go
// to the others.
func TestBalanceLeastRequests(t *testing.T) {
	release := make(chan struct{})
	slow := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	fast := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, `
[services.api]
targets = ["{{slow}}", "{{fast}}"]
balance = "least_requests"
[[routes]]
path = "/*rest"
service = "api"
`, map[string]string{"slow": slow.URL, "fast": fast.URL})
	held := make(chan struct{})
	go func() {
		defer close(held)
		for slow.Count() == 0 { // until one request is held by slow
			go func() {
				if resp, err := http.Get(h.URL() + "/hold"); err == nil {
					resp.Body.Close()
				}
			}()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	<-held
	before := fast.Count()
	for range 20 {
		h.Do("GET", "/x", nil)
	}
	close(release)
	if got := fast.Count() - before; got != 20 {
		t.Errorf("%d of 20 requests went to the idle target while the other held one", got)
	}
}

// TestBalanceHash: the same header value always reaches the same target,
// values spread over all targets, and when a target fails only its
// values move.
func TestBalanceHash(t *testing.T) {
	seen := func(u *gatewaytest.Upstream) map[string]bool {
		out := map[string]bool{}
		reqs, _ := u.Requests()
		for _, r := range reqs {
			out[r.Header.Get("X-User")] = true
		}
		return out
	}
	a, b, c, vars := threeUpstreams(t, nil)
	h := gatewaytest.Start(t, balanceConfig(`balance = "hash"
hash_on = "header:X-User"
fail_cooldown = "1m"`), vars)
	for round := range 3 {
		for u := range 60 {
			h.Do("GET", "/x", nil, "X-User", fmt.Sprintf("user-%d", u))
		}
		if round == 0 && (a.Count() == 0 || b.Count() == 0 || c.Count() == 0) {
			t.Errorf("60 users reached a %d, b %d, c %d times", a.Count(), b.Count(), c.Count())
		}
	}
	sa, sb, sc := seen(a), seen(b), seen(c)
	if len(sa)+len(sb)+len(sc) != 60 {
		t.Fatalf("a user reached more than one target: %d, %d, %d users", len(sa), len(sb), len(sc))
	}
	// c goes away: its users move, a's and b's stay.
	c.Close()
	moved := 0
	for u := range 60 {
		name := fmt.Sprintf("user-%d", u)
		beforeA, beforeB := a.Count(), b.Count()
		if resp, _ := h.Do("GET", "/x", nil, "X-User", name); resp.StatusCode != 200 {
			t.Fatalf("%s: %d", name, resp.StatusCode)
		}
		wentA := a.Count() > beforeA
		switch {
		case sa[name] && !wentA, sb[name] && a.Count() == beforeA && b.Count() == beforeB:
			t.Errorf("%s moved though its target is up", name)
		case sc[name]:
			moved++
		}
	}
	if moved != len(sc) {
		t.Errorf("%d users moved, want c's %d", moved, len(sc))
	}
}

// TestCanary: requests with the canary's header or cookie go to the
// canary service, the others to the route's (share 0); with share 1 all
// do.
func TestCanary(t *testing.T) {
	stable, canary := gatewaytest.NewUpstream(t, nil), gatewaytest.NewUpstream(t, nil)
	cfg := func(share string) string {
		return `
[services.orders]
targets = ["{{stable}}"]
[services.orders-v2]
targets = ["{{canary}}"]
[[routes]]
path = "/*rest"
service = "orders"
canary = { service = "orders-v2", header = "X-Canary=always", cookie = "canary=1", share = ` + share + ` }
`
	}
	vars := map[string]string{"stable": stable.URL, "canary": canary.URL}
	h := gatewaytest.Start(t, cfg("0.0"), vars)
	h.Do("GET", "/a", nil, "X-Canary", "always")
	h.Do("GET", "/b", nil, "Cookie", "session=x; canary=1")
	h.Do("GET", "/c", nil, "X-Canary", "never")
	h.Do("GET", "/d", nil, "Cookie", "canary=0")
	h.Do("GET", "/e", nil)
	if canary.Count() != 2 || stable.Count() != 3 {
		t.Errorf("canary got %d, stable %d: want 2 and 3", canary.Count(), stable.Count())
	}
	h = gatewaytest.Start(t, cfg("1.0"), vars)
	for range 5 {
		h.Do("GET", "/f", nil)
	}
	if canary.Count() != 7 || stable.Count() != 3 {
		t.Errorf("share 1: canary got %d in all, stable %d", canary.Count(), stable.Count())
	}
}
