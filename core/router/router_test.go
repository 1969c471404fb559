package router

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func build(t *testing.T, specs ...Spec) *Router[string] {
	t.Helper()
	r := New[string]()
	for _, s := range specs {
		if err := r.Add(s, s.Host+" "+s.Path); err != nil {
			t.Fatalf("Add(%+v): %v", s, err)
		}
	}
	return r
}

func TestMatch(t *testing.T) {
	r := build(t,
		Spec{ID: 0, Path: "/products/:id", Methods: []string{"GET"}},
		Spec{ID: 1, Path: "/api/v1/orders/*rest", Methods: []string{"GET", "POST"}},
		Spec{ID: 2, Path: "/api/v1/orders", Methods: []string{"GET"}},
		Spec{ID: 3, Host: "admin.example.com", Path: "/products/:id", Methods: []string{"GET", "DELETE"}},
		Spec{ID: 4, Host: "admin.example.com", Path: "/only-admin", Methods: []string{"GET"}},
	)
	tests := []struct {
		method, host, path string
		want               string
		res                Result
		params             string
		allow              string
	}{
		{"GET", "shop.example.com", "/products/123", " /products/:id", Found, "id=123", ""},
		{"GET", "shop.example.com:8080", "/api/v1/orders/42/items", " /api/v1/orders/*rest", Found, "rest=/42/items", ""},
		{"POST", "x", "/api/v1/orders/", " /api/v1/orders/*rest", Found, "rest=/", ""},
		{"GET", "x", "/api/v1/orders", " /api/v1/orders", Found, "", ""},
		{"DELETE", "x", "/products/1", "", MethodNotAllowed, "", "GET"},
		{"PUT", "x", "/api/v1/orders/1", "", MethodNotAllowed, "", "GET, POST"},
		{"GET", "x", "/products", "", NotFound, "", ""},
		{"GET", "x", "/products/1/", "", NotFound, "", ""}, // no trailing-slash redirect
		{"GET", "x", "/PRODUCTS/1", "", NotFound, "", ""},  // case-sensitive
		// Host routes win; the host's table falls back to any-host routes.
		{"DELETE", "admin.example.com", "/products/7", "admin.example.com /products/:id", Found, "id=7", ""},
		{"GET", "ADMIN.example.com:443", "/only-admin", "admin.example.com /only-admin", Found, "", ""},
		{"GET", "admin.example.com", "/api/v1/orders", " /api/v1/orders", Found, "", ""},
		{"GET", "shop.example.com", "/only-admin", "", NotFound, "", ""},
		// OPTIONS is not answered by the router: it is a method like others.
		{"OPTIONS", "x", "/products/1", "", MethodNotAllowed, "", "GET"},
	}
	for _, tt := range tests {
		v, ps, res, allow := r.Match(tt.method, tt.host, tt.path)
		var got []string
		for _, p := range ps {
			got = append(got, p.Key+"="+p.Value)
		}
		if v != tt.want || res != tt.res || strings.Join(got, ",") != tt.params || strings.Join(allow, ", ") != tt.allow {
			t.Errorf("%s %s%s = %q %v %v allow %v; want %q %v %v allow %v", tt.method, tt.host, tt.path, v, res, got, allow, tt.want, tt.res, tt.params, tt.allow)
		}
	}
}

