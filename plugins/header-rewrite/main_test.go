//go:build !wasip1

package main

import (
	"testing"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

func TestRewrite(t *testing.T) {
	setup(Config{Request: Rules{
		Set:    map[string]string{"X-Gateway": "lintel", "X-Client": "{client_ip} via {route}"},
		Add:    map[string]string{"X-Multi": "two"},
		Remove: []string{"X-Debug"},
		Rename: map[string]string{"X-Old": "X-New"},
	}, Response: Rules{
		Set:    map[string]string{"X-Request-Id": "{request_id}", "X-User": "{property:user}"},
		Remove: []string{"Server"},
	}})
	h := lintel.NewFakeHost()
	h.Properties["route"] = "orders"
	h.Properties["user"] = "alice"
	h.RequestHeader.Set("X-Debug", "1")
	h.RequestHeader.Set("X-Old", "value")
	h.RequestHeader.Set("X-Multi", "one")
	h.UpstreamHeader.Set("Server", "internal/1.2")
	h.Run()
	rq := h.RequestHeader
	if rq.Get("X-Gateway") != "lintel" || rq.Get("X-Client") != "192.0.2.1 via orders" || rq.Get("X-Debug") != "" ||
		rq.Get("X-Old") != "" || rq.Get("X-New") != "value" || len(rq.Values("X-Multi")) != 2 {
		t.Errorf("request headers: %v", rq)
	}
	rs := h.ResponseHeader
	if rs.Get("X-Request-Id") != "test" || rs.Get("X-User") != "alice" || rs.Get("Server") != "" {
		t.Errorf("response headers: %v", rs)
	}
}

func TestExpandUnknownAndUnclosed(t *testing.T) {
	h := lintel.NewFakeHost()
	var got []string
	lintel.HandleRequest(func(lintel.Request, lintel.Response) bool {
		got = []string{expand("a{nope}b"), expand("x{unclosed"), expand("plain")}
		return true
	})
	h.Run()
	if got[0] != "ab" || got[1] != "x{unclosed" || got[2] != "plain" {
		t.Errorf("expand: %q", got)
	}
}
