package proxy

import (
	"cmp"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// balancer is how a service chooses among its targets (services.balance).
type balancer struct {
	policy string // "round_robin", "least_requests" or "hash"
	// schedule is the weighted round-robin order of target indexes:
	// each target as often as its weight, spread out (smooth weighted
	// round robin, computed once), so a round-robin pick is one atomic
	// add. Drained targets (weight 0) are not in it.
	schedule []int
	next     atomic.Uint64
	weights  []int
	// ring serves "hash": points on a ring of 64-bit hashes, 100 per
	// unit of weight, owned by target indexes.
	ring []ringPoint
}

type ringPoint struct {
	hash   uint64
	target int
}

func newBalancer(policy string, weights []int, keys []string) *balancer {
	b := &balancer{policy: policy, weights: weights}
	// Smooth weighted round robin (as nginx): each step every target
	// gains its weight, the richest is chosen and pays the total.
	total := 0
	for _, w := range weights {
		total += w
	}
	current := make([]int, len(weights))
	for range total {
		best := -1
		for i, w := range weights {
			current[i] += w
			if w > 0 && (best < 0 || current[i] > current[best]) {
				best = i
			}
		}
		current[best] -= total
		b.schedule = append(b.schedule, best)
	}
	if policy == "hash" {
		for i, w := range weights {
			for v := range 100 * w {
				b.ring = append(b.ring, ringPoint{hash64(keys[i] + "#" + strconv.Itoa(v)), i})
			}
		}
		slices.SortFunc(b.ring, func(a, c ringPoint) int { return cmp.Compare(a.hash, c.hash) })
	}
	return b
}

// hash64 is FNV-1a, then MurmurHash3's finalizer: FNV alone leaves keys
// that differ in their last bytes close together on the ring.
func hash64(s string) uint64 {
	f := fnv.New64a()
	io.WriteString(f, s)
	h := f.Sum64()
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// pick returns the target for req: by the policy among the targets that
// are not cooling down and are not avoid (the one a retry leaves). When
// every such target is cooling down it returns one anyway (trying beats
// refusing), and avoid only when it is the only target there is.
//
// With a breaker, a target whose circuit is open is never chosen, and
// pick returns nil when no target's circuit lets a request through: the
// gateway then refuses at once rather than add to an outage.
func (s *backend) pick(req *http.Request, avoid *target) *target {
	c := choice{s: s, set: s.set.Load(), avoid: avoid, now: time.Now(), breaker: s.cfg.Breaker != nil}
	t := c.choose(req)
	if !c.breaker || t == nil {
		return t
	}
	if t.circuit.allow(c.now) {
		return t
	}
	// t was a fallback (cooling down) or lost its probe to another
	// request: any target whose circuit lets a request through.
	for _, o := range c.set.targets {
		if o != avoid && o.circuit.allow(c.now) {
			return o
		}
	}
	return nil
}

// choice is one pick: the targets it may take, at one instant.
type choice struct {
	s       *backend
	set     *targetSet
	avoid   *target
	now     time.Time
	breaker bool
}

// usable reports whether target i may be chosen: not avoided, not
// drained, not cooling down and, with a breaker, its circuit not open.
func (c *choice) usable(i int) bool {
	t := c.set.targets[i]
	return t != c.avoid && c.set.balance.weights[i] > 0 && !t.coolingDown(c.now) && (!c.breaker || !t.circuit.blocked(c.now))
}

// choose is pick without the breaker's last word.
func (c *choice) choose(req *http.Request) *target {
	s, b, ts := c.s, c.set.balance, c.set.targets
	switch b.policy {
	case "least_requests":
		if t := c.leastRequests(); t != nil {
			return t
		}
	case "hash":
		if key := s.hashKey(req); key != "" && len(b.ring) > 0 {
			at, _ := slices.BinarySearchFunc(b.ring, hash64(key), func(p ringPoint, h uint64) int { return cmp.Compare(p.hash, h) })
			for i := range len(b.ring) {
				if p := b.ring[(at+i)%len(b.ring)]; c.usable(p.target) {
					return ts[p.target]
				}
			}
		}
	}
	n := uint64(len(b.schedule))
	start := b.next.Add(1) - 1
	var fallback *target
	for i := range n {
		j := b.schedule[(start+i)%n]
		if c.usable(j) {
			return ts[j]
		}
		if t := ts[j]; fallback == nil && t != c.avoid {
			fallback = t
		}
	}
	if fallback == nil {
		return c.avoid
	}
	return fallback
}

// leastRequests draws two usable targets and returns the one with fewer
// requests in flight per unit of weight ("power of two choices": near
// the best choice, without scanning or locking).
func (c *choice) leastRequests() *target {
	var buf [16]int
	candidates := buf[:0]
	for i := range c.set.targets {
		if c.usable(i) {
			candidates = append(candidates, i)
		}
	}
	switch len(candidates) {
	case 0:
		return nil
	case 1:
		return c.set.targets[candidates[0]]
	}
	a := rand.IntN(len(candidates))
	d := rand.IntN(len(candidates) - 1)
	if d >= a {
		d++
	}
	i, j := candidates[a], candidates[d]
	w, ts := c.set.balance.weights, c.set.targets
	// inflight_i / w_i <= inflight_j / w_j, without dividing.
	if ts[i].inflight.Load()*int64(w[j]) <= ts[j].inflight.Load()*int64(w[i]) {
		return ts[i]
	}
	return ts[j]
}

// hashKey is the value "hash" balances req on, or "".
func (s *backend) hashKey(req *http.Request) string {
	on := s.cfg.HashOn
	switch {
	case on == "client_ip":
		if f, ok := req.Context().Value(stateKey{}).(*forward); ok && f.x.ClientIP.IsValid() {
			return f.x.ClientIP.String()
		}
	case strings.HasPrefix(on, "header:"):
		return req.Header.Get(on[len("header:"):])
	case strings.HasPrefix(on, "cookie:"):
		if c, err := req.Cookie(on[len("cookie:"):]); err == nil {
			return c.Value
		}
	}
	return ""
}

// countedBody ends a request's count in flight when its body is closed.
type countedBody struct {
	io.ReadCloser
	t    *target
	done atomic.Bool
}

func (b *countedBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.t.inflight.Add(-1)
	}
	return b.ReadCloser.Close()
}