func TestConflictNamesBothRoutes(t *testing.T) {
	tests := []struct {
		name  string
		specs []Spec
		other int
	}{
		{"static beside param", []Spec{
			{ID: 0, Path: "/users/me", Methods: []string{"GET"}},
			{ID: 1, Path: "/health", Methods: []string{"GET"}},
			{ID: 2, Path: "/users/:id", Methods: []string{"GET"}},
		}, 0},
		{"same path twice", []Spec{
			{ID: 0, Path: "/a", Methods: []string{"POST"}},
			{ID: 1, Path: "/a", Methods: []string{"GET"}},
			{ID: 2, Path: "/a", Methods: []string{"GET"}},
		}, 1},
		{"param names differ", []Spec{
			{ID: 0, Path: "/u/:id", Methods: []string{"PUT"}},
			{ID: 1, Path: "/u/:name", Methods: []string{"PUT"}},
		}, 0},
		{"invalid alone", []Spec{
			{ID: 0, Path: "/a/*rest/b", Methods: []string{"GET"}},
		}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New[int]()
			var err error
			for _, s := range tt.specs {
				if err = r.Add(s, s.ID); err != nil {
					break
				}
			}
			var ce *ConflictError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a ConflictError", err)
			}
			if ce.ID != tt.specs[len(tt.specs)-1].ID || ce.Other != tt.other || ce.Reason == "" {
				t.Errorf("conflict = %+v, want other %d", ce, tt.other)
			}
		})
	}
	// Host names are case-insensitive.
	if v, _, res, _ := build(t, Spec{Host: "Admin.Example.COM", Path: "/a", Methods: []string{"GET"}}).Match("GET", "admin.example.com", "/a"); res != Found || v == "" {
		t.Errorf("mixed-case host route not matched")
	}
	// Different methods or hosts never conflict.
	build(t,
		Spec{Path: "/users/me", Methods: []string{"GET"}},
		Spec{Path: "/users/:id", Methods: []string{"PUT"}},
		Spec{Host: "a.example", Path: "/users/:id", Methods: []string{"GET"}},
	)
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" when refused
	}{
		{"/products/123", "/products/123"},
		{"", "/"},
		{"//admin", "/admin"},
		{"/a//b///c", "/a/b/c"},
		{"/%61dmin", "/admin"},
		{"/a/../admin", "/admin"},
		{"/a/./b/", "/a/b/"},
		{"/../../etc/passwd", "/etc/passwd"},
		{"/a/%2e%2e/admin", "/admin"},
		{"/api/v1/orders/", "/api/v1/orders/"},
		{"/Admin", "/Admin"},
		{"/a;b=c", "/a;b=c"},
		{"/files/a%20b", "/files/a b"},
		{"/a%2Fb", ""},
		{"/a%2fb", ""},
		{"/a%5Cb", ""},
		{"/a\\b", ""},
		{"/a%00b", ""},
		{"/a%0d%0aX-Injected:%201", ""},
		{"/public/..;/admin", ""},
		{"/public/.;/admin", ""},
		{"/..;", ""},
	}
	for _, tt := range tests {
		u, err := url.ParseRequestURI(tt.raw)
		if tt.raw == "" {
			u, err = &url.URL{}, nil
		}
		if err != nil {
			t.Fatalf("parse %q: %v", tt.raw, err)
		}
		got, err := Normalize(u)
		if tt.want == "" {
			if err == nil {
				t.Errorf("Normalize(%q) = %q, want refusal", tt.raw, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

func TestTemplate(t *testing.T) {
	tests := []struct {
		tpl, pattern string
		ps           Params
		want         string
	}{
		{"/orders/{rest}", "/api/v1/orders/*rest", Params{{"rest", "/42/items"}}, "/orders/42/items"},
		{"/orders/{rest}", "/api/v1/orders/*rest", Params{{"rest", "/"}}, "/orders/"},
		{"/internal/catalog/{id}", "/products/:id", Params{{"id", "123"}}, "/internal/catalog/123"},
		{"/x/{id}/y/{id}", "/p/:id", Params{{"id", "a b"}}, "/x/a b/y/a b"},
		{"/v2{rest}", "/api/*rest", Params{{"rest", "/a"}}, "/v2a"},
		{"/static", "/p/:id", Params{{"id", "1"}}, "/static"},
	}
	for _, tt := range tests {
		tpl, err := ParseTemplate(tt.tpl, tt.pattern)
		if err != nil {
			t.Fatalf("ParseTemplate(%q): %v", tt.tpl, err)
		}
		if got := tpl.Expand(tt.ps); got != tt.want {
			t.Errorf("%q.Expand(%v) = %q, want %q", tt.tpl, tt.ps, got, tt.want)
		}
	}
	for _, bad := range []string{"/x/{nope}", "/x/{id", "/x/id}"} {
		if _, err := ParseTemplate(bad, "/p/:id"); err == nil {
			t.Errorf("ParseTemplate(%q) succeeded", bad)
		}
	}
}

func TestMatchAllocations(t *testing.T) {
	r := build(t, Spec{Path: "/health", Methods: []string{"GET"}}, Spec{Path: "/products/:id", Methods: []string{"GET"}})
	if n := testing.AllocsPerRun(100, func() { r.Match("GET", "x", "/health") }); n > 1 {
		t.Errorf("static match allocates %v times, want at most 1", n)
	}
}

func BenchmarkMatch(b *testing.B) {
	r := New[int]()
	paths := []string{"/api/v1/orders/*rest", "/api/v1/orders", "/products/:id", "/users/:id/profile", "/health", "/search"}
	for i, p := range paths {
		if err := r.Add(Spec{ID: i, Path: p, Methods: []string{"GET", "POST"}}, i); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct{ name, path string }{{"static", "/health"}, {"param", "/products/123"}, {"catchall", "/api/v1/orders/42/items"}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, res, _ := r.Match("GET", "example.com", c.path); res != Found {
					b.Fatal(res)
				}
			}
		})
	}
}

func BenchmarkNormalize(b *testing.B) {
	clean, _ := url.ParseRequestURI("/api/v1/orders/42/items")
	dirty, _ := url.ParseRequestURI("/api//v1/./orders/../orders/42")
	b.Run("clean", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Normalize(clean)
		}
	})
	b.Run("dirty", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = Normalize(dirty)
		}
	})
}
