// Command demo-services runs the small upstream services the default
// gateway.toml fronts: catalog (two instances), inventory (REST, and gRPC
// on 9105), reviews and orders, each on its own loopback port. They exist
// for the demo and the benchmarks; they are not part of the gateway.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/lintelhq/lintel/internal/grpcinventory"
	"github.com/lintelhq/lintel/internal/otlptest"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	offset := flag.Int("port-offset", 0, "added to every port (9101-9111), to run beside another copy")
	proto := flag.String("proto", "testdata/grpc/inventory.proto", "the gRPC inventory's .proto file")
	keepSpans := flag.Int("keep-spans", 10000, "spans the trace receiver keeps for /traces; -1 discards every export unread")
	flag.Parse()

	// The inventory also speaks gRPC (gateway.toml reaches it so, through
	// REST-to-gRPC translation): every product has 42 in stock.
	grpcAddr := net.JoinHostPort(*host, fmt.Sprint(9105+*offset))
	inv, err := grpcinventory.Start(grpcinventory.Options{Addr: grpcAddr, Proto: *proto, Stock: 42, AnyProduct: true})
	if err != nil {
		log.Fatalf("demo-services: inventory (gRPC): %v", err)
	}
	defer inv.Stop()
	log.Printf("demo-services: inventory (gRPC) on %s", grpcAddr)

	// Traces: an OTLP/HTTP receiver for gateway.toml's [tracing], which
	// shows the latest traces at /traces.
	traces := otlptest.NewReceiver(*keepSpans)

	services := []struct {
		name string
		port int
		h    http.Handler
	}{
		{"catalog", 9101, catalog("catalog-a")},
		{"catalog", 9111, catalog("catalog-b")},
		{"inventory", 9102, http.HandlerFunc(inventory)},
		{"reviews", 9103, http.HandlerFunc(reviews)},
		{"orders", 9104, http.HandlerFunc(orders)},
		{"traces (OTLP receiver; GET /traces)", 9106, traces},
	}
	for _, s := range services {
		addr := net.JoinHostPort(*host, fmt.Sprint(s.port+*offset))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("demo-services: %s: %v", s.name, err)
		}
		log.Printf("demo-services: %s on http://%s", s.name, addr)
		go func() { log.Print(http.Serve(ln, s.h)) }()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

func catalog(instance string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Served-By", instance)
		writeJSON(w, map[string]any{
			"id":          lastSegment(r.URL.Path),
			"name":        "Laptop",
			"price":       999,
			"currency":    "EUR",
			"description": "A 14-inch laptop with a long battery life and a quiet keyboard.",
			"images":      []string{"/img/laptop-front.jpg", "/img/laptop-side.jpg"},
		})
	})
}

func inventory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, map[string]any{"sku": lastSegment(r.URL.Path), "count": 42, "warehouse": "eu-west"})
}

func reviews(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, []map[string]any{
		{"user": "Nhon", "rating": 5, "text": "Fast and light."},
		{"user": "Ada", "rating": 4, "text": "Great screen, average speakers."},
	})
}

func orders(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	if r.Method == http.MethodPost {
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"service":    "orders",
		"method":     r.Method,
		"path":       r.URL.Path,
		"request_id": r.Header.Get("X-Request-Id"),
		"forwarded":  r.Header.Get("X-Forwarded-For"),
		"user":       r.Header.Get("X-User"),
		"gateway":    r.Header.Get("X-Gateway"),
	})
}
