package wasm

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
)

func memoHeader(auth ...string) http.Header {
	h := http.Header{}
	for _, a := range auth {
		h.Add("Authorization", a)
	}
	return h
}

func recorded(auth []string, ttl time.Duration) *recording {
	r := &recording{memoize: true, names: []string{"authorization"}, ttl: ttl}
	r.read("Authorization", auth)
	r.add(memoOp{kind: opSetHeader, name: "X-User", values: []string{"alice"}})
	return r
}

// A memo hit needs the same values of the keyed headers: absence, an
// empty value, one value and two values are four keys.
func TestMemoKeyIsExact(t *testing.T) {
	var m memoTable
	now := time.Now()
	m.store(memoHeader("a"), "", recorded([]string{"a"}, time.Minute), now)
	for _, auth := range [][]string{nil, {""}, {"a", "a"}, {"A"}, {"a "}} {
		if m.lookup(memoHeader(auth...), "", now) != nil {
			t.Errorf("Authorization %q matched the memo of %q", auth, "a")
		}
	}
	e := m.lookup(memoHeader("a"), "", now)
	if e == nil {
		t.Fatal("the same Authorization missed")
	}
	x := &exchange.Exchange{Request: httptest.NewRequest("GET", "/", nil)}
	x.Request.Header.Set("X-User", "mallory")
	(&Filter{}).replay(x, e, nil)
	if got := x.Request.Header.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("replayed X-User = %q", got)
	}
}

// A memo holds for its ttl only.
func TestMemoExpires(t *testing.T) {
	var m memoTable
	now := time.Now()
	m.store(memoHeader("a"), "", recorded([]string{"a"}, 50*time.Millisecond), now)
	if m.lookup(memoHeader("a"), "", now.Add(40*time.Millisecond)) == nil {
		t.Error("missed within its ttl")
	}
	if m.lookup(memoHeader("a"), "", now.Add(50*time.Millisecond)) != nil {
		t.Error("hit after its ttl")
	}
}

// A call is memoized only when it can be replayed faithfully: memoize
// was called with a ttl, nothing unreplayable happened, and every
// request header it read is among its keys.
func TestMemoRefusesWhatCannotBeReplayed(t *testing.T) {
	now := time.Now()
	for name, r := range map[string]*recording{
		"no memoize": {names: []string{"Authorization"}, ttl: time.Minute},
		"no ttl":     recorded([]string{"a"}, 0),
		"spoiled":    func() *recording { r := recorded([]string{"a"}, time.Minute); r.spoil(); return r }(),
		"unkeyed read": func() *recording {
			r := recorded([]string{"a"}, time.Minute)
			r.read("Cookie", []string{"s=1"})
			return r
		}(),
	} {
		var m memoTable
		m.store(memoHeader("a"), "", r, now)
		if m.lookup(memoHeader("a"), "", now) != nil {
			t.Errorf("%s: memoized", name)
		}
	}
}

// The key is made of the values the guest read, not of what the request
// holds after the call changed it.
func TestMemoKeyIsWhatTheGuestRead(t *testing.T) {
	var m memoTable
	now := time.Now()
	x := memoHeader() // the guest removed Authorization after reading "a"
	m.store(x, "", recorded([]string{"a"}, time.Minute), now)
	if m.lookup(memoHeader(), "", now) != nil || m.lookup(memoHeader("a"), "", now) == nil {
		t.Error("keyed by the request as changed, not as read")
	}
}

// TestResponsePhaseMemoKeyedByResponseHeaders: a stateless guest's
// response phase memoized by the response headers it read is replayed
// for the same values (the replay shows the call it replays), called
// again for other values, and called for an error response whatever its
// headers.
func TestResponsePhaseMemoKeyedByResponseHeaders(t *testing.T) {
	f := load(t, "respmemo", "")
	respond := func(up string, isError bool) http.Header {
		t.Helper()
		x, w := newExchange()
		next, p, err := f.Request(x, w)
		if err != nil || !next || p == nil {
			t.Fatalf("Request: %v %v %v", next, p, err)
		}
		r := &filter.Response{Status: 200, Header: http.Header{}, Error: isError}
		if up != "" {
			r.Header.Set("X-Up", up)
		}
		if err := p.Response(x, r); err != nil {
			t.Fatal(err)
		}
		p.Release()
		return r.Header
	}
	for i, c := range []struct {
		up      string
		isError bool
		call    string
	}{
		{"a", false, "1"},
		{"a", false, "1"}, // replayed
		{"b", false, "2"},
		{"", false, "3"}, // absent is a value of its own
		{"a", false, "1"},
		{"b", false, "2"},
		{"a", true, "4"}, // an error response goes to the guest
	} {
		h := respond(c.up, c.isError)
		if h.Get("X-Call") != c.call || h.Get("X-Seen") != c.up {
			t.Errorf("response %d (X-Up %q, error %v): X-Call %q X-Seen %q; want %q %q", i, c.up, c.isError, h.Get("X-Call"), h.Get("X-Seen"), c.call, c.up)
		}
	}
}

// An instance that sets the same header value again shares the slice it
// set before, and the headers sharing it stay as set when one of them
// gets another value added or is set anew.
func TestHeaderValuesSharedStayAsSet(t *testing.T) {
	var c headerValues
	const name = "Ratelimit-Policy"
	h1, h2 := http.Header{}, http.Header{}
	h1[name] = c.get(name, []byte(`"default";q=100`))
	h2[name] = c.get(name, []byte(`"default";q=100`))
	if &h1[name][0] != &h2[name][0] {
		t.Error("a value set again was copied")
	}
	if n := testing.AllocsPerRun(100, func() { c.get(name, []byte(`"default";q=100`)) }); n != 0 {
		t.Errorf("a value set again costs %v allocations", n)
	}
	h1.Add(name, "other")
	changeHeaderIn(h1, opAddHeader, name, []string{"third"})
	if got := h2.Values(name); len(got) != 1 || got[0] != `"default";q=100` {
		t.Errorf("adding to one header changed the other: %q", got)
	}
	h3 := http.Header{name: c.get(name, []byte("changed"))}
	if h3.Get(name) != "changed" || h2.Get(name) != `"default";q=100` {
		t.Errorf("a new value: %q, and the earlier header now %q", h3.Get(name), h2.Get(name))
	}
	// A large value is not kept by the instance.
	c.get(name, bytes.Repeat([]byte("v"), maxHeaderValueSize+1))
	if _, kept := c[name]; kept {
		t.Error("the instance keeps a value over maxHeaderValueSize")
	}
}
