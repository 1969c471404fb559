package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// productConfig is the seed's Product Detail flow; partOpts are extra
// inline-table keys per part (catalog, inventory, reviews).
func productConfig(timeout string, partOpts ...string) string {
	opts := append(partOpts, "", "", "")
	return fmt.Sprintf(`
[services.catalog]
targets = ["{{catalog}}"]
[services.inventory]
targets = ["{{inventory}}"]
[services.reviews]
targets = ["{{reviews}}"]
[[routes]]
name = "product"
path = "/products/:id"
methods = ["GET", "HEAD"]
[routes.aggregate]
timeout = %q
forward_headers = ["Accept-Language"]
parts = [
  { key = "product", service = "catalog",   path = "/internal/catalog/{id}" %s},
  { key = "stock",   service = "inventory", path = "/internal/inventory/{id}" %s},
  { key = "reviews", service = "reviews",   path = "/internal/reviews/{id}" %s},
]
`, timeout, opts[0], opts[1], opts[2])
}

func jsonUpstream(t *testing.T, body string) *gatewaytest.Upstream {
	return gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	})
}

type product struct{ catalog, inventory, reviews *gatewaytest.Upstream }

func (p product) vars() map[string]string {
	return map[string]string{"catalog": p.catalog.URL, "inventory": p.inventory.URL, "reviews": p.reviews.URL}
}

func seedServices(t *testing.T) product {
	return product{
		catalog:   jsonUpstream(t, `{"name": "Laptop", "price": 999, "internal_cost": 612, "sku": "L-123"}`),
		inventory: jsonUpstream(t, `{"count": 42, "warehouse": {"id": "eu-1", "bins": 3}}`),
		reviews:   jsonUpstream(t, `[{"user": "Nhon", "rating": 5}]`),
	}
}

func TestAggregateSeedProductDetail(t *testing.T) {
	s := seedServices(t)
	h := gatewaytest.Start(t, productConfig("1s", "", `, take = "count"`, ", optional = true"), s.vars())
	resp, body := h.Do("GET", "/products/123", nil, "Accept-Language", "fr", "Authorization", "Bearer secret")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d %s", resp.StatusCode, body)
	}
	want := `{"product":{"name": "Laptop", "price": 999, "internal_cost": 612, "sku": "L-123"},"stock":42,"reviews":[{"user": "Nhon", "rating": 5}]}`
	if body != want {
		t.Errorf("merged body:\n got %s\nwant %s", body, want)
	}
	if resp.Header.Get("X-Lintel-Complete") != "" || resp.Header.Get("Cache-Control") != "" {
		t.Errorf("a complete response is not marked: %v", resp.Header)
	}
	for name, u := range map[string]*gatewaytest.Upstream{"catalog": s.catalog, "inventory": s.inventory, "reviews": s.reviews} {
		r := u.Last()
		if r.URL.Path != "/internal/"+name+"/123" {
			t.Errorf("%s path %q", name, r.URL.Path)
		}
		if r.Header.Get("Accept-Language") != "fr" || r.Header.Get("Authorization") != "" {
			t.Errorf("%s headers: only the configured ones pass: %v", name, r.Header)
		}
		if r.Header.Get("X-Request-Id") != resp.Header.Get("X-Request-Id") || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			t.Errorf("%s: request id / forwarding headers missing: %v", name, r.Header)
		}
	}
	resp, body = h.Do("HEAD", "/products/123", nil)
	if resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
}

