package wasm

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
)

// A memoizable guest (declareMemoizable) may end a phase's call by
// calling memoize: "this outcome depended on these headers only; for as
// long as ttl, a request whose values of them are the same gets the same
// outcome". The host then applies it itself, without an instance or a
// guest call, by replaying what the guest did, in order: the headers it
// set, added and removed, the properties it set and the metric updates it
// made. In the request phase the names are request headers, and only a
// request the guest let through (next = 1) is memoized; in the response
// phase (a stateless guest's) they are response headers, and a response
// the proxy marked as an error is neither memoized nor answered from the
// memo. A call is memoized only when everything it did can be replayed: a
// call that answered, read a body, the status, method or URI, changed
// them, used the shared state, made an outbound call, emitted a line or
// logged is not. jwt-auth memoizes a verified token until it expires, and
// header-rewrite each phase whose changes are the same for every request:
// the policy (which tokens, which headers) stays the guest's, and an
// outcome seen again costs a lookup instead of a call.

// memoOp is one replayable effect of a call.
type memoOp struct {
	kind   memoKind
	name   string // a header's or property's name; a metric series' key
	value  string // a property's value
	metric metric
	v      float64
	// values is a header's value as a header holds it, shared by every
	// replay (see headerValues); nil for a removal.
	values []string
}

type memoKind uint8

const (
	opSetHeader memoKind = iota
	opAddHeader
	opRemoveHeader
	opSetProperty
	opMetric
)

// recording collects a request- or response-phase call's effects, for
// memoize.
type recording struct {
	ops     []memoOp
	spoiled bool // the call did something that cannot be replayed
	// memoize was called, with the headers the decision read, and for
	// how long it holds.
	memoize bool
	names   []string
	ttl     time.Duration
	// reads are the headers of the phase (request or response) the
	// call read (canonical), with the values it first saw: the names
	// given to memoize must cover them, and the memo's key is made of
	// them.
	reads http.Header
	// reqCtx is what a request-phase call returned for handle_response:
	// replayed with the rest.
	reqCtx uint32
}

// read notes that the call read header name, valued values (nil-safe;
// nothing once the call is spoiled, as add).
func (r *recording) read(name string, values []string) {
	if r == nil || r.spoiled {
		return
	}
	if r.reads == nil {
		r.reads = http.Header{}
	}
	if _, seen := r.reads[name]; !seen {
		r.reads[name] = slices.Clone(values)
	}
}

// replayable reports whether the recording may be memoized: memoize was
// called, nothing unreplayable happened, and every request header the
// call read is among the names its outcome is keyed by.
func (r *recording) replayable(names []string) bool {
	if !r.memoize || r.spoiled || r.ttl <= 0 {
		return false
	}
	for read := range r.reads {
		if !slices.Contains(names, read) {
			return false
		}
	}
	return true
}

func (r *recording) add(op memoOp) {
	if r != nil && !r.spoiled {
		r.ops = append(r.ops, op)
	}
}

// spoil marks the call as not replayable (nil-safe).
func (r *recording) spoil() {
	if r != nil {
		r.spoiled = true
	}
}

// memoTable holds a filter's memoized outcomes of one phase, by the
// values of the headers they depend on.
type memoTable struct {
	mu      sync.RWMutex
	names   []string // canonical; the key's headers, from the latest memoize
	entries map[string]*memoEntry
}

type memoEntry struct {
	until  time.Time
	ops    []memoOp
	reqCtx uint32 // the request phase's result for handle_response
}

// Bounds of a memo table: entries, and the size of one key (a request
// whose headers are larger is not memoized).
const (
	maxMemoEntries = 4096
	maxMemoKey     = 8 << 10
	maxMemoTTL     = time.Hour
)

// memoKey writes the values of names in h (Host: host, when not empty),
// each value and each name ended by a separator byte a header cannot
// hold, so that absence, an empty value and the split between values all
// make distinct keys.
func memoKey(buf []byte, names []string, h http.Header, host string) []byte {
	for _, n := range names {
		for _, v := range requestHeader(h, host, n) {
			buf = append(buf, v...)
			buf = append(buf, 0)
		}
		buf = append(buf, 1)
	}
	return buf
}

