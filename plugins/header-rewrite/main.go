// Command header-rewrite is Lintel's bundled header filter: it sets, adds,
// removes and renames request and response headers, with values from
// templates.
//
//	[filters.headers]
//	plugin = "header-rewrite"
//	config.request  = { set = { X-Gateway = "lintel" }, remove = ["X-Debug"] }
//	config.response = { set = { X-Request-Id = "{request_id}" }, rename = { Server = "X-Upstream-Server" } }
//
// Templates: {request_id}, {client_ip}, {route}, {listener}, {method},
// {path}, {property:NAME}. Environment variables are read by gatewayd at
// load: write ${NAME} in gateway.toml.
//
// Order within a phase: remove, rename, set, add.
package main

import (
	"strings"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func main() {}

// Rules are one phase's changes.
type Rules struct {
	Set    map[string]string `json:"set"`
	Add    map[string]string `json:"add"`
	Remove []string          `json:"remove"`
	Rename map[string]string `json:"rename"`
}

func (r *Rules) empty() bool {
	return len(r.Set) == 0 && len(r.Add) == 0 && len(r.Remove) == 0 && len(r.Rename) == 0
}

// Config is the filter's config table.
type Config struct {
	Request  Rules `json:"request"`
	Response Rules `json:"response"`
}

var cfg Config

func init() {
	var c Config
	if err := lintel.Config(&c); err != nil {
		panic("header-rewrite: config: " + err.Error())
	}
	setup(c)
}

func setup(c Config) {
	cfg = c
	flags := uint32(lintel.Stateless)
	if cfg.Response.empty() {
		flags |= lintel.NoResponse // one guest call per request saved
	}
	lintel.Declare(flags)
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		apply(req.Header(), &cfg.Request)
		return true
	})
	lintel.HandleResponse(func(req lintel.Request, resp lintel.Response) {
		apply(resp.Header(), &cfg.Response)
	})
}

func apply(h lintel.Header, r *Rules) {
	for _, name := range r.Remove {
		h.Del(name)
	}
	for from, to := range r.Rename {
		values := h.Values(from)
		if len(values) == 0 {
			continue
		}
		h.Del(from)
		h.Del(to)
		for _, v := range values {
			h.Add(to, v)
		}
	}
	for name, tpl := range r.Set {
		h.Set(name, expand(tpl))
	}
	for name, tpl := range r.Add {
		h.Add(name, expand(tpl))
	}
}

// expand replaces {name} with the request property of that name
// ({property:NAME} for one a filter set); unknown or unset ones become "".
func expand(tpl string) string {
	if !strings.Contains(tpl, "{") {
		return tpl
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(tpl, '{')
		j := strings.IndexByte(tpl[max(i, 0):], '}')
		if i < 0 || j < 0 {
			b.WriteString(tpl)
			return b.String()
		}
		b.WriteString(tpl[:i])
		name := strings.TrimPrefix(tpl[i+1:i+j], "property:")
		v, _ := lintel.Property(name)
		b.WriteString(v)
		tpl = tpl[i+j+1:]
	}
}
