package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lintelhq/lintel/internal/gatewaytest"
)

// wasmRoute fronts an echoing upstream with the given filters, each
// defined by its own TOML table in tables.
func wasmRoute(filters, tables string) string {
	return tables + `
[services.echo]
targets = ["{{echo}}"]
[[routes]]
name = "echo"
path = "/echo/*rest"
service = "echo"
filters = [` + filters + `]
`
}

func TestWASMUnmodifiedGuestStamp(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"stamp"`, "[filters.stamp]\n"), map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/echo/a", nil, "X-Stamp-In", "hello")
	if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Header.Get("X-Stamp") != "hello" || resp.Header.Get("X-Stamped") != "1" {
		t.Errorf("status %d, upstream X-Stamp %q, response X-Stamped %q", resp.StatusCode, gatewaytest.DecodeEcho(t, body).Header.Get("X-Stamp"), resp.Header.Get("X-Stamped"))
	}
	// A value longer than the guest's 64-byte buffer is not written: the
	// guest sees only its length and falls back.
	_, body = h.Do("GET", "/echo/a", nil, "X-Stamp-In", strings.Repeat("x", 100))
	if got := gatewaytest.DecodeEcho(t, body).Header.Get("X-Stamp"); got != "none" {
		t.Errorf("oversized value: X-Stamp %q, want none", got)
	}
}

const conformance = "[filters.conf]\nplugin = \"conformance\"\nconfig = { greeting = \"hi\", n = 3 }\n"

func TestWASMConformanceRequestGetters(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	req, _ := http.NewRequest("PATCH", h.URL()+"/echo/a%20b/./c?x=1&y=%2F", nil)
	req.Header.Set("X-Case", "inspect")
	req.Header.Add("X-Multi", "one")
	req.Header.Add("X-Multi", "two")
	resp, body := h.Send(req)
	if resp.StatusCode != 200 || up.Count() != 0 {
		t.Fatalf("status %d (upstream calls %d): %s", resp.StatusCode, up.Count(), body)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(body), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"method":   "PATCH",
		"uri":      "/echo/a%20b/c?x=1&y=%2F",
		"proto":    "HTTP/1.1",
		"config":   `{"greeting":"hi","n":3}`,
		"multi":    "one|two",
		"missing":  "0",
		"status":   "200",
		"features": "3",
		"trailers": "0",
		"debug":    "0 none=0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.HasPrefix(got["source"], "127.0.0.1:") {
		t.Errorf("source = %q", got["source"])
	}
	if n := got["names"]; !strings.Contains(n, "x-case") || !strings.Contains(n, "x-multi") || !strings.Contains(n, "x-request-id") || n != strings.ToLower(n) {
		t.Errorf("names = %q: want every request header name, lower case", n)
	}
}

func TestWASMConformanceBufferLimits(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	_, body := h.Do("GET", "/echo/abc", nil, "X-Case", "small-buffer")
	// The URI "/echo/abc" is 9 bytes; a 3-byte buffer is left untouched.
	if !strings.HasPrefix(body, "len=9 buf=untouched names_count=") {
		t.Errorf("got %q", body)
	}
}

func TestWASMConformanceRequestSetters(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/echo/x", nil, "X-Case", "rewrite", "X-Remove-Me", "gone")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	e := gatewaytest.DecodeEcho(t, body)
	if e.Method != "PUT" || e.Path != "/echo/rewritten" || e.Query != "q=a%20b" {
		t.Errorf("upstream saw %s %s?%s", e.Method, e.Path, e.Query)
	}
	if e.Header.Get("X-Set") != "one" || strings.Join(e.Header.Values("X-Added"), ",") != "a,b" || e.Header.Get("X-Remove-Me") != "" {
		t.Errorf("headers: %v", e.Header)
	}
	resp, _ = h.Do("GET", "/echo/x", nil, "X-Case", "bad-uri")
	if resp.StatusCode != 500 {
		t.Errorf("set_uri without a leading slash: %d, want 500", resp.StatusCode)
	}
}

// TestWASMGuestReadsRequestBody: a guest that reads the whole body before
// it is proxied; the upstream still receives all of it.
func TestWASMGuestReadsRequestBody(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	// The guest reads 7 bytes a call: 256 KiB take 37,000 host calls, which
	// a loaded machine under -race may not finish within the default
	// timeout. The test is about bodies, not deadlines.
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance+"timeout = \"10s\"\n"), map[string]string{"echo": up.URL})
	for _, size := range []int{0, 1, 6, 7, 100, 256 << 10} {
		payload := strings.Repeat("b", size)
		resp, body := h.Do("POST", "/echo/x", strings.NewReader(payload), "X-Case", "read-body")
		e := gatewaytest.DecodeEcho(t, body)
		if resp.StatusCode != 200 || e.Body != payload || e.Header.Get("X-Body-Seen") != fmt.Sprint(size) {
			t.Errorf("size %d: status %d, upstream got %d bytes, guest saw %q", size, resp.StatusCode, len(e.Body), e.Header.Get("X-Body-Seen"))
		}
	}
	resp, body := h.Do("POST", "/echo/x", strings.NewReader("original"), "X-Case", "replace-body")
	if e := gatewaytest.DecodeEcho(t, body); resp.StatusCode != 200 || e.Body != "replaced body" || e.Header.Get("Content-Length") != "13" {
		t.Errorf("replaced body: %d %q CL %q", resp.StatusCode, e.Body, e.Header.Get("Content-Length"))
	}
}

func TestWASMGuestWritesResponse(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"stamp", "conf"`, "[filters.stamp]\n"+conformance), map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/echo/x", nil, "X-Case", "answer")
	if resp.StatusCode != 418 || body != "short and stout" || resp.Header.Get("X-Answer") != "teapot" {
		t.Errorf("got %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if up.Count() != 0 {
		t.Error("upstream reached after the guest answered")
	}
	// The filter before it still runs its response phase.
	if resp.Header.Get("X-Stamped") != "1" {
		t.Error("response phase of the earlier filter did not run")
	}
}