func TestAggregateShaping(t *testing.T) {
	s := seedServices(t)
	h := gatewaytest.Start(t, productConfig("1s",
		`, allow = ["sku", "name", "price"], rename = { price = "amount" }`,
		`, take = "warehouse.id"`), s.vars())
	resp, body := h.Do("GET", "/products/9", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if p := got["product"].(map[string]any); len(p) != 3 || p["amount"] != float64(999) || p["internal_cost"] != nil || p["sku"] != "L-123" {
		t.Errorf("allow + rename: %v", p)
	}
	if !strings.HasPrefix(body, `{"product":{"name":"Laptop","amount":999,"sku":"L-123"}`) {
		t.Errorf("shaped fields keep the upstream's order: %s", body)
	}
	if got["stock"] != "eu-1" {
		t.Errorf("nested take: %v", got["stock"])
	}

	// deny drops fields.
	h = gatewaytest.Start(t, productConfig("1s", `, deny = ["internal_cost", "sku"]`), s.vars())
	_, body = h.Do("GET", "/products/9", nil)
	if !strings.HasPrefix(body, `{"product":{"name":"Laptop","price":999},`) {
		t.Errorf("deny: %s", body)
	}
}

func TestAggregateOptionalPartFails(t *testing.T) {
	s := seedServices(t)
	s.reviews = gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", 500) })
	h := gatewaytest.Start(t, productConfig("1s", "", "", ", optional = true"), s.vars())
	resp, body := h.Do("GET", "/products/1", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if !strings.HasSuffix(body, `"reviews":null}`) {
		t.Errorf("failed optional part must be null: %s", body)
	}
	if resp.Header.Get("X-Lintel-Complete") != "false" || resp.Header.Get("X-Lintel-Missing") != "reviews" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("incomplete response not signalled: %v", resp.Header)
	}
}

func TestAggregateRequiredPartFails(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		detail  string
	}{
		{"error status", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 503) }, 502, `required part "stock" failed`},
		{"not JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>oops</html>") }, 502, `required part "stock" failed`},
		{"truncated JSON", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"count": 4`) }, 502, `required part "stock" failed`},
		{"oversized", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, `{"count": 1, "pad": "`+strings.Repeat("x", 2<<20)+`"}`)
		}, 502, `required part "stock" failed`},
		{"array where an object is shaped", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `[1, 2]`) }, 502, `required part "stock" failed`},
		{"missing take field", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"amount": 4}`) }, 502, `required part "stock" failed`},
		{"timeout", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}, 504, `required part "stock" timed out`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := seedServices(t)
			s.inventory = gatewaytest.NewUpstream(t, tt.handler)
			h := gatewaytest.Start(t, productConfig("300ms", "", `, take = "count"`), s.vars())
			resp, body := h.Do("GET", "/products/1", nil)
			p := gatewaytest.ProblemBody(t, resp, body)
			if resp.StatusCode != tt.status || p["detail"] != tt.detail || p["part"] != "stock" {
				t.Errorf("got %d %s", resp.StatusCode, body)
			}
			if strings.Contains(body, "127.0.0.1") {
				t.Errorf("problem leaks an address: %s", body)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		s := seedServices(t)
		vars := s.vars()
		vars["inventory"] = gatewaytest.DeadAddr(t)
		h := gatewaytest.Start(t, productConfig("1s"), vars)
		resp, body := h.Do("GET", "/products/1", nil)
		if p := gatewaytest.ProblemBody(t, resp, body); resp.StatusCode != 502 || p["part"] != "stock" {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
}

// TestAggregatePartsRunInParallel: every part must be in flight at the
// same time for any of them to answer (a barrier), and three parts that
// each take 400ms finish far below their 1.2s sum.
func TestAggregatePartsRunInParallel(t *testing.T) {
	var mu sync.Mutex
	inFlight := 0
	all := make(chan struct{})
	barrier := func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		if inFlight == 3 {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(3 * time.Second):
			http.Error(w, "parts were not concurrent", 500)
			return
		}
		time.Sleep(400 * time.Millisecond)
		io.WriteString(w, `{}`)
	}
	s := product{gatewaytest.NewUpstream(t, barrier), gatewaytest.NewUpstream(t, barrier), gatewaytest.NewUpstream(t, barrier)}
	h := gatewaytest.Start(t, productConfig("5s"), s.vars())
	begin := time.Now()
	resp, body := h.Do("GET", "/products/1", nil)
	elapsed := time.Since(begin)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if elapsed > 1000*time.Millisecond {
		t.Errorf("three 400ms parts took %v: not parallel", elapsed)
	}
}

func TestAggregateRequiredFailureCancelsOthers(t *testing.T) {
	cancelled, started := make(chan struct{}), make(chan struct{})
	slow := func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(5 * time.Second):
		}
	}
	s := product{
		catalog: gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
			<-started // fail only once the slow part is in flight
			http.Error(w, "x", 500)
		}),
		inventory: gatewaytest.NewUpstream(t, slow),
		reviews:   jsonUpstream(t, `[]`),
	}
	h := gatewaytest.Start(t, productConfig("10s"), s.vars())
	resp, _ := h.Do("GET", "/products/1", nil)
	if resp.StatusCode != 502 {
		t.Errorf("status %d", resp.StatusCode)
	}
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Error("the slow part was not cancelled after a required part failed")
	}
}

func TestAggregateClientCancelCancelsFanOut(t *testing.T) {
	var wg sync.WaitGroup
	wg.Add(3)
	slow := func(w http.ResponseWriter, r *http.Request) {
		defer wg.Done()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
			t.Error("part not cancelled when the client left")
		}
	}
	s := product{gatewaytest.NewUpstream(t, slow), gatewaytest.NewUpstream(t, slow), gatewaytest.NewUpstream(t, slow)}
	h := gatewaytest.Start(t, productConfig("10s"), s.vars())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", h.URL()+"/products/1", nil)
	if _, err := gatewaytest.Client.Do(req); err == nil {
		t.Fatal("request should have been cancelled")
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(4 * time.Second):
		t.Fatal("parts still running after the client left")
	}
}

