// Command access-log is Lintel's bundled access log: one line per request,
// written when the response is complete (streams included), to the
// filter's output (stdout, stderr or a file) as the plain line itself.
//
//	[filters.access-log]
//	output = "stdout"
//	config = { format = "json", redact = ["Authorization", "Cookie"], headers = ["User-Agent"], sample = 1.0 }
//
// format: "json" (default), "common" or "combined" (NCSA). headers names
// request headers to include in JSON lines; those in redact appear as
// "[REDACTED]". sample keeps that fraction of lines (by request id, so a
// request is kept or dropped the same way everywhere).
package main

import (
	"hash/fnv"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

// Config is the filter's config table.
type Config struct {
	Format  string   `json:"format"`
	Redact  []string `json:"redact"`
	Headers []string `json:"headers"`
	Sample  *float64 `json:"sample"`
}

var (
	cfg    Config
	redact map[string]bool
	lines  = lintel.NewCounter("access_log_lines_total", "Access log lines written or dropped.", "result")
)

func init() {
	var c Config
	if err := lintel.Config(&c); err != nil {
		panic("access-log: config: " + err.Error())
	}
	setup(c)
}

func setup(c Config) {
	switch c.Format {
	case "":
		c.Format = "json"
	case "json", "common", "combined":
	default:
		panic("access-log: format must be json, common or combined, not " + strconv.Quote(c.Format))
	}
	if c.Sample != nil && (*c.Sample < 0 || *c.Sample > 1) {
		panic("access-log: sample must be between 0 and 1")
	}
	cfg = c
	redact = map[string]bool{}
	for _, h := range c.Redact {
		redact[strings.ToLower(h)] = true
	}
	lintel.Declare(lintel.Stateless | lintel.NoResponse | lintel.NoRequest)
	lintel.HandleComplete(complete)
}

func prop(name string) string {
	v, _ := lintel.Property(name)
	return v
}

func complete(req lintel.Request) {
	id := prop("request_id")
	if !sampled(id) {
		lines.Add(1, "sampled_out")
		return
	}
	var line []byte
	if cfg.Format == "json" {
		line = jsonLine(req, id)
	} else {
		line = ncsaLine(req)
	}
	if err := lintel.Emit(line); err != nil {
		lines.Add(1, "no_output")
		return
	}
	lines.Add(1, "written")
}

// sampled keeps a request when the hash of its id falls under the rate.
func sampled(id string) bool {
	if cfg.Sample == nil || *cfg.Sample >= 1 {
		return true
	}
	h := fnv.New32a()
	h.Write([]byte(id))
	return float64(h.Sum32())/float64(1<<32) < *cfg.Sample
}

// jsonLine writes the record by hand, in a fixed field order: encoding/json
// with a map costs several times more in a WebAssembly guest.
func jsonLine(req lintel.Request, id string) []byte {
	b := make([]byte, 0, 512)
	b = append(b, '{')
	str := func(key, v string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, key)
		b = append(b, ':')
		b = appendString(b, v)
	}
	num := func(key, v string) {
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = appendString(b, key)
		b = append(b, ':')
		if _, err := strconv.ParseFloat(v, 64); err != nil || v == "" {
			b = append(b, "null"...)
			return
		}
		b = append(b, v...)
	}
	str("time", prop("start_time"))
	str("request_id", id)
	if tid := prop("trace_id"); tid != "" {
		str("trace_id", tid)
	}
	str("client_ip", prop("client_ip"))
	str("method", prop("method"))
	str("path", prop("path"))
	str("uri", req.URI())
	str("proto", req.Protocol())
	num("status", prop("status"))
	num("duration_ms", prop("duration_ms"))
	num("bytes_in", prop("bytes_in"))
	num("bytes_out", prop("bytes_out"))
	str("route", prop("route"))
	str("listener", prop("listener"))
	str("upstream", prop("upstream"))
	str("user", prop("user"))
	if gs := prop("grpc_status"); gs != "" {
		num("grpc_status", gs)
	}
	if failed := prop("failed_parts"); failed != "" {
		b = append(b, `,"failed_parts":[`...)
		for i, p := range strings.Split(failed, ",") {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, p)
		}
		b = append(b, ']')
	}
	if len(cfg.Headers) > 0 {
		b = append(b, `,"headers":{`...)
		n := 0
		for _, name := range cfg.Headers {
			v := req.Header().Get(name)
			if v == "" {
				continue
			}
			if redact[strings.ToLower(name)] {
				v = "[REDACTED]"
			}
			if n > 0 {
				b = append(b, ',')
			}
			n++
			b = appendString(b, strings.ToLower(name))
			b = append(b, ':')
			b = appendString(b, v)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// ncsaLine is the Common Log Format, or Combined with referer and agent:
// host ident user [time] "request" status bytes ["referer" "agent"].
func ncsaLine(req lintel.Request) []byte {
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	t, err := time.Parse(time.RFC3339Nano, prop("start_time"))
	if err != nil {
		t = lintel.Now()
	}
	var b strings.Builder
	b.WriteString(dash(prop("client_ip")) + " - " + dash(prop("user")) + " ")
	b.WriteString(t.Format("[02/Jan/2006:15:04:05 -0700] "))
	b.WriteString(strconv.Quote(prop("method") + " " + req.URI() + " " + req.Protocol()))
	b.WriteString(" " + dash(prop("status")) + " " + dash(prop("bytes_out")))
	if cfg.Format == "combined" {
		b.WriteString(" " + strconv.Quote(dash(req.Header().Get("Referer"))) + " " + strconv.Quote(dash(req.Header().Get("User-Agent"))))
	}
	return []byte(b.String())
}