func TestWASMBufferedResponse(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "11")
		io.WriteString(w, "hello world")
	})
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/echo/x", nil, "X-Case", "buffer-response")
	if resp.StatusCode != 201 || body != "HELLO WORLD" || resp.ContentLength != 11 || resp.Header.Get("X-Req-Ctx") != "7" {
		t.Errorf("got %d %q CL %d ctx %q", resp.StatusCode, body, resp.ContentLength, resp.Header.Get("X-Req-Ctx"))
	}
}

func TestWASMResponseHeadersOnStream(t *testing.T) {
	next := make(chan struct{})
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Secret", "internal")
		w.Header().Add("X-From-Upstream", "u1")
		w.Header().Add("X-From-Upstream", "u2")
		w.WriteHeader(202)
		io.WriteString(w, "data: one\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-time.After(5 * time.Second):
		}
	})
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	req, _ := http.NewRequest("GET", h.URL()+"/echo/events", nil)
	req.Header.Set("X-Case", "response-headers")
	resp, err := gatewaytest.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	defer close(next)
	first := make([]byte, len("data: one\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first event: %v", err)
	}
	hd := resp.Header
	if hd.Get("X-Status") != "202" || hd.Get("X-Secret") != "" || hd.Get("X-Upstream-Value") != "u1|u2" ||
		strings.Join(hd.Values("X-Multi-Out"), ",") != "1,2" || hd.Get("X-Body-EOF") != "1" || hd.Get("X-Is-Error") != "0" {
		t.Errorf("response phase on a stream: %v", hd)
	}
	if names := hd.Get("X-Names"); !strings.Contains(names, "x-from-upstream") || !strings.Contains(names, "content-type") {
		t.Errorf("X-Names = %q", names)
	}
}

func TestWASMRequestContextAndIsError(t *testing.T) {
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": gatewaytest.DeadAddr(t)})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "ctx")
	if resp.StatusCode != 502 || resp.Header.Get("X-Req-Ctx") != "42" || resp.Header.Get("X-Is-Error") != "1" {
		t.Errorf("status %d ctx %q is_error %q", resp.StatusCode, resp.Header.Get("X-Req-Ctx"), resp.Header.Get("X-Is-Error"))
	}
}

func TestWASMGuestLog(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil, "X-Case", "log")
	if !strings.Contains(h.Logs.String(), `msg="hello from the guest"`) || !strings.Contains(h.Logs.String(), "filter=conf") ||
		!strings.Contains(h.Logs.String(), "request_id="+resp.Header.Get("X-Request-Id")) {
		t.Errorf("guest log line missing or without filter and request id:\n%s", h.Logs.String())
	}
}

