// Command rate-limit is Lintel's bundled rate limiter: GCRA (the generic
// cell rate algorithm, a token bucket without a timer), decided by the
// host in one atomic operation on the filter's shared state
// (lintel.rate_limit), so it is exact under concurrency in one gatewayd or
// a fleet sharing Redis: over any interval t from an idle start it admits
// at most burst + rate x t requests, on the Redis server's clock.
//
//	[filters.limit]
//	plugin = "rate-limit"
//	config = { key = ["client_ip"], rate = 10, period = "1s", burst = 20, on_state_error = "allow",
//	           consumers = { alice = { rate = 100, burst = 200 } } }
//
// key parts: "client_ip", "route", "header:NAME", "property:NAME". Answers
// 429 with Retry-After; every answer carries the RateLimit-Policy and
// RateLimit fields of draft-ietf-httpapi-ratelimit-headers-10.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

// Limit is a rate and a burst.
type Limit struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// Config is the filter's config table.
type Config struct {
	Key          []string         `json:"key"`
	Rate         float64          `json:"rate"`
	Period       string           `json:"period"`
	Burst        int              `json:"burst"`
	Policy       string           `json:"policy"`
	OnStateError string           `json:"on_state_error"`
	Consumers    map[string]Limit `json:"consumers"`
}

var (
	cfg       Config
	period    time.Duration
	decisions = lintel.NewCounter("rate_limit_decisions_total", "Rate limit decisions.", "result")
)

func init() {
	var c Config
	if err := lintel.Config(&c); err != nil {
		panic("rate-limit: config: " + err.Error())
	}
	if err := setup(c); err != nil && lintel.Hosted {
		panic("rate-limit: config: " + err.Error())
	}
}

func setup(c Config) error {
	if len(c.Key) == 0 {
		c.Key = []string{"client_ip"}
	}
	if c.Period == "" {
		c.Period = "1s"
	}
	if c.Policy == "" {
		c.Policy = "default"
	}
	if c.OnStateError == "" {
		c.OnStateError = "allow"
	}
	d, err := time.ParseDuration(c.Period)
	if err != nil || d <= 0 {
		return fmt.Errorf("period %q", c.Period)
	}
	for _, l := range append([]Limit{{c.Rate, c.Burst}}, values(c.Consumers)...) {
		if l.Rate <= 0 || l.Burst < 1 {
			return errors.New("rate must be > 0 and burst >= 1")
		}
	}
	if c.OnStateError != "allow" && c.OnStateError != "deny" {
		return fmt.Errorf("on_state_error must be allow or deny, not %q", c.OnStateError)
	}
	for _, k := range c.Key {
		if k != "client_ip" && k != "route" && !strings.HasPrefix(k, "header:") && !strings.HasPrefix(k, "property:") {
			return fmt.Errorf("key part %q (client_ip, route, header:NAME, property:NAME)", k)
		}
	}
	cfg, period = c, d
	quotedPolicy = strconv.Quote(c.Policy)
	lintel.Declare(lintel.Stateless)
	lintel.HandleRequest(handle)
	// The fields of an allowed request travel to its response phase as
	// properties: the phase may run on another instance.
	lintel.HandleResponse(func(req lintel.Request, resp lintel.Response) {
		if v, ok := lintel.Property("ratelimit.policy"); ok {
			resp.Header().Set("RateLimit-Policy", v)
		}
		if v, ok := lintel.Property("ratelimit.fields"); ok {
			resp.Header().Set("RateLimit", v)
		}
	})
	return nil
}

func values(m map[string]Limit) []Limit {
	out := make([]Limit, 0, len(m))
	for _, l := range m {
		out = append(out, l)
	}
	return out
}

// key builds the limited key from the configured parts; consumer is the
// first part's value, for per-consumer limits.
func key(req lintel.Request) (k, consumer string) {
	if len(cfg.Key) == 1 && cfg.Key[0] == "client_ip" { // the default
		ip, _ := lintel.Property("client_ip")
		return "rate:" + shortKey(ip), ip
	}
	parts := make([]string, len(cfg.Key))
	for i, p := range cfg.Key {
		switch {
		case p == "client_ip" || p == "route":
			parts[i], _ = lintel.Property(p)
		case strings.HasPrefix(p, "header:"):
			parts[i] = req.Header().Get(strings.TrimPrefix(p, "header:"))
		case strings.HasPrefix(p, "property:"):
			parts[i], _ = lintel.Property(strings.TrimPrefix(p, "property:"))
		}
	}
	// "rate:", not the "gcra:" of the plugin-side version, whose values
	// were in another unit: the two never read each other's keys.
	return "rate:" + shortKey(strings.Join(parts, "|")), parts[0]
}

// shortKey keeps a key built from what clients send (header values) to a
// bounded size: a long one is replaced by its SHA-256, so a client cannot
// make the store keep keys of its choosing size.
func shortKey(k string) string {
	if len(k) <= 128 {
		return k
	}
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}

func seconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

func handle(req lintel.Request, resp lintel.Response) bool {
	k, consumer := key(req)
	l := Limit{cfg.Rate, cfg.Burst}
	if c, ok := cfg.Consumers[consumer]; ok {
		l = c
	}
	d, err := lintel.RateLimit(k, time.Duration(float64(period)/l.Rate), l.Burst)
	if err != nil {
		lintel.Warn("rate limit state unavailable", "policy", cfg.OnStateError, "error", err.Error())
		decisions.Add(1, "state_error_"+cfg.OnStateError)
		if cfg.OnStateError == "allow" {
			return true
		}
		return answer(resp, 503, "rate limit unavailable", 1)
	}
	policy := header("q", int64(l.Burst), "w", int64(seconds(time.Duration(float64(period)/l.Rate)*time.Duration(l.Burst))))
	fields := header("r", int64(d.Remaining), "t", int64(seconds(d.Reset)))
	if !d.Allowed {
		decisions.Add(1, "limited")
		resp.Header().Set("RateLimit-Policy", policy)
		resp.Header().Set("RateLimit", fields)
		return answer(resp, 429, "rate limit exceeded", seconds(d.RetryAfter))
	}
	decisions.Add(1, "allowed")
	lintel.SetProperty("ratelimit.policy", policy)
	lintel.SetProperty("ratelimit.fields", fields)
	return true
}

// quotedPolicy is the policy's name as a quoted string, for the headers.
var quotedPolicy string

// header is a RateLimit or RateLimit-Policy value: "policy";a=1;b=2
// (by hand: fmt costs microseconds in a WebAssembly guest).
func header(a string, av int64, b string, bv int64) string {
	out := make([]byte, 0, len(quotedPolicy)+32)
	out = append(out, quotedPolicy...)
	out = append(append(append(out, ';'), a...), '=')
	out = strconv.AppendInt(out, av, 10)
	out = append(append(append(out, ';'), b...), '=')
	return string(strconv.AppendInt(out, bv, 10))
}

func answer(resp lintel.Response, status int, detail string, retryAfter int) bool {
	id, _ := lintel.Property("request_id")
	resp.Header().Set("Retry-After", strconv.Itoa(max(retryAfter, 1)))
	resp.Header().Set("Content-Type", "application/problem+json")
	resp.SetStatus(status)
	body, _ := json.Marshal(map[string]any{"status": status, "title": map[int]string{429: "Too Many Requests", 503: "Service Unavailable"}[status], "detail": detail, "request_id": id})
	resp.Write(body)
	return false
}
