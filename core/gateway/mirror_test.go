package gateway_test

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

const mirrorConfig = `
[services.orders]
targets = ["{{orders}}"]
[services.shadow]
targets = ["{{shadow}}"]
timeout = "5s"
[[routes]]
name = "orders"
path = "/orders/*rest"
service = "orders"
mirror = { service = "shadow"%s }
`

// TestMirrorCopiesWithoutCredentials: the copy has the request's method,
// path, query and body, no credentials, and the mirror mark; the client
// gets the service's answer and never waits for the mirror's (the mirror
// is still holding its copy when the client has its answer).
func TestMirrorCopiesWithoutCredentials(t *testing.T) {
	orders := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "orders got "+string(b))
	})
	release := make(chan struct{})
	copies := make(chan *http.Request, 4)
	shadow := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		r.Header.Set("X-Test-Body", string(b))
		copies <- r
		<-release
	})
	defer close(release)
	h := gatewaytest.Start(t, strings.Replace(mirrorConfig, "%s", "", 1), map[string]string{"orders": orders.URL, "shadow": shadow.URL})
	resp, body := h.Do("POST", "/orders/7?x=1", strings.NewReader(`{"qty":2}`), "Authorization", "Bearer secret", "Cookie", "session=s", "X-Tenant", "acme")
	if resp.StatusCode != 200 || body != `orders got {"qty":2}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	select {
	case c := <-copies:
		if c.Method != "POST" || c.URL.Path != "/orders/7" || c.URL.RawQuery != "x=1" || c.Header.Get("X-Test-Body") != `{"qty":2}` ||
			c.Header.Get("X-Tenant") != "acme" || c.Header.Get("X-Lintel-Mirror") != "1" || c.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") {
			t.Errorf("copy: %s %s?%s %v", c.Method, c.URL.Path, c.URL.RawQuery, c.Header)
		}
		if c.Header.Get("Authorization") != "" || c.Header.Get("Cookie") != "" {
			t.Errorf("the copy carried credentials: %v", c.Header)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no copy reached the mirror")
	}
	if orders.Last().Header.Get("Authorization") != "Bearer secret" {
		t.Error("the request's own upstream lost its credentials")
	}
}

// TestMirrorBounds: copies beyond max_concurrent are dropped, bodies
// beyond max_body are not copied (and reach the upstream whole), share 0
// copies nothing; each is counted.
func TestMirrorBounds(t *testing.T) {
	orders := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b)))
	})
	release := make(chan struct{})
	shadow := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	h := gatewaytest.Start(t, strings.Replace(mirrorConfig, "%s", `, max_concurrent = 1, max_body = "8B"`, 1), map[string]string{"orders": orders.URL, "shadow": shadow.URL})
	h.Do("GET", "/orders/1", nil)
	for deadline := time.Now().Add(5 * time.Second); shadow.Count() < 1 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
	}
	h.Do("GET", "/orders/2", nil) // the first copy holds the only slot
	big := strings.Repeat("x", 20)
	resp, body := h.Do("POST", "/orders/3", strings.NewReader(big))
	if resp.StatusCode != 200 || body != "20" {
		t.Errorf("the large body's own request: %d, upstream read %q bytes", resp.StatusCode, body)
	}
	close(release)
	m := h.Gather()
	for _, want := range []string{
		`lintel_mirror_requests_total{result="busy",route="orders"} 1`,
		`lintel_mirror_requests_total{result="body_too_large",route="orders"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("missing %s in:\n%s", want, m)
		}
	}
	if shadow.Count() != 1 {
		t.Errorf("the mirror got %d copies, want 1", shadow.Count())
	}
	if orders.Count() != 3 || orders.Last().ContentLength != 20 {
		t.Errorf("the upstream got %d requests, the last with %d bytes", orders.Count(), orders.Last().ContentLength)
	}

	none := gatewaytest.NewUpstream(t, nil)
	h = gatewaytest.Start(t, strings.Replace(mirrorConfig, "%s", `, share = 0.0`, 1), map[string]string{"orders": orders.URL, "shadow": none.URL})
	for range 5 {
		h.Do("GET", "/orders/1", nil)
	}
	if none.Count() != 0 {
		t.Errorf("share 0 copied %d requests", none.Count())
	}
}