// TestWASMHostileGuests: each hostile plugin costs the request that
// triggers it a 5xx; the gateway keeps serving every other request.
func TestWASMHostileGuests(t *testing.T) {
	tests := []struct {
		plugin string
		extra  string
		header string
	}{
		{"loop", "limits = { fuel = 10000000 }", "X-Hostile"},
		{"fillbomb", "limits = { fuel = 10000000 }", "X-Hostile"},
		{"recurse", "memory_limit = \"1MiB\"", "X-Hostile"},
		{"membomb", "memory_limit = \"4MiB\"\nrecycle_memory = \"1MiB\"", "X-Hostile"},
		{"trap", "", "X-Hostile"},
		{"trap", "", "X-Hostile-Response"},
		{"badptr", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.plugin+tt.header, func(t *testing.T) {
			up := gatewaytest.NewUpstream(t, nil)
			table := fmt.Sprintf("[filters.h]\nplugin = %q\nmax_instances = 2\n%s\n", tt.plugin, tt.extra)
			h := gatewaytest.StartWASM(t, wasmRoute(`"h"`, table), map[string]string{"echo": up.URL})
			for range 3 {
				var resp *http.Response
				var body string
				if tt.header != "" {
					resp, body = h.Do("GET", "/echo/x", nil, tt.header, "1")
				} else {
					resp, body = h.Do("GET", "/echo/x", nil)
				}
				if resp.StatusCode != 500 {
					t.Fatalf("hostile request: %d, want 500: %s", resp.StatusCode, body)
				}
				gatewaytest.ProblemBody(t, resp, body)
				if tt.header != "" {
					if resp, _ := h.Do("GET", "/echo/x", nil); resp.StatusCode != 200 {
						t.Fatalf("ordinary request after a hostile one: %d", resp.StatusCode)
					}
				}
			}
			if !strings.Contains(h.Logs.String(), `msg="filter failed" `) {
				t.Errorf("no log line names the failing filter:\n%s", h.Logs.String())
			}
		})
	}
}

func TestWASMLogFloodIsCapped(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"flood"`, "[filters.flood]\nplugin = \"logflood\"\ntimeout = \"10s\"\n"), map[string]string{"echo": up.URL})
	resp, _ := h.Do("GET", "/echo/x", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	logs := h.Logs.String()
	if n := strings.Count(logs, "msg=flood"); n != 64 {
		t.Errorf("%d flood lines in the gateway log, want the cap of 64", n)
	}
	if !strings.Contains(logs, "dropped=999936") {
		t.Errorf("dropped lines not reported:\n%.2000s", logs)
	}
}

func TestWASMOnErrorAllow(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"h", "stamp"`, "[filters.h]\nplugin = \"trap\"\non_error = \"allow\"\n[filters.stamp]\n"), map[string]string{"echo": up.URL})
	resp, body := h.Do("GET", "/echo/x", nil, "X-Hostile", "1", "X-Stamp-In", "v")
	if resp.StatusCode != 200 || gatewaytest.DecodeEcho(t, body).Header.Get("X-Stamp") != "v" {
		t.Errorf("on_error=allow: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(h.Logs.String(), "skipped (on_error = allow)") {
		t.Error("skipped failure not logged")
	}
}

func TestWASMPoolBoundAndWait(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			<-release
		}
	})
	defer once.Do(func() { close(release) })
	table := "[filters.stamp]\nmax_instances = 1\npool_timeout = \"100ms\"\n"
	h := gatewaytest.StartWASM(t, wasmRoute(`"stamp"`, table), map[string]string{"echo": up.URL})
	held := make(chan int)
	go func() {
		resp, _ := h.Do("GET", "/echo/hold", nil, "X-Hold", "1")
		held <- resp.StatusCode
	}()
	for up.Count() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// The only instance is pinned to the held request.
	resp, body := h.Do("GET", "/echo/x", nil)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second request with the pool exhausted: %d %s", resp.StatusCode, body)
	}
	once.Do(func() { close(release) })
	if code := <-held; code != 200 {
		t.Errorf("held request: %d", code)
	}
	if resp, _ := h.Do("GET", "/echo/x", nil); resp.StatusCode != 200 {
		t.Errorf("after release: %d", resp.StatusCode)
	}
}

// TestWASMDeclaredStatelessReleasesEarly: a guest that declared it keeps
// no state between phases does not pin an instance during the upstream
// call, so one instance serves many slow requests at once.
func TestWASMDeclaredStatelessReleasesEarly(t *testing.T) {
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(200 * time.Millisecond) })
	for _, tc := range []struct {
		config, declared string
	}{{"", "1"}, {"config = { no_response = true }", ""}} {
		table := "[filters.d]\nplugin = \"declare\"\nmax_instances = 1\npool_timeout = \"50ms\"\n" + tc.config + "\n"
		h := gatewaytest.StartWASM(t, wasmRoute(`"d"`, table), map[string]string{"echo": up.URL})
		var wg sync.WaitGroup
		codes := make(chan string, 5)
		for range 5 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, _ := h.Do("GET", "/echo/x", nil)
				codes <- fmt.Sprint(resp.StatusCode, " ", resp.Header.Get("X-Declared"))
			}()
		}
		wg.Wait()
		close(codes)
		for c := range codes {
			if c != "200 "+tc.declared {
				t.Errorf("config %q: got %q, want %q", tc.config, c, "200 "+tc.declared)
			}
		}
	}
}

