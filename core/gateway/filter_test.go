package gateway_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// chainConfig: listener filters a, b; route filters c, d; each filter's
// behaviour comes from the extra TOML for it.
func chainConfig(extra string) string {
	return `
[listeners.default]
listen = "127.0.0.1:0"
filters = ["a", "b"]
[filters.a]
[filters.b]
[filters.c]
[filters.d]
` + extra + `
[services.orders]
targets = ["{{orders}}"]
[[routes]]
name = "orders"
path = "/orders/*rest"
service = "orders"
filters = ["c", "d"]
[[routes]]
name = "product"
path = "/products/:id"
[routes.aggregate]
parts = [{ key = "a", service = "orders", path = "/a/{id}" }, { key = "b", service = "orders", path = "/b/{id}" }]
`
}

func TestFilterOrder(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, chainConfig(""), map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/orders/1", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := gatewaytest.DecodeEcho(t, body).Header.Values("X-Trace"); strings.Join(got, ",") != "a,b,c,d" {
		t.Errorf("request phase order at upstream: %v, want a,b,c,d", got)
	}
	if got := resp.Header.Values("X-Trace"); strings.Join(got, ",") != "d,c,b,a" {
		t.Errorf("response phase order: %v, want d,c,b,a", got)
	}
	want := "a:request b:request c:request d:request d:response d:release c:response c:release b:response b:release a:response a:release"
	if got := strings.Join(h.Filters.Events(), " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}

func TestFilterAnswersSkipsRestAndUpstream(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, strings.Replace(chainConfig(""), "[filters.c]", "[filters.c]\nconfig = { answer = 403 }", 1), map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/orders/1", nil)
	if resp.StatusCode != 403 || body != "answered by c" {
		t.Errorf("got %d %q", resp.StatusCode, body)
	}
	if up.Count() != 0 {
		t.Error("upstream reached after a filter answered")
	}
	// The response phase of the filters before c still runs, c's and d's do not.
	if got := resp.Header.Values("X-Trace"); strings.Join(got, ",") != "b,a" {
		t.Errorf("response phase on an answered request: %v, want b,a", got)
	}
	for _, e := range h.Filters.Events() {
		if strings.HasPrefix(e, "d:") || e == "c:response" {
			t.Errorf("unexpected event %s", e)
		}
	}
}

func TestListenerFiltersSeeNotFound(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, chainConfig(""), map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/nowhere", nil)
	gatewaytest.ProblemBody(t, resp, body)
	if resp.StatusCode != 404 || strings.Join(resp.Header.Values("X-Trace"), ",") != "b,a" {
		t.Errorf("404 through listener filters: %d, trace %v", resp.StatusCode, resp.Header.Values("X-Trace"))
	}
	if got := strings.Join(h.Filters.Events(), " "); strings.Contains(got, "c:") {
		t.Errorf("route filters ran on a 404: %s", got)
	}
}

// TestListenerFilterChangesPathBeforeRouting: the path a listener filter
// sets is normalised and then routed.
func TestListenerFilterChangesPathBeforeRouting(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, strings.Replace(chainConfig(""), "[filters.b]", "[filters.b]\nconfig = { set_path = \"//orders/x/../moved\" }", 1), map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/anything", nil)
	if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Path != "/orders/moved" {
		t.Errorf("got %d %s", resp.StatusCode, body)
	}
}

func TestFilterBufferedResponse(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		fmt.Fprint(w, "hello")
	})
	h := gatewaytest.Start(t, strings.Replace(chainConfig(""), "[filters.d]", "[filters.d]\nconfig = { buffer = true, append_body = \" world\" }", 1), map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/orders/1", nil)
	if body != "hello world" || resp.ContentLength != 11 {
		t.Errorf("buffered body %q, Content-Length %d", body, resp.ContentLength)
	}
}