// memoKeyBufs recycles the keys lookups build: a bearer token alone is
// often longer than a buffer on the stack would be.
var memoKeyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// lookup returns the outcome memoized for headers h (host: the request's
// Host, or "" for a response) at now, or nil.
func (m *memoTable) lookup(h http.Header, host string, now time.Time) *memoEntry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if len(m.entries) == 0 {
		return nil
	}
	buf := memoKeyBufs.Get().(*[]byte)
	defer memoKeyBufs.Put(buf)
	*buf = memoKey((*buf)[:0], m.names, h, host)
	e := m.entries[string(*buf)] // no allocation for the lookup
	if e == nil || !now.Before(e.until) {
		return nil
	}
	return e
}

// store memoizes a call's recording, when it is replayable, as of now.
// Its key is made of the values the guest read; a name it gave but did
// not read is keyed by its value in h (which the outcome did not depend
// on: that only narrows what matches). h and host are as for lookup.
func (m *memoTable) store(h http.Header, host string, r *recording, now time.Time) {
	if !r.memoize || r.spoiled {
		return // nothing to key: the call did not memoize, or cannot be replayed
	}
	names := make([]string, len(r.names))
	keyed := http.Header{}
	for i, n := range r.names {
		names[i] = http.CanonicalHeaderKey(n)
		if v, read := r.reads[names[i]]; read {
			keyed[names[i]] = v
		} else {
			keyed[names[i]] = requestHeader(h, host, names[i])
		}
	}
	if !r.replayable(names) {
		return
	}
	key := memoKey(nil, names, keyed, "")
	if len(key) > maxMemoKey {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Equal(m.names, names) {
		// The decision depends on other headers now: the old keys mean
		// nothing.
		m.names, m.entries = names, nil
	}
	if m.entries == nil {
		m.entries = map[string]*memoEntry{}
	}
	if len(m.entries) >= maxMemoEntries {
		for k, e := range m.entries {
			if !now.Before(e.until) {
				delete(m.entries, k)
			}
		}
		if len(m.entries) >= maxMemoEntries {
			clear(m.entries)
		}
	}
	m.entries[string(key)] = &memoEntry{until: now.Add(min(r.ttl, maxMemoTTL)), ops: r.ops, reqCtx: r.reqCtx}
}

// replay applies a memoized outcome to x, as the guest's call did: its
// header changes to the request, or to resp when it is a response
// phase's.
func (f *Filter) replay(x *exchange.Exchange, e *memoEntry, resp http.Header) {
	for i := range e.ops {
		op := &e.ops[i]
		switch op.kind {
		case opSetHeader, opAddHeader, opRemoveHeader:
			if resp != nil {
				changeHeaderIn(resp, op.kind, op.name, op.values)
			} else {
				changeRequestHeader(x, op.kind, op.name, op.values)
			}
		case opSetProperty:
			x.SetProperty(op.name, op.value)
		case opMetric:
			updateMetric(f, op.metric, op.v, op.name)
		}
	}
}

// changeRequestHeader sets, adds or removes a request header named name
// (canonical), as the http_handler functions do: Host is the request's
// Host, and a name a filter changed keeps no other spelling (X_User
// beside X-User). values is as for changeHeaderIn.
func changeRequestHeader(x *exchange.Exchange, kind memoKind, name string, values []string) {
	if name == "Host" {
		x.Request.Host = ""
		if kind != opRemoveHeader {
			x.Request.Host = values[0]
		}
		return
	}
	changeHeaderIn(x.Request.Header, kind, name, values)
	x.DropSpellings(name)
}

// changeHeaderIn sets, adds or removes header name (canonical) in h.
// values is the value as a header holds it ([]string{value}; nil to
// remove): a set stores that slice itself, which may be shared (see
// headerValues), an add appends its value.
func changeHeaderIn(h http.Header, kind memoKind, name string, values []string) {
	switch kind {
	case opSetHeader:
		h[name] = values
	case opAddHeader:
		h[name] = append(h[name], values[0])
	case opRemoveHeader:
		delete(h, name)
	}
}

// hostMemoize is lintel.memoize(names, names_len, ttl_ms): names are the
// headers of the phase (NUL-terminated) the call's outcome read.
func hostMemoize(ctx context.Context, mod api.Module, stack []uint64) {
	s := req(ctx, fnMemoize)
	if s.rec == nil {
		// Not in a memoizable guest's phase: nothing to memoize.
		return
	}
	names := nulList(read(mod, uint32(stack[0]), uint32(stack[1]), fnMemoize))
	for _, n := range names {
		if !config.ValidToken(n) {
			fail("%s: invalid header name %q", fnMemoize, n)
		}
	}
	s.rec.memoize, s.rec.names = true, names
	s.rec.ttl = time.Duration(int64(int32(stack[2]))) * time.Millisecond
}
