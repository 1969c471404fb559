//go:build !wasip1

package lintel_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	lintel "github.com/lintelhq/lintel/sdk/go"
)

// The handlers are package-wide, as in a plugin; each test registers its
// own before running the fake host.

func TestFakeHostRequestAndAnswer(t *testing.T) {
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		var cfg struct{ Deny string }
		if err := lintel.Config(&cfg); err != nil {
			t.Fatal(err)
		}
		if req.Header().Get("X-User") == cfg.Deny {
			resp.SetStatus(403)
			resp.Header().Set("Content-Type", "text/plain")
			resp.Write([]byte("denied"))
			return false
		}
		req.Header().Set("X-Checked", "yes")
		req.SetURI("/checked" + req.URI())
		return true
	})
	lintel.HandleResponse(nil)
	h := lintel.NewFakeHost()
	h.Config = []byte(`{"deny": "mallory"}`)
	h.URI = "/a"
	h.Run()
	if h.Answered || h.RequestHeader.Get("X-Checked") != "yes" || h.URI != "/checked/a" || h.Status != 200 {
		t.Errorf("passed request: answered %v, header %v, uri %q", h.Answered, h.RequestHeader, h.URI)
	}
	h.RequestHeader.Set("X-User", "mallory")
	h.Run()
	if !h.Answered || h.Status != 403 || string(h.ResponseBody) != "denied" {
		t.Errorf("answer: %v %d %q", h.Answered, h.Status, h.ResponseBody)
	}
}

func TestFakeHostResponsePhaseAndBody(t *testing.T) {
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		lintel.EnableFeatures(lintel.BufferResponse)
		return true
	})
	lintel.HandleResponse(func(req lintel.Request, resp lintel.Response) {
		body := resp.Body()
		resp.Write([]byte(strings.ToUpper(string(body))))
		resp.Header().Set("X-Len", "5")
		resp.SetStatus(201)
	})
	defer lintel.HandleResponse(nil)
	h := lintel.NewFakeHost()
	h.UpstreamBody = []byte("hello")
	h.Run()
	if string(h.ResponseBody) != "HELLO" || h.Status != 201 || h.ResponseHeader.Get("X-Len") != "5" {
		t.Errorf("response phase: %d %q %v", h.Status, h.ResponseBody, h.ResponseHeader)
	}
}

func TestFakeHostStatePropertiesMetricsLogs(t *testing.T) {
	hits := lintel.NewCounter("hits_total", "Hits.", "route")
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		route, _ := lintel.Property("route")
		hits.Add(1, route)
		n, _ := lintel.StateIncr("n", 1, time.Minute)
		ok, _ := lintel.StateCAS("once", nil, []byte("x"), 0)
		lintel.SetProperty("seen", "yes")
		lintel.Info("handled", "n", string(rune('0'+n)), "first", map[bool]string{true: "yes", false: "no"}[ok])
		return true
	})
	h := lintel.NewFakeHost()
	h.Properties["route"] = "orders"
	h.Run()
	h.Run()
	if h.Metrics[`hits_total{route=orders}`] != 2 || string(h.State["n"]) != "2" || h.Properties["seen"] != "yes" {
		t.Errorf("metrics %v state %v props %v", h.Metrics, h.State, h.Properties)
	}
	if len(h.Logs) != 2 || h.Logs[0] != "INFO handled n=1 first=yes" || h.Logs[1] != "INFO handled n=2 first=no" {
		t.Errorf("logs %q", h.Logs)
	}
}

func TestFakeHostStateTTL(t *testing.T) {
	now := time.Unix(0, 0)
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		if _, ok, _ := lintel.StateGet("k"); !ok {
			lintel.StateSet("k", []byte("v"), time.Second)
			resp.Header().Set("X-Fresh", "1")
		}
		return true
	})
	h := lintel.NewFakeHost()
	h.Now = func() time.Time { return now }
	h.Run()
	h.Run()
	if h.ResponseHeader.Get("X-Fresh") != "" {
		t.Error("key gone before its TTL")
	}
	now = now.Add(2 * time.Second)
	h.Run()
	if h.ResponseHeader.Get("X-Fresh") != "1" {
		t.Error("key outlived its TTL")
	}
}

func TestFakeHostFetch(t *testing.T) {
	var got *lintel.FetchResponse
	var gotErr error
	var etag []string
	lintel.HandleRequest(func(req lintel.Request, resp lintel.Response) bool {
		got, gotErr = lintel.Fetch("GET", "https://idp.example/jwks", nil, nil)
		if gotErr == nil {
			etag = got.Header("ETag")
		}
		return true
	})
	h := lintel.NewFakeHost()
	h.Run()
	if gotErr != lintel.ErrNotAllowed {
		t.Errorf("without Fetch set, calls are refused: %v", gotErr)
	}
	h.Fetch = func(method, url string, headers []string, body []byte) (int, http.Header, []byte, error) {
		return 200, http.Header{"Etag": {"v1"}}, []byte(`{"keys":[]}`), nil
	}
	h.Run()
	if gotErr != nil || got.Status != 200 || string(got.Body) != `{"keys":[]}` || len(etag) != 1 || etag[0] != "v1" {
		t.Errorf("fetch: %+v %v", got, gotErr)
	}
}
