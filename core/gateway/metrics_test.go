package gateway

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRequestMetrics(t *testing.T) {
	up := newUpstream(t, nil)
	h := start(t, ordersRoute, map[string]string{"orders": up.URL})
	h.do("GET", "/api/v1/orders/1", nil)
	h.do("GET", "/api/v1/orders/2", nil)
	h.do("DELETE", "/api/v1/orders/2", nil)
	h.do("BREW", "/nowhere", nil)
	for labels, want := range map[[4]string]float64{
		{"default", "orders", "GET", "200"}: 2,
		{"default", "", "DELETE", "405"}:    1,
		{"default", "", "other", "404"}:     1,
	} {
		got := testutil.ToFloat64(h.g.metrics.requests.WithLabelValues(labels[:]...))
		if got != want {
			t.Errorf("lintel_requests_total%v = %v, want %v", labels, got, want)
		}
	}
	if n := testutil.CollectAndCount(h.g.metrics.duration); n != 2 {
		t.Errorf("%d duration series, want 2 (orders and no route)", n)
	}
}