// chainedPartsConfig is a product page whose seller part uses the product's
// seller_id (in its path, query and a header), beside reviews, which
// waits for nothing.
const chainedPartsConfig = `
[services.catalog]
targets = ["{{catalog}}"]
[services.sellers]
targets = ["{{sellers}}"]
[services.reviews]
targets = ["{{reviews}}"]
[[routes]]
path = "/products/:id"
methods = ["GET"]
[routes.aggregate]
timeout = "2s"
parts = [
  { key = "product", service = "catalog", path = "/catalog/{id}" },
  { key = "seller",  service = "sellers", path = "/sellers/{product.seller_id}?shop={product.shop.name}&product={id}", headers = { X-Rank = "{product.rank}" }%s },
  { key = "reviews", service = "reviews", path = "/reviews/{id}" },
]
`

// TestAggregateChainedPart: a part waits for the part whose field it
// uses and gets the field escaped where it lands (one path segment, a
// query value, a header, a large number as written); a part that waits
// for nothing is not held up (reviews is asked while the product is
// still being answered).
func TestAggregateChainedPart(t *testing.T) {
	reviewsAsked := make(chan struct{})
	catalog := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-reviewsAsked:
		case <-time.After(5 * time.Second):
			t.Error("reviews waited for the product")
		}
		io.WriteString(w, `{"name": "Laptop", "seller_id": "acme/eu 1", "shop": {"name": "A&B"}, "rank": 12345678901234567890}`)
	})
	sellers := jsonUpstream(t, `{"name": "ACME"}`)
	reviews := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(reviewsAsked)
		io.WriteString(w, `[]`)
	})
	h := gatewaytest.Start(t, fmt.Sprintf(chainedPartsConfig, ""), map[string]string{"catalog": catalog.URL, "sellers": sellers.URL, "reviews": reviews.URL})
	resp, body := h.Do("GET", "/products/7", nil)
	want := `{"product":{"name": "Laptop", "seller_id": "acme/eu 1", "shop": {"name": "A&B"}, "rank": 12345678901234567890},"seller":{"name": "ACME"},"reviews":[]}`
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("%d\n got %s\nwant %s", resp.StatusCode, body, want)
	}
	r := sellers.Last()
	if r.URL.EscapedPath() != "/sellers/acme%2Feu%201" || r.URL.RawQuery != "shop=A%26B&product=7" || r.Header.Get("X-Rank") != "12345678901234567890" {
		t.Errorf("seller request: path %s query %s X-Rank %q", r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("X-Rank"))
	}
}

// TestAggregateChainedValuesRefused: a value that would climb the path
// ("..") or split a header (CR LF) fails the part that would use it, and
// so does a missing field or a failed part it needs; the optional part's
// failure marks the answer incomplete, naming it.
func TestAggregateChainedValuesRefused(t *testing.T) {
	for name, product := range map[string]string{
		"dot-dot":       `{"seller_id": "..", "shop": {"name": "x"}, "rank": 1}`,
		"crlf":          `{"seller_id": "s1", "shop": {"name": "x"}, "rank": "1\r\nX-Admin: yes"}`,
		"missing field": `{"shop": {"name": "x"}, "rank": 1}`,
		"object":        `{"seller_id": {"id": 1}, "shop": {"name": "x"}, "rank": 1}`,
	} {
		t.Run(name, func(t *testing.T) {
			catalog, sellers, reviews := jsonUpstream(t, product), jsonUpstream(t, `{}`), jsonUpstream(t, `[]`)
			h := gatewaytest.Start(t, fmt.Sprintf(chainedPartsConfig, ", optional = true"), map[string]string{"catalog": catalog.URL, "sellers": sellers.URL, "reviews": reviews.URL})
			resp, body := h.Do("GET", "/products/7", nil)
			if resp.StatusCode != 200 || resp.Header.Get("X-Lintel-Missing") != "seller" || !strings.Contains(body, `"seller":null`) {
				t.Errorf("%d %v %s", resp.StatusCode, resp.Header, body)
			}
			if sellers.Count() != 0 {
				t.Errorf("the seller service was called: %v", sellers.Last().URL)
			}
		})
	}
	// The part it needs failed: the seller part fails too, and being
	// required, fails the answer, naming the part.
	catalog := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) })
	sellers, reviews := jsonUpstream(t, `{}`), jsonUpstream(t, `[]`)
	h := gatewaytest.Start(t, fmt.Sprintf(chainedPartsConfig, ""), map[string]string{"catalog": catalog.URL, "sellers": sellers.URL, "reviews": reviews.URL})
	resp, body := h.Do("GET", "/products/7", nil)
	if resp.StatusCode != 502 || !strings.Contains(body, `"part":"product"`) || sellers.Count() != 0 {
		t.Errorf("%d %s (sellers called %d times)", resp.StatusCode, body, sellers.Count())
	}
}
