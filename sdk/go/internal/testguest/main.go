// Command testguest exercises every function of the lintel host module
// through the SDK, for Lintel's own tests (internal/e2e/sdk_test.go). The
// request header X-Case picks what it does; results go to response
// headers named after the filter's config "prefix".
package main

import (
	"strconv"
	"strings"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

var (
	sink     string
	prefix   string
	requests = lintel.NewCounter("testguest_requests_total", "Requests seen by the test guest.", "case")
	level    = lintel.NewGauge("testguest_level", "A gauge.")
	latency  = lintel.NewHistogram("testguest_seconds", "A histogram.")
)

func init() {
	var cfg struct{ Prefix string }
	if err := lintel.Config(&cfg); err != nil {
		panic(err)
	}
	prefix = cfg.Prefix
	lintel.Declare(lintel.Stateless)
	lintel.HandleRequest(handle)
	lintel.HandleComplete(func(req lintel.Request) {
		if req.Header().Get("X-Case") != "complete" {
			return
		}
		status, _ := lintel.Property("status")
		out, _ := lintel.Property("bytes_out")
		dur, _ := lintel.Property("duration_ms")
		lintel.Info("request complete", "status", status, "bytes_out", out, "has_duration", strconv.FormatBool(dur != ""))
	})
}

func result(resp lintel.Response, v ...string) {
	resp.Header().Set("X-"+prefix+"-Result", strings.Join(v, ","))
}

func handle(req lintel.Request, resp lintel.Response) bool {
	c := req.Header().Get("X-Case")
	requests.Add(1, c)
	if v, ok := lintel.Property("user"); ok {
		req.Header().Set("X-"+prefix+"-Seen-User", v)
	}
	switch c {
	case "state":
		var r []string
		r = append(r, errString(lintel.StateSet("k", []byte("v1"), 0)))
		v, ok, err := lintel.StateGet("k")
		r = append(r, string(v)+"/"+strconv.FormatBool(ok)+"/"+errString(err))
		swapped, _ := lintel.StateCAS("k", []byte("wrong"), []byte("v2"), 0)
		r = append(r, strconv.FormatBool(swapped))
		swapped, _ = lintel.StateCAS("k", []byte("v1"), []byte("v2"), 0)
		r = append(r, strconv.FormatBool(swapped))
		swapped, _ = lintel.StateCAS("fresh", nil, []byte("x"), 0)
		r = append(r, strconv.FormatBool(swapped))
		n, _ := lintel.StateIncr("n", 5, 0)
		r = append(r, strconv.FormatInt(n, 10))
		_, err = lintel.StateIncr("k", 1, 0)
		r = append(r, errString(err))
		lintel.StateDelete("k")
		_, ok, _ = lintel.StateGet("k")
		r = append(r, strconv.FormatBool(ok))
		result(resp, r...)
	case "cas-incr":
		for {
			old, ok, err := lintel.StateGet("cas-counter")
			if err != nil {
				return true
			}
			n := 0
			if ok {
				n, _ = strconv.Atoi(string(old))
			} else {
				old = nil
			}
			if swapped, _ := lintel.StateCAS("cas-counter", old, []byte(strconv.Itoa(n+1)), 0); swapped {
				result(resp, strconv.Itoa(n+1))
				break
			}
		}
	case "ratelimit":
		d, err := lintel.RateLimit("rl", time.Hour, 2)
		result(resp, strconv.FormatBool(d.Allowed), strconv.Itoa(d.Remaining), strconv.FormatBool(d.RetryAfter > 0), errString(err))
	case "ratelimit-misuse":
		lintel.RateLimit("rl", time.Hour, 0) // burst 0: the host fails the call
	case "big-get":
		// A value larger than the SDK's scratch buffer, read in two calls.
		v, ok, err := lintel.StateGet("big")
		result(resp, strconv.Itoa(len(v)), strconv.FormatBool(ok), errString(err))
	case "ttl-set":
		result(resp, errString(lintel.StateSet("ttl", []byte("x"), time.Second)))
	case "ttl-get":
		_, ok, _ := lintel.StateGet("ttl")
		result(resp, strconv.FormatBool(ok))
	case "iso":
		v, ok, _ := lintel.StateGet("iso")
		if !ok {
			lintel.StateSet("iso", []byte(prefix), 0)
			v = []byte("none")
		}
		result(resp, string(v))
	case "set-prop":
		if prefix == "a" {
			lintel.SetProperty("user", "alice")
		}
	case "props":
		var r []string
		for _, name := range []string{"client_ip", "request_id", "route", "listener", "method", "path", "start_time"} {
			v, _ := lintel.Property(name)
			r = append(r, name+"="+v)
		}
		result(resp, r...)
	case "fetch":
		f, err := lintel.Fetch("GET", req.Header().Get("X-Fetch-URL"), []string{"X-From: guest"}, nil)
		if err != nil {
			result(resp, "error", err.Error())
			break
		}
		result(resp, strconv.Itoa(f.Status), string(f.Body), strings.Join(f.Header("X-Upstream"), "|"))
	case "metric":
		level.Set(42)
		latency.Observe(0.25)
	case "log":
		lintel.Info("structured line", "answer", "42")
	case "now":
		result(resp, strconv.FormatInt(lintel.Now().UnixMilli(), 10))
	case "alloc":
		// Garbage per request, as a real plugin makes: for the soak.
		buf := make([]byte, 4096+len(sink)%64)
		sink = strings.Repeat(string(buf[:64]), 16) + req.URI()
	case "answer":
		resp.SetStatus(201)
		resp.Header().Set("X-Answer", "sdk")
		resp.Write([]byte("from the SDK"))
		return false
	}
	return true
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}
