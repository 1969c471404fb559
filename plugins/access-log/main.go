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
	"encoding/json"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

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
	lintel.Declare(lintel.Stateless | lintel.NoResponse)
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

func num(name string) any {
	v := prop(name)
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		return n
	}
	return nil
}

func jsonLine(req lintel.Request, id string) []byte {
	rec := map[string]any{
		"time":        prop("start_time"),
		"request_id":  id,
		"client_ip":   prop("client_ip"),
		"method":      prop("method"),
		"path":        prop("path"),
		"uri":         req.URI(),
		"proto":       req.Protocol(),
		"status":      num("status"),
		"duration_ms": num("duration_ms"),
		"bytes_in":    num("bytes_in"),
		"bytes_out":   num("bytes_out"),
		"route":       prop("route"),
		"listener":    prop("listener"),
		"upstream":    prop("upstream"),
		"user":        prop("user"),
	}
	if failed := prop("failed_parts"); failed != "" {
		rec["failed_parts"] = strings.Split(failed, ",")
	}
	if len(cfg.Headers) > 0 {
		hs := map[string]string{}
		for _, name := range cfg.Headers {
			v := req.Header().Get(name)
			if v == "" {
				continue
			}
			if redact[strings.ToLower(name)] {
				v = "[REDACTED]"
			}
			hs[strings.ToLower(name)] = v
		}
		rec["headers"] = hs
	}
	b, _ := json.Marshal(rec)
	return b
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