func TestWASMInstanceRecycling(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"stamp"`, "[filters.stamp]\nmax_requests = 2\n"), map[string]string{"echo": up.URL})
	for i := range 7 {
		if resp, _ := h.Do("GET", "/echo/x", nil); resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
}

func TestWASMOnePluginSeveralFilters(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	tables := "[filters.one]\nplugin = \"conformance\"\nconfig = { who = \"one\" }\n[filters.two]\nplugin = \"conformance\"\nconfig = { who = \"two\" }\n"
	src := tables + `
[services.echo]
targets = ["{{echo}}"]
[[routes]]
path = "/one/*rest"
service = "echo"
filters = ["one"]
[[routes]]
path = "/two/*rest"
service = "echo"
filters = ["two"]
`
	h := gatewaytest.StartWASM(t, src, map[string]string{"echo": up.URL})
	for _, who := range []string{"one", "two"} {
		_, body := h.Do("GET", "/"+who+"/x", nil, "X-Case", "inspect")
		if !strings.Contains(body, `config={"who":"`+who+`"}`) {
			t.Errorf("filter %s got config: %s", who, body)
		}
	}
}

func TestWASMManyAndLargeHeaders(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"conf"`, conformance), map[string]string{"echo": up.URL})
	req, _ := http.NewRequest("GET", h.URL()+"/echo/x", nil)
	req.Header.Set("X-Case", "inspect")
	for i := range 90 { // the listener allows 100 header fields
		req.Header.Set(fmt.Sprintf("X-Many-%03d", i), "v")
	}
	big := strings.Repeat("b", 30<<10)
	req.Header.Add("X-Multi", big)
	req.Header.Add("X-Multi", "")
	req.Header.Add("X-Multi", "last")
	resp, body := h.Send(req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if !strings.Contains(body, "multi="+big+"||last\n") {
		t.Errorf("a 30 KiB value, an empty one and a third did not come back in order")
	}
	for i := range 90 {
		if !strings.Contains(body, fmt.Sprintf("x-many-%03d", i)) {
			t.Fatalf("header name x-many-%03d missing", i)
		}
	}
}

// TestWASMLargeDownloadStreams: a filter's response phase on a large
// download changes its headers without the gateway holding the body.
// LINTEL_DOWNLOAD_MIB sets the size (1024 for the 1 GiB evidence).
func TestWASMLargeDownloadStreams(t *testing.T) {
	size := int64(128) << 20
	if v, _ := strconv.Atoi(os.Getenv("LINTEL_DOWNLOAD_MIB")); v > 0 {
		size = int64(v) << 20
	}
	up := gatewaytest.NewUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.CopyN(w, zeros{}, size)
	})
	h := gatewaytest.StartWASM(t, wasmRoute(`"stamp"`, "[filters.stamp]\n"), map[string]string{"echo": up.URL})
	before := rss()
	resp, err := gatewaytest.Client.Get(h.URL() + "/echo/big")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("X-Stamped") != "1" {
		t.Errorf("response phase did not run on the download")
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil || n != size {
		t.Fatalf("read %d of %d bytes: %v", n, size, err)
	}
	if grew := rss() - before; grew > 64<<20 {
		t.Errorf("memory grew %d MiB while streaming %d MiB: the body was held", grew>>20, size>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestWASMCommandModuleStart: a command module (TinyGo's http-wasm guests)
// has its _start run once per instance before it handles requests.
func TestWASMCommandModuleStart(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"cmd"`, "[filters.cmd]\nplugin = \"command\"\n"), map[string]string{"echo": up.URL})
	_, body := h.Do("GET", "/echo/x", nil)
	if got := gatewaytest.DecodeEcho(t, body).Header.Get("X-Started"); got != "1" {
		t.Errorf("X-Started = %q: _start did not run", got)
	}
}

// TestWASMDeadlineExpiringAsCallEndsIsNotARace pins a data race: a call's
// deadline timer that fired as the call returned read the instance's
// reusable context while the next request on that instance rewrote it.
// Calls are now bounded by fuel and no timer watches them; the timeout
// this short still ends waits, and instances are still reused by
// concurrent requests: every request must get a whole answer (200, or
// 500 from a stopped guest), and -race must stay quiet.
func TestWASMDeadlineExpiringAsCallEndsIsNotARace(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.StartWASM(t, wasmRoute(`"g"`, "[filters.g]\nplugin = \"gostateless\"\ntimeout = \"300us\"\nmax_instances = 4\n"), map[string]string{"echo": up.URL})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 150 {
				resp, err := http.Get(h.URL() + "/echo/x")
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 && resp.StatusCode != 500 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}()
	}
	wg.Wait()
}
