package exchange

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHeaderNameReadsUnderscoreAsDash(t *testing.T) {
	for in, want := range map[string]string{"X-User": "X-User", "x_user": "X-User", "X_Real_IP": "X-Real-Ip", "content-type": "Content-Type"} {
		if got := HeaderName(in); got != want {
			t.Errorf("HeaderName(%q) = %q, want %q", in, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { HeaderName("X-Request-Id") }); n != 0 {
		t.Errorf("a canonical name costs %v allocations", n)
	}
}

func TestDropSpellingsKeepsOnlyTheNameSet(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header = http.Header{"X-User": {"alice"}, "X_user": {"admin"}, "X_USER": {"root"}, "X_other": {"kept"}}
	x := &Exchange{Request: r, UnderscoreHeaders: true}
	x.DropSpellings("X-User")
	if len(r.Header) != 2 || r.Header.Get("X-User") != "alice" || r.Header["X_other"] == nil {
		t.Errorf("headers after DropSpellings: %v", r.Header)
	}
}

func TestForwardHeaders(t *testing.T) {
	x := &Exchange{RequestID: "id1", ForwardedFor: "10.0.0.1, 127.0.0.1", Scheme: "https", Host: "api.example"}
	h := http.Header{"X-Forwarded-For": {"forged"}}
	x.ForwardHeaders(h)
	want := http.Header{"X-Request-Id": {"id1"}, "X-Forwarded-For": {"10.0.0.1, 127.0.0.1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"api.example"}}
	for k, v := range want {
		if h.Get(k) != v[0] || len(h[k]) != 1 {
			t.Errorf("%s = %q, want %q", k, h[k], v)
		}
	}
}

// Properties hold their latest value, however many a request has: the
// first few in the exchange itself, the rest in a map.
func TestPropertiesHoldTheirLatestValue(t *testing.T) {
	for _, n := range []int{1, 4, 5, 100} {
		x := &Exchange{}
		for round := range 2 {
			for i := range n {
				x.SetProperty(fmt.Sprint("p", i), fmt.Sprint(i, "/", round))
			}
		}
		for i := range n {
			if v, ok := x.Property(fmt.Sprint("p", i)); !ok || v != fmt.Sprint(i, "/1") {
				t.Errorf("%d properties: p%d = %q, %v", n, i, v, ok)
			}
		}
		if v, ok := x.Property("absent"); ok || v != "" {
			t.Errorf("%d properties: an absent one reads %q, %v", n, v, ok)
		}
	}
	x := &Exchange{}
	if n := testing.AllocsPerRun(100, func() { x.SetProperty("user", "alice"); x.OnComplete(func(*Exchange) {}); x.Complete() }); n != 0 {
		t.Errorf("a property and a completion cost %v allocations", n)
	}
}

// Completion functions run in order, with the exchange, once.
func TestCompleteRunsEachFunctionOnceInOrder(t *testing.T) {
	x := &Exchange{}
	var got []string
	for _, name := range []string{"a", "b", "c"} {
		x.OnComplete(func(c *Exchange) {
			if c != x {
				t.Errorf("%s: called with another exchange", name)
			}
			got = append(got, name)
		})
	}
	x.Complete()
	x.Complete()
	if fmt.Sprint(got) != "[a b c]" {
		t.Errorf("ran %v", got)
	}
}
