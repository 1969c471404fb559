package wasm

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/exchange"
)

func memoExchange(auth ...string) *exchange.Exchange {
	r := httptest.NewRequest("GET", "/", nil)
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return &exchange.Exchange{Request: r}
}

func recorded(auth []string, ttl time.Duration) *recording {
	r := &recording{memoize: true, names: []string{"authorization"}, ttl: ttl}
	r.read("Authorization", auth)
	r.add(memoOp{kind: opSetHeader, name: "X-User", value: "alice"})
	return r
}

// A memo hit needs the same values of the keyed headers: absence, an
// empty value, one value and two values are four keys.
func TestMemoKeyIsExact(t *testing.T) {
	var m memoTable
	now := time.Now()
	m.store(memoExchange("a"), recorded([]string{"a"}, time.Minute), now)
	for _, auth := range [][]string{nil, {""}, {"a", "a"}, {"A"}, {"a "}} {
		if m.lookup(memoExchange(auth...), now) != nil {
			t.Errorf("Authorization %q matched the memo of %q", auth, "a")
		}
	}
	e := m.lookup(memoExchange("a"), now)
	if e == nil {
		t.Fatal("the same Authorization missed")
	}
	x := memoExchange("a")
	x.Request.Header.Set("X-User", "mallory")
	(&Filter{}).replay(x, e)
	if got := x.Request.Header.Values("X-User"); len(got) != 1 || got[0] != "alice" {
		t.Errorf("replayed X-User = %q", got)
	}
}

// A memo holds for its ttl only.
func TestMemoExpires(t *testing.T) {
	var m memoTable
	now := time.Now()
	m.store(memoExchange("a"), recorded([]string{"a"}, 50*time.Millisecond), now)
	if m.lookup(memoExchange("a"), now.Add(40*time.Millisecond)) == nil {
		t.Error("missed within its ttl")
	}
	if m.lookup(memoExchange("a"), now.Add(50*time.Millisecond)) != nil {
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
		m.store(memoExchange("a"), r, now)
		if m.lookup(memoExchange("a"), now) != nil {
			t.Errorf("%s: memoized", name)
		}
	}
}

// The key is made of the values the guest read, not of what the request
// holds after the call changed it.
func TestMemoKeyIsWhatTheGuestRead(t *testing.T) {
	var m memoTable
	now := time.Now()
	x := memoExchange() // the guest removed Authorization after reading "a"
	m.store(x, recorded([]string{"a"}, time.Minute), now)
	if m.lookup(memoExchange(), now) != nil || m.lookup(memoExchange("a"), now) == nil {
		t.Error("keyed by the request as changed, not as read")
	}
}
