package exchange

import (
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