// TestResponsePhaseOnStreamedResponse: header changes of the response
// phase reach the client before a stream ends, without buffering it.
func TestResponsePhaseOnStreamedResponse(t *testing.T) {
	next := make(chan struct{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-time.After(5 * time.Second):
		}
	})
	h := gatewaytest.Start(t, chainConfig(""), map[string]string{"orders": up.URL})
	resp, err := gatewaytest.Client.Get(h.URL() + "/orders/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	defer close(next)
	if got := strings.Join(resp.Header.Values("X-Trace"), ","); got != "d,c,b,a" {
		t.Errorf("response phase headers on a stream: %q", got)
	}
	if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); line != "data: one\n" {
		t.Errorf("first event %q", line)
	}
}

func TestFilterFailures(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	for _, tc := range []struct{ mode, detail string }{
		{"request", `filter \"c\" failed`},
		{"panic", `filter \"c\" failed`},
		{"response", `filter \"c\" failed`},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			h := gatewaytest.Start(t, strings.Replace(chainConfig(""), "[filters.c]", "[filters.c]\nconfig = { fail = \""+tc.mode+"\" }", 1), map[string]string{"orders": up.URL})
			resp, body := h.Do("GET", "/orders/1", nil)
			gatewaytest.ProblemBody(t, resp, body)
			if resp.StatusCode != 500 || !strings.Contains(body, tc.detail) {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
			// Every hold is released, and the gateway keeps serving.
			ev := strings.Join(h.Filters.Events(), " ")
			for _, f := range []string{"a", "b"} {
				if !strings.Contains(ev, f+":release") {
					t.Errorf("%s not released: %s", f, ev)
				}
			}
			h.Filters.Reset()
			if resp, _ := h.Do("GET", "/nowhere", nil); resp.StatusCode != 404 {
				t.Errorf("next request: %d", resp.StatusCode)
			}
		})
	}
}

func TestFilterSeesTargetError(t *testing.T) {
	h := gatewaytest.Start(t, chainConfig(""), map[string]string{"orders": gatewaytest.DeadAddr(t)})
	resp, _ := h.Do("GET", "/orders/1", nil)
	if resp.StatusCode != 502 || strings.Join(resp.Header.Values("X-Trace-Error"), ",") != "d,c,b,a" {
		t.Errorf("status %d, X-Trace-Error %v", resp.StatusCode, resp.Header.Values("X-Trace-Error"))
	}
}

// TestAggregateRunsChainOnce: filters run once per client request, never
// once per fanned-out part.
func TestAggregateRunsChainOnce(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
	src := strings.Replace(chainConfig(""), `path = "/products/:id"`, `path = "/products/:id"`+"\nfilters = [\"c\"]", 1)
	h := gatewaytest.Start(t, src, map[string]string{"orders": up.URL})
	resp, body := h.Do("GET", "/products/1", nil)
	if resp.StatusCode != 200 || body != `{"a":{"ok":true},"b":{"ok":true}}` {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	want := "a:request b:request c:request c:response c:release b:response b:release a:response a:release"
	if got := strings.Join(h.Filters.Events(), " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	if up.Count() != 2 {
		t.Errorf("upstream calls %d, want 2", up.Count())
	}
}

// TestResponsePhaseOnWebSocketUpgrade: filters see the 101 of a protocol
// switch and their headers reach the client; the bytes flow after it.
func TestResponsePhaseOnWebSocketUpgrade(t *testing.T) {
	up := gatewaytest.NewUpstream(t, gatewaytest.WSEcho)
	h := gatewaytest.Start(t, chainConfig(""), map[string]string{"orders": up.URL})
	resp := h.WSRoundTrip("/orders/ws")
	if got := strings.Join(resp.Header.Values("X-Trace"), ","); got != "d,c,b,a" {
		t.Errorf("X-Trace on the 101: %q", got)
	}
	want := "a:request b:request c:request d:request d:response d:release c:response c:release b:response b:release a:response a:release"
	if got := strings.Join(h.Filters.Events(), " "); got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
}
