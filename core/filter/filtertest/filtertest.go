// Package filtertest provides a native Filter for tests of chains and of
// the gateway: it records the order of its phases and, as its config
// table asks, rewrites headers and paths, answers, buffers or fails.
package filtertest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
)

var (
	_ filter.Factory = (*Factory)(nil)
	_ filter.Filter  = (*Filter)(nil)
)

// Factory builds Filters from [filters.NAME] tables. Config keys:
//
//	answer = 403            answer the request with this status
//	buffer = true           ask for the whole response body
//	append_body = "..."     append to a buffered body in the response phase
//	set_path = "/x"         change the request path
//	request_header = "X"    header to set to the filter's name on the request
//	identity_header = "X"   header to set to "client-ip request-id route"
//	fail = "request"        fail in "request" or "response" phase, or "panic"
//
// Every filter appends "NAME:request" and "NAME:response" to Events and to
// the X-Trace request and response headers.
type Factory struct {
	mu     sync.Mutex
	events []string
}

// Events returns the phases run so far, in order.
func (f *Factory) Events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.events...)
}

// Reset forgets the events so far.
func (f *Factory) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = nil
}

func (f *Factory) record(e string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, e)
}

// New builds one filter; unknown config keys are an error.
func (f *Factory) New(spec *config.Filter) (filter.Filter, error) {
	t := &Filter{name: spec.Name, f: f}
	for k, v := range spec.Config {
		var ok bool
		switch k {
		case "answer":
			var n int64
			n, ok = v.(int64)
			t.answer = int(n)
		case "buffer":
			t.buffer, ok = v.(bool)
		case "append_body":
			t.appendBody, ok = v.(string)
		case "set_path":
			t.setPath, ok = v.(string)
		case "request_header":
			t.requestHeader, ok = v.(string)
		case "identity_header":
			t.identityHeader, ok = v.(string)
		case "fail":
			t.fail, ok = v.(string)
		}
		if !ok {
			return nil, fmt.Errorf("config key %q: unknown or of the wrong type", k)
		}
	}
	return t, nil
}

// Filter is the native test filter.
type Filter struct {
	name           string
	f              *Factory
	answer         int
	buffer         bool
	appendBody     string
	setPath        string
	requestHeader  string
	identityHeader string
	fail           string
}

func (t *Filter) Name() string { return t.name }

func (t *Filter) Request(x *exchange.Exchange, w http.ResponseWriter) (bool, filter.Pending, error) {
	t.f.record(t.name + ":request")
	x.Request.Header.Add("X-Trace", t.name)
	switch t.fail {
	case "request":
		return false, nil, errors.New("configured to fail")
	case "panic":
		panic("filtertest: configured to panic")
	}
	if t.requestHeader != "" {
		x.Request.Header.Set(t.requestHeader, t.name)
	}
	if t.identityHeader != "" {
		x.Request.Header.Set(t.identityHeader, x.ClientIP.String()+" "+x.RequestID+" "+x.Route)
	}
	if t.setPath != "" {
		x.Request.URL.Path = t.setPath
	}
	if t.buffer {
		x.BufferResponse = true
	}
	if t.answer != 0 {
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(t.answer)
		_, _ = w.Write([]byte("answered by " + t.name))
		return false, nil, nil
	}
	return true, &pending{t}, nil
}

type pending struct{ t *Filter }

func (p *pending) Response(x *exchange.Exchange, r *filter.Response) error {
	p.t.f.record(p.t.name + ":response")
	r.Header.Add("X-Trace", p.t.name)
	if p.t.fail == "response" {
		return errors.New("configured to fail")
	}
	if r.Buffered && p.t.appendBody != "" {
		r.Body = append(r.Body, p.t.appendBody...)
	}
	if r.Error {
		r.Header.Add("X-Trace-Error", strings.ToLower(p.t.name))
	}
	return nil
}

func (p *pending) Release() { p.t.f.record(p.t.name + ":release") }
