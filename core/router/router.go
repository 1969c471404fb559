// Package router matches a request's host, method and path to a route. It
// is the only importer of httprouter in Lintel.
//
// The router does not serve: it answers "which route, with which params",
// "no such path" or "path known, method not allowed (Allow: ...)", so the
// gateway can run filters before and after routing and answer 404 and 405
// itself. httprouter's own redirects (trailing slash, fixed path) and its
// automatic OPTIONS answers are therefore never used: the path the gateway
// matched is exactly the path it forwards (see Normalize), and OPTIONS
// requests reach filters (a CORS plugin, say) like any other method.
package router

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/julienschmidt/httprouter"
)

// Spec describes one route to add.
type Spec struct {
	// ID identifies the route in conflict errors (its config index).
	ID int
	// Host, if set, restricts the route to requests for that host
	// (compared case-insensitively, without port).
	Host string
	// Path is an httprouter pattern: static segments, ":name" for one
	// segment, "*name" at the end for the rest of the path.
	Path    string
	Methods []string
}

// Param is one matched path parameter. The value of a catch-all ("*rest")
// starts with "/".
type Param struct {
	Key, Value string
}

// Params are the matched parameters in pattern order.
type Params []Param

// Get returns the value of the named parameter, or "".
func (ps Params) Get(name string) string {
	for _, p := range ps {
		if p.Key == name {
			return p.Value
		}
	}
	return ""
}

// ConflictError reports that a route cannot be added next to another one.
// Other is -1 when the route is invalid on its own.
type ConflictError struct {
	ID, Other int
	Reason    string
}

func (e *ConflictError) Error() string { return e.Reason }

// Router maps requests to values of type T. Build it with Add, then use
// Match from any number of goroutines; Add must not run concurrently with
// Match.
type Router[T any] struct {
	anyHost *table[T]
	hosts   map[string]*table[T]
}

type table[T any] struct {
	trees  *httprouter.Router
	values []T
	specs  []Spec // for conflict lookup
}

// New returns an empty router.
func New[T any]() *Router[T] {
	return &Router[T]{hosts: map[string]*table[T]{}}
}

func newTable[T any]() *table[T] {
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleOPTIONS = false
	r.HandleMethodNotAllowed = false
	return &table[T]{trees: r}
}

// Add registers v under spec. A route httprouter cannot hold next to an
// earlier one is returned as a *ConflictError naming both.
func (r *Router[T]) Add(spec Spec, v T) error {
	host := strings.ToLower(spec.Host)
	t := r.anyHost
	if host != "" {
		t = r.hosts[host]
	}
	if t == nil {
		t = newTable[T]()
		if host == "" {
			r.anyHost = t
		} else {
			r.hosts[host] = t
		}
	}
	idx := len(t.values)
	t.values = append(t.values, v)
	t.specs = append(t.specs, spec)
	for _, m := range spec.Methods {
		if reason := tryHandle(t.trees, m, spec.Path, idx); reason != "" {
			return &ConflictError{ID: spec.ID, Other: t.conflictWith(spec, m), Reason: reason}
		}
	}
	return nil
}

// tryHandle adds a route, turning httprouter's panic into a reason.
func tryHandle(r *httprouter.Router, method, path string, idx int) (reason string) {
	defer func() {
		if p := recover(); p != nil {
			reason = fmt.Sprint(p)
		}
	}()
	r.Handle(method, path, handleIndex(idx))
	return ""
}

// conflictWith finds the earlier route that spec clashes with on method:
// httprouter's panic names only the new route. Each earlier route is tried
// alone with spec in a scratch router; this runs only on error.
func (t *table[T]) conflictWith(spec Spec, method string) int {
	if tryHandle(newTable[T]().trees, method, spec.Path, 0) != "" {
		return -1 // invalid on its own
	}
	for _, other := range t.specs[:len(t.specs)-1] {
		if !slices.Contains(other.Methods, method) {
			continue
		}
		scratch := newTable[T]().trees
		tryHandle(scratch, method, other.Path, 0)
		if tryHandle(scratch, method, spec.Path, 1) != "" {
			return other.ID
		}
	}
	return -1
}

// indexSlot receives a route's index from its httprouter.Handle: the tree
// stores Handles, and calling one is how to learn which route it is.
type indexSlot struct {
	http.ResponseWriter // never used
	idx                 int
}

func handleIndex(idx int) httprouter.Handle {
	return func(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) { w.(*indexSlot).idx = idx }
}

// Result says what Match found.
type Result int

const (
	Found            Result = iota // a route matched
	NotFound                       // no route has this path
	MethodNotAllowed               // routes have this path, none this method
)

// Match finds the route for a request. path must be normalised (see
// Normalize). For NotFound and MethodNotAllowed, allow lists the methods
// the path does answer (sorted; empty for NotFound).
//
// A host-specific route wins over an any-host route for the same request;
// a request whose host has routes but none for this path falls back to the
// any-host routes.
func (r *Router[T]) Match(method, host, path string) (v T, ps Params, res Result, allow []string) {
	host = stripPort(strings.ToLower(host))
	res = NotFound
	for _, t := range [2]*table[T]{r.hosts[host], r.anyHost} {
		if t == nil {
			continue
		}
		if idx, hps, ok := t.lookup(method, path); ok {
			if len(hps) > 0 {
				ps = make(Params, len(hps))
				for i, p := range hps {
					ps[i] = Param{p.Key, p.Value}
				}
			}
			return t.values[idx], ps, Found, nil
		}
		if a := t.allowed(path); len(a) > 0 {
			return v, nil, MethodNotAllowed, a
		}
	}
	return v, nil, res, nil
}

func (t *table[T]) lookup(method, path string) (int, httprouter.Params, bool) {
	h, ps, _ := t.trees.Lookup(method, path)
	if h == nil {
		return 0, nil, false
	}
	var slot indexSlot
	h(&slot, nil, nil)
	return slot.idx, ps, true
}

func (t *table[T]) allowed(path string) []string {
	var allow []string
	seen := map[string]bool{}
	for _, s := range t.specs {
		for _, m := range s.Methods {
			if seen[m] {
				continue
			}
			if h, _, _ := t.trees.Lookup(m, path); h != nil {
				allow = append(allow, m)
				seen[m] = true
			}
		}
	}
	sort.Strings(allow)
	return allow
}

func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i > 0 {
			return host[1:i]
		}
		return host
	}
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.Count(host, ":") == 1 {
		return host[:i]
	}
	return host
}
