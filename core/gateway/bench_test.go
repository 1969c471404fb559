package gateway_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

const proxyBenchConfig = `
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
`

// BenchmarkProxy measures a GET over loopback: straight to the upstream,
// through the gateway, and an aggregate of three parts, each untraced
// and traced (every request recorded and exported over OTLP/HTTP to a
// collector in this process that discards them). The difference between "direct" and
// "gateway" is the gateway's cost per request; between "gateway" and
// "gateway-traced", tracing's.
func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"123","name":"Laptop","price":999}`)
	}))
	defer up.Close()
	// The collector: takes each export and discards it.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	vars := map[string]string{"up": up.URL, "otlp": collector.URL}
	h := gatewaytest.Start(b, proxyBenchConfig, vars)
	traced := gatewaytest.Start(b, "[tracing]\nendpoint = \"{{otlp}}\"\n"+proxyBenchConfig, vars)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for _, c := range []struct{ name, url string }{
		{"direct", up.URL + "/orders/42"},
		{"gateway", h.URL() + "/api/v1/orders/42"},
		{"gateway-traced", traced.URL() + "/api/v1/orders/42"},
		{"aggregate", h.URL() + "/products/42"},
		{"aggregate-traced", traced.URL() + "/products/42"},
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
