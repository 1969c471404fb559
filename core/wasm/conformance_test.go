package wasm

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
)

// The http_handler ABI, function by function, against an exchange and a
// response recorder: no gateway, no sockets (as http-wasm-host-go's
// handlertest). testdata/wasm/go/conformance picks what it does by the
// X-Case header. internal/e2e runs the same guest through gatewayd.

// conformanceCall runs handle_request for one case and, when the guest
// calls next, handle_response on resp.
func conformanceCall(t *testing.T, f *Filter, req *http.Request, resp *filter.Response) (*exchange.Exchange, *httptest.ResponseRecorder, bool) {
	t.Helper()
	x := &exchange.Exchange{Request: req, RequestID: "r1", BaseLog: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	next, p, err := f.Request(x, w)
	if err != nil {
		t.Fatalf("%s: %v", req.Header.Get("X-Case"), err)
	}
	if p != nil {
		if resp != nil {
			if err := p.Response(x, resp); err != nil {
				t.Fatal(err)
			}
		}
		p.Release()
	}
	return x, w, next
}

func conformanceRequest(method, target, c string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.Header.Set("X-Case", c)
	return r
}

func TestConformanceGetters(t *testing.T) {
	f := load(t, "conformance", `config = { greeting = "hi" }`)
	r := conformanceRequest("PATCH", "/a%20b?x=1", "inspect")
	r.Header.Add("X-Multi", "one")
	r.Header.Add("X-Multi", "two")
	_, w, next := conformanceCall(t, f, r, nil)
	if next || w.Code != 200 {
		t.Fatalf("next %v, status %d", next, w.Code)
	}
	for _, want := range []string{"method=PATCH\n", "uri=/a%20b?x=1\n", "proto=HTTP/1.1\n", `config={"greeting":"hi"}` + "\n", "multi=one|two\n", "missing=0\n", "trailers=0\n"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("answer lacks %q:\n%s", want, w.Body)
		}
	}
}

func TestConformanceSettersChangeTheRequest(t *testing.T) {
	f := load(t, "conformance", "")
	r := conformanceRequest("GET", "/x", "rewrite")
	r.Header.Set("X-Remove-Me", "1")
	x, _, next := conformanceCall(t, f, r, nil)
	h := x.Request.Header
	if !next || x.Request.Method != "PUT" || x.Request.URL.Path != "/echo/rewritten" || x.Request.URL.RawQuery != "q=a%20b" ||
		h.Get("X-Set") != "one" || strings.Join(h.Values("X-Added"), ",") != "a,b" || h.Get("X-Remove-Me") != "" {
		t.Errorf("request after the guest: %s %s %v", x.Request.Method, x.Request.URL, h)
	}
}

func TestConformanceAnswerAndBufferedResponse(t *testing.T) {
	f := load(t, "conformance", "")
	_, w, next := conformanceCall(t, f, conformanceRequest("GET", "/x", "answer"), nil)
	if next || w.Code != 418 || w.Body.String() != "short and stout" || w.Header().Get("X-Answer") != "teapot" {
		t.Errorf("answer: next %v, %d %q %v", next, w.Code, w.Body, w.Header())
	}
	resp := &filter.Response{Status: 200, Header: http.Header{}, Body: []byte("hello"), Buffered: true}
	x, _, next := conformanceCall(t, f, conformanceRequest("GET", "/x", "buffer-response"), resp)
	if !next || !x.BufferResponse || resp.Status != 201 || string(resp.Body) != "HELLO" || resp.Header.Get("X-Req-Ctx") != "7" {
		t.Errorf("buffered response: %d %q %v", resp.Status, resp.Body, resp.Header)
	}
}

func TestConformanceMisuseFailsTheCall(t *testing.T) {
	f := load(t, "conformance", "")
	x := &exchange.Exchange{Request: conformanceRequest("GET", "/x", "bad-uri"), BaseLog: slog.New(slog.DiscardHandler)}
	if _, _, err := f.Request(x, httptest.NewRecorder()); err == nil || !strings.Contains(err.Error(), "set_uri") {
		t.Errorf("set_uri without a leading slash: %v", err)
	}
}
