package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// BenchmarkProxy measures a GET over loopback: straight to the upstream,
// through the gateway, and an aggregate of three parts. The difference
// between "direct" and "gateway" is the gateway's cost per request.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"123","name":"Laptop","price":999}`)
	}))
	defer up.Close()
	h := gatewaytest.Start(b, `
[services.orders]
targets = ["{{up}}"]
[[routes]]
path = "/api/v1/orders/*rest"
service = "orders"
rewrite = "/orders/{rest}"
[[routes]]
path = "/products/:id"
[routes.aggregate]
parts = [
  { key = "product", service = "orders", path = "/catalog/{id}" },
  { key = "stock",   service = "orders", path = "/inventory/{id}", take = "price" },
  { key = "reviews", service = "orders", path = "/reviews/{id}", optional = true },
]
`, map[string]string{"up": up.URL})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, url string }{
		{"direct", up.URL + "/orders/42"},
		{"gateway", h.URL() + "/api/v1/orders/42"},
		{"aggregate", h.URL() + "/products/42"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(c.url)
					if err != nil {
						b.Fatal(err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		})
	}
}
