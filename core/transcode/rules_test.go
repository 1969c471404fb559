package transcode

import "testing"

// TestRouterPath: the path templates of google.api.http that the router
// can hold become its patterns; the others are refused with a reason.
func TestRouterPath(t *testing.T) {
	for tpl, want := range map[string]string{
		"/v1/products/{id}":         "/v1/products/:id",
		"/v1/products/{id=*}/stock": "/v1/products/:id/stock",
		"/v1/files/{path=**}":       "/v1/files/*path",
		"/v1/shelves/{shelf.id}":    "/v1/shelves/:shelf.id",
		"/v1/{name=shelves/*}":      "",
		"/v1/products/{id}:adjust":  "",
		"/v1/{path=**}/meta":        "",
		"/v1/*/things":              "",
		"v1/products":               "",
	} {
		got, err := routerPath(tpl)
		if want == "" {
			if err == nil {
				t.Errorf("%s: %q, want an error", tpl, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", tpl, got, err, want)
		}
	}
}
