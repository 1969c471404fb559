package wasm

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/state"
	"github.com/lintelhq/lintel/internal/testlog"
)

// load builds one filter over a fixture of testdata/wasm; settings holds
// extra keys of its [filters.f] table.
func load(t testing.TB, plugin, settings string) *Filter {
	t.Helper()
	return loadWith(t, plugin, settings, Options{Log: slog.New(slog.DiscardHandler)})
}

func loadWith(t testing.TB, plugin, settings string, opt Options) *Filter {
	t.Helper()
	dir, _ := filepath.Abs("../../testdata/wasm")
	src := "[plugins]\ndir = \"" + dir + "\"\ncache_dir = \"" + filepath.Join(os.TempDir(), "lintel-test-wasm-cache") + "\"\n" +
		"[filters.f]\nplugin = \"" + plugin + "\"\n" + settings + "\n"
	cfg, err := config.Parse(filepath.Join(dir, "test.toml"), []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	ff, err := e.New(cfg.Filters["f"])
	if err != nil {
		t.Fatal(err)
	}
	f := ff.(*Filter)
	t.Cleanup(func() { f.Close(); e.Close() })
	return f
}

func newExchange() (*exchange.Exchange, *httptest.ResponseRecorder) {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Stamp-In", "hello")
	return &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}, httptest.NewRecorder()
}

// serve runs the filter's two phases as a chain does for one request.
func serve(tb testing.TB, f *Filter, x *exchange.Exchange, w http.ResponseWriter) {
	next, p, err := f.Request(x, w)
	if err != nil || !next {
		tb.Fatalf("Request: next %v, %v", next, err)
	}
	resp := &filter.Response{Status: 200, Header: http.Header{}}
	if err := p.Response(x, resp); err != nil {
		tb.Fatal(err)
	}
	p.Release()
	if x.Request.Header.Get("X-Stamp") != "hello" || resp.Header.Get("X-Stamped") != "1" {
		tb.Fatalf("stamp did not work: %v %v", x.Request.Header, resp.Header)
	}
}

func TestStampFixtures(t *testing.T) {
	for _, plugin := range []string{"stamp", "gostamp"} {
		f := load(t, plugin, "")
		x, w := newExchange()
		serve(t, f, x, w)
	}
}

func TestPoolClosesEveryInstance(t *testing.T) {
	f := load(t, "stamp", "min_instances = 3\nmax_instances = 3")
	x, w := newExchange()
	_, p, _ := f.Request(x, w) // one instance pinned
	if live, idle := f.pool.stats(); live != 3 || idle != 2 {
		t.Fatalf("live %d idle %d, want 3 and 2", live, idle)
	}
	f.Close()
	if live, _ := f.pool.stats(); live != 1 {
		t.Errorf("after Close with one in use: live %d, want 1", live)
	}
	p.Release()
	if live, idle := f.pool.stats(); live != 0 || idle != 0 {
		t.Errorf("after the last release: live %d idle %d, want 0", live, idle)
	}
	if _, _, err := f.Request(newExchange()); err == nil {
		t.Error("a closed filter served a request")
	}
}

// BenchmarkFilter is the per-request cost of one filter that reads a
// header and sets one (request phase) and sets a response header
// (response phase): two guest calls, three host calls, metered.
func BenchmarkFilter(b *testing.B) {
	for _, plugin := range []string{"stamp", "gostamp"} {
		b.Run(plugin, func(b *testing.B) {
			f := load(b, plugin, "")
			x, w := newExchange()
			b.ReportAllocs()
			for b.Loop() {
				x.Request.Header.Del("X-Stamp")
				serve(b, f, x, w)
			}
		})
	}
}

// BenchmarkColdStart loads a plugin with a warm compilation cache: what a
// restart with unchanged plugins costs per plugin.
func BenchmarkColdStart(b *testing.B) {
	for _, plugin := range []string{"stamp", "gostamp", "conformance"} {
		b.Run(plugin, func(b *testing.B) {
			load(b, plugin, "") // fill the cache
			for b.Loop() {
				f := load(b, plugin, "")
				f.Close()
			}
		})
	}
}

// TestReportInstanceMemory logs the memory one pooled instance costs, as
// the growth of the Go heap plus guest linear memory per extra instance.
// Run with -v to see the figures; it asserts only that they are sane.
func TestReportInstanceMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("memory report")
	}
	for _, plugin := range []string{"stamp", "gostamp"} {
		const n = 20
		f := load(t, plugin, "max_instances = 32")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var held []filter.Pending
		for range n {
			x, w := newExchange()
			_, p, err := f.Request(x, w)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, p)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		per := (int64(after.Sys) - int64(before.Sys)) / n
		guest := int64(0)
		for _, p := range held {
			guest += int64(p.(*pending).inst.mod.Memory().Size())
			p.Release()
		}
		t.Logf("%s: %d instances; process memory +%.2f MiB each (guest linear memory %.2f MiB each)",
			plugin, n, float64(per)/(1<<20), float64(guest/n)/(1<<20))
		if !strings.Contains(plugin, "go") && guest/n > 1<<20 {
			t.Errorf("a WAT instance uses %d bytes of linear memory", guest/n)
		}
	}
}

// BenchmarkHostCall is the cost of one call of each lintel host function
// (and of http_handler.get_header_values for comparison), from a WAT
// guest that makes 100 calls per request; reported as ns/call, with the
// request's own cost (fn=none) subtracted.
func BenchmarkHostCall(b *testing.B) {
	names := []string{"none", "now", "get_property", "set_property", "state_get", "state_set", "state_incr", "state_cas", "metric_update", "log_kv", "get_header_values"}
	f := loadWith(b, "hostcalls", "", Options{Log: slog.New(slog.DiscardHandler), Metrics: prometheus.NewRegistry()})
	var base float64
	for i, name := range names {
		b.Run(name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("X-Fn", string(rune('0'+i)))
			x := &exchange.Exchange{Request: r, Route: "bench", BaseLog: slog.New(slog.DiscardHandler)}
			w := httptest.NewRecorder()
			start := time.Now()
			for b.Loop() {
				_, p, err := f.Request(x, w)
				if err != nil {
					b.Fatal(err)
				}
				p.Release()
			}
			per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
			if i == 0 {
				base = per
			}
			b.ReportMetric((per-base)/100, "ns/call")
		})
	}
}

// TestSoakGoGuestMemory serves many requests through one instance of a Go
// SDK guest that allocates on every request, with recycling by request
// count off, and checks that its linear memory stays flat: the SDK's
// periodic GC, not the host's recycling, keeps it so. LINTEL_SOAK sets the
// number of requests (scripts/soak-go-guest.sh runs 2,000,000); the
// default is a short run.
func TestSoakGoGuestMemory(t *testing.T) {
	n := 20000
	if v, _ := strconv.Atoi(os.Getenv("LINTEL_SOAK")); v > 0 {
		n = v
	}
	f := load(t, "testguest", "config = { prefix = \"s\" }\nmax_instances = 1\nmax_requests = 1000000000\nrecycle_memory = \"64MiB\"")
	r := httptest.NewRequest("GET", "/soak", nil)
	r.Header.Set("X-Case", "alloc")
	x := &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}
	w := httptest.NewRecorder()
	var first, peak uint32
	samples := 10
	for i := 1; i <= n; i++ {
		_, p, err := f.Request(x, w)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		p.Release()
		if i%(n/samples) == 0 {
			inst, err := f.pool.get(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			size := inst.mod.Memory().Size()
			f.pool.put(inst)
			if first == 0 {
				first = size
			}
			peak = max(peak, size)
			t.Logf("after %8d requests: guest linear memory %.1f MiB", i, float64(size)/(1<<20))
		}
	}
	if live, _ := f.Stats(); live != 1 {
		t.Errorf("%d instances: the soak must run on one", live)
	}
	if peak > first+first/4 {
		t.Errorf("guest memory grew from %d to %d bytes over %d requests", first, peak, n)
	}
}

// burst holds n requests' instances at once, then lets them go.
func burst(t *testing.T, f *Filter, n int) {
	t.Helper()
	var held []filter.Pending
	for range n {
		x, w := newExchange()
		_, p, err := f.Request(x, w)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, p)
	}
	for _, p := range held {
		p.Release()
	}
}

// TestBurstInstancesGoAwayUnderSteadyLoad: idle instances were a queue,
// so a steady trickle of requests cycled through every instance a burst
// had made, none stayed idle, and the burst's memory stayed for good. The
// instance used last serves the next request; the others age and go.
func TestBurstInstancesGoAwayUnderSteadyLoad(t *testing.T) {
	f := load(t, "stamp", "min_instances = 1\nmax_instances = 8")
	burst(t, f, 6)
	f.pool.round.Add(idleRounds + 1) // the burst is long past
	for range 20 {
		x, w := newExchange()
		serve(t, f, x, w)
	}
	f.pool.reapIdle(f.pool.round.Load() - 1)
	if live, idle := f.Stats(); live != 1 || idle != 1 {
		t.Errorf("after a burst of 6 and 20 requests one at a time: live %d idle %d, want the one that served them", live, idle)
	}
}

func TestPoolReapsIdleInstances(t *testing.T) {
	f := load(t, "stamp", "min_instances = 2\nmax_instances = 8")
	burst(t, f, 6)
	if live, _ := f.Stats(); live != 6 {
		t.Fatalf("live %d after a burst of 6", live)
	}
	f.pool.reapIdle(f.pool.round.Add(idleRounds)) // as if they had idled long
	if live, idle := f.Stats(); live != 2 || idle != 2 {
		t.Errorf("after reaping: live %d idle %d, want min_instances (2)", live, idle)
	}
}

// TestHeaderKeyCacheIsBounded: canonical header names are cached per
// filter, but a plugin inventing a new name per request cannot grow the
// cache without bound, and every answer stays canonical.
func TestHeaderKeyCacheIsBounded(t *testing.T) {
	f := load(t, "stamp", "")
	for i := range 3 * maxHeaderKeys {
		name := "x-name-" + strconv.Itoa(i)
		if got, want := f.headerKey([]byte(name), "test"), http.CanonicalHeaderKey(name); got != want {
			t.Fatalf("headerKey(%q) = %q, want %q", name, got, want)
		}
	}
	if n := len(*f.headerKeys.Load()); n != maxHeaderKeys {
		t.Errorf("cache holds %d names, want the bound %d", n, maxHeaderKeys)
	}
	if got := f.headerKey([]byte("x-name-0"), "test"); got != "X-Name-0" {
		t.Errorf("cached name %q", got)
	}
}

// deadlineStore is a memory store that records whether an operation's
// context carried a deadline or could be cancelled.
type deadlineStore struct {
	*state.Memory
	bound atomic.Bool
}

func (s *deadlineStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if _, ok := ctx.Deadline(); ok || ctx.Done() != nil {
		s.bound.Store(true)
	}
	return s.Memory.Get(ctx, key)
}

// TestStateCallsAreNotBoundByTheGuestsCall: a state operation ran under
// the guest call's context, so a short plugin timeout made a healthy Redis
// look broken, and a timer the store derived from an instance's reused
// call context raced that instance's next call (found by -race). The
// store's own timeout bounds its operations.
func TestStateCallsAreNotBoundByTheGuestsCall(t *testing.T) {
	for _, settings := range []string{`timeout = "5s"`, `timeout = "500ms"`} {
		store := &deadlineStore{Memory: state.NewMemory(0)}
		f := loadWith(t, "hostcalls", settings, Options{Log: slog.New(slog.DiscardHandler), State: store})
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Fn", "4") // state_get
		x := &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}
		if _, p, err := f.Request(x, httptest.NewRecorder()); err != nil {
			t.Fatal(err)
		} else if p != nil {
			p.Release()
		}
		if store.bound.Load() {
			t.Errorf("%s: the store got the guest call's context", settings)
		}
		store.Close()
	}
}

// TestOnCompleteReadsResponseHeaders: lintel_on_complete reading a
// response header dereferenced a nil writer (the call failed and the
// instance was dropped). It reads the response as sent.
func TestOnCompleteReadsResponseHeaders(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	f := load(t, "complete_headers", fmt.Sprintf("output = %q", out))
	x, w := newExchange()
	next, p, err := f.Request(x, w)
	if err != nil || !next || p != nil {
		t.Fatalf("Request: %v %v %v", next, p, err)
	}
	x.Status, x.ResponseHeader = 201, http.Header{"X-Up": {"yes"}}
	x.Complete()
	f.output.flush() // lines wait up to outputFlush
	b, _ := os.ReadFile(out)
	if got := string(b); got != "X-Up=yes\x00 201\n" {
		t.Errorf("emitted %q", got)
	}
	if live, _ := f.Stats(); live != 1 {
		t.Errorf("%d instances after the completion, want the one (not dropped)", live)
	}
}

// changingStore answers Get("big") with the sizes in order, 0 meaning
// absent: a value that changes between the SDK's two reads.
type changingStore struct {
	*state.Memory
	mu    sync.Mutex
	sizes []int
}

func (s *changingStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if !strings.HasSuffix(key, "big") {
		return s.Memory.Get(ctx, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.sizes[0]
	if len(s.sizes) > 1 {
		s.sizes = s.sizes[1:]
	}
	if n == 0 {
		return nil, false, nil
	}
	return bytes.Repeat([]byte("v"), n), true, nil
}

// TestSDKStateGetOfAChangingValue: the Go SDK read a large value's length,
// then the value; one that grew in between panicked the guest (500), one
// deleted in between read as found and empty.
func TestSDKStateGetOfAChangingValue(t *testing.T) {
	for name, c := range map[string]struct {
		sizes []int
		want  string
	}{
		"grew":    {[]int{5000, 9000}, "9000,true,ok"},
		"deleted": {[]int{5000, 0}, "0,false,ok"},
		"same":    {[]int{5000}, "5000,true,ok"},
	} {
		store := &changingStore{Memory: state.NewMemory(0), sizes: c.sizes}
		f := loadWith(t, "testguest", `config = { prefix = "T" }`, Options{Log: slog.New(slog.DiscardHandler), State: store})
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Case", "big-get")
		x := &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}
		w := httptest.NewRecorder()
		_, p, err := f.Request(x, w)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		resp := &filter.Response{Status: 200, Header: http.Header{}}
		if p != nil {
			p.Response(x, resp)
			p.Release()
		}
		if got := resp.Header.Get("X-T-Result") + w.Header().Get("X-T-Result"); got != c.want {
			t.Errorf("%s: result %q, want %q", name, got, c.want)
		}
		store.Close()
	}
}

// slowStore is a memory store whose Get takes a while, like a Redis far
// away.
type slowStore struct {
	*state.Memory
	delay time.Duration
}

func (s *slowStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	time.Sleep(s.delay)
	return s.Memory.Get(ctx, key)
}

// TestStateCallEndsByTheGuestsTime: a guest with 100 ms left waited for a
// store that may take a second. It waits what it has left; its call fails
// as a timeout, not as a store failure, and the store's operation is not
// cut by the guest's time.
func TestStateCallEndsByTheGuestsTime(t *testing.T) {
	var logs testlog.Buffer
	store := &slowStore{Memory: state.NewMemory(0), delay: 400 * time.Millisecond}
	defer store.Close()
	f := loadWith(t, "hostcalls", `timeout = "100ms"`, Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), State: store, StateTimeout: time.Second})
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Fn", "4") // state_get
	x := &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}
	start := time.Now()
	_, _, err := f.Request(x, httptest.NewRecorder())
	if took := time.Since(start); err == nil || took > 300*time.Millisecond {
		t.Errorf("after %v: %v; want the call to fail near its 100ms", took, err)
	}
	if strings.Contains(logs.String(), "shared state unavailable") {
		t.Errorf("counted as a store failure:\n%s", logs.String())
	}
}

// TestPluginMetricSeriesExpire: series a plugin stopped updating stayed on
// /metrics for ever. One not updated for seriesTTL minutes is deleted, and
// comes back with its next update.
func TestPluginMetricSeriesExpire(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := loadWith(t, "hostcalls", "", Options{Log: slog.New(slog.DiscardHandler), Metrics: reg})
	update := func() {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Fn", "8") // metric_update
		x := &exchange.Exchange{Request: r, BaseLog: slog.New(slog.DiscardHandler)}
		if _, p, err := f.Request(x, httptest.NewRecorder()); err != nil {
			t.Fatal(err)
		} else if p != nil {
			p.Release()
		}
	}
	count := func() int {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "lintel_plugin_bench_total" {
				return len(mf.GetMetric())
			}
		}
		return 0
	}
	update()
	if n := count(); n != 1 {
		t.Fatalf("%d series after an update", n)
	}
	expireSeries(seriesMinute.Load()) // nothing is older than now
	if n := count(); n != 1 {
		t.Errorf("a fresh series expired")
	}
	expireSeries(seriesMinute.Load() + 1) // as if seriesTTL minutes passed
	if n := count(); n != 0 {
		t.Errorf("%d series after they expired", n)
	}
	update()
	if n := count(); n != 1 {
		t.Errorf("%d series after a new update", n)
	}
}

// TestHousekeepingRunsBetweenRequests: the Go SDK forced a garbage
// collection inside every 2,000th request's call. A guest's
// lintel_housekeep now runs on an idle instance, off every request's
// path, every housekeepEvery requests.
func TestHousekeepingRunsBetweenRequests(t *testing.T) {
	f := load(t, "housekeep", "max_instances = 1")
	seen := ""
	for range 2*housekeepEvery + 1 {
		x, w := newExchange()
		next, p, err := f.Request(x, w)
		if err != nil || !next {
			t.Fatalf("next %v, %v", next, err)
		}
		if p != nil {
			p.Release()
		}
		seen = x.Request.Header.Get("X-Housekept")
	}
	if seen != "2" {
		t.Errorf("after %d requests the guest was housekept %q times, want 2", 2*housekeepEvery+1, seen)
	}
	if live, _ := f.Stats(); live != 1 {
		t.Errorf("%d instances; housekeeping must keep the instance", live)
	}
}

// TestOutputKeepsLinesWhole: emitted lines are buffered, written within
// outputFlush, never split across writes, and written before the output
// closes.
func TestOutputKeepsLinesWhole(t *testing.T) {
	var writes []string
	l := &lineWriter{w: writerFunc(func(b []byte) (int, error) { writes = append(writes, string(b)); return len(b), nil })}
	line := strings.Repeat("x", outputBuffer/3)
	for range 4 {
		if err := l.writeLine([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	l.mu.Lock()
	if len(writes) != 1 || writes[0] != strings.Repeat(line+"\n", 2) {
		t.Errorf("after four lines of a third of the buffer: %d writes, want one of two whole lines", len(writes))
	}
	l.mu.Unlock()
	time.Sleep(3 * outputFlush)
	l.mu.Lock()
	if len(writes) != 2 || writes[1] != strings.Repeat(line+"\n", 2) {
		t.Errorf("%d writes after the flush interval, want the pending two lines written", len(writes))
	}
	l.mu.Unlock()
	l.writeLine([]byte("last"))
	l.close()
	if writes[len(writes)-1] != "last\n" {
		t.Errorf("the last line was not written on close: %q", writes[len(writes)-1])
	}
	if err := l.writeLine([]byte("late")); err == nil {
		t.Error("a line after close was accepted")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestNoRequestPhaseIsNeverCalled: a guest that declared it has no
// request phase (an access log) costs a request no instance and no call,
// and still completes.
func TestNoRequestPhaseIsNeverCalled(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	f := load(t, "norequest", fmt.Sprintf("output = %q", out))
	x, w := newExchange()
	next, p, err := f.Request(x, w)
	if err != nil || !next || p != nil {
		t.Fatalf("Request: next %v, pending %v, %v; want next, no pending phase, no error", next, p, err)
	}
	x.Complete()
	f.output.flush()
	if b, _ := os.ReadFile(out); string(b) != "done\n" {
		t.Errorf("completion emitted %q", b)
	}
}

// TestSeriesByKey: a plugin metric's series is found by its label values
// joined by NUL, as the guest sends them, with no allocation once it
// exists; a new one is split into its values, and refused when a value
// is not UTF-8.
func TestSeriesByKey(t *testing.T) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t_total"}, []string{"a", "b"})
	s := &series{vec: vec, keys: map[string]*seriesEntry{}}
	e, err := admit(s, []byte("x\x00y"), 2)
	if err != nil || len(e.values) != 2 || e.values[0] != "x" || e.values[1] != "y" {
		t.Fatalf("new series: %+v, %v", e, err)
	}
	if again, _ := admit(s, "x\x00y", 2); again != e {
		t.Error("the same key made another series")
	}
	if allocs := testing.AllocsPerRun(100, func() { admit(s, []byte("x\x00y"), 2) }); allocs != 0 {
		t.Errorf("an existing series costs %v allocations", allocs)
	}
	if _, err := admit(s, []byte("\xff\x00y"), 2); err == nil {
		t.Error("a label value that is not UTF-8 was admitted")
	}
	plain := &series{vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "u_total"}, nil), keys: map[string]*seriesEntry{}}
	if e, err := admit(plain, "", 0); err != nil || len(e.values) != 0 {
		t.Errorf("a metric without labels: %+v, %v", e, err)
	}
}

// TestDepthBudgetComesBackAfterEachCall: the host sets a call's fuel but
// not its depth budget, which every returning call gives back in full.
func TestDepthBudgetComesBackAfterEachCall(t *testing.T) {
	for _, plugin := range []string{"stamp", "gostamp"} {
		f := load(t, plugin, "max_instances = 1")
		for range 100 {
			x, w := newExchange()
			serve(t, f, x, w)
		}
		inst, err := f.pool.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if got := inst.depth.Get(); got != uint64(f.spec.Limits.CallDepth) {
			t.Errorf("%s: depth budget %d after 100 requests, want %d", plugin, got, f.spec.Limits.CallDepth)
		}
		f.pool.put(inst)
	}
}

// A guest that declared batched completions (flag 32) has them made
// completeBatch at a time, in order, when the last of them completes; a
// batch not full is made completeDelay after its first completion, and
// every queued one when the filter closes. A batched completion cannot
// read the response's headers: that call fails, the others in its batch
// are made.
func TestBatchedCompletions(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.log")
	f := load(t, "batch_complete", fmt.Sprintf("output = %q", out))
	f.completions.delay = time.Hour
	complete := func(n int, hdr ...string) {
		t.Helper()
		x, w := newExchange()
		x.Request.Header.Set("X-N", strconv.Itoa(n))
		for i := 0; i+1 < len(hdr); i += 2 {
			x.Request.Header.Set(hdr[i], hdr[i+1])
		}
		if next, p, err := f.Request(x, w); err != nil || !next || p != nil {
			t.Fatalf("Request: %v %v %v", next, p, err)
		}
		x.Status = 200
		x.Complete()
	}
	lines := func() string {
		t.Helper()
		f.output.flush()
		b, _ := os.ReadFile(out)
		return strings.ReplaceAll(string(b), "\x00", "")
	}
	var want strings.Builder
	for n := range completeBatch - 1 {
		complete(n)
		fmt.Fprintf(&want, "n=%d\n", n)
	}
	if got := lines(); got != "" {
		t.Fatalf("lines before the batch was full: %q", got)
	}
	complete(completeBatch-1, "X-Response", "1") // fails: reads a response header
	complete(completeBatch)                      // the next batch
	if got := lines(); got != want.String() {
		t.Errorf("a full batch wrote %q, want %q", got, want.String())
	}
	f.Close()
	fmt.Fprintf(&want, "n=%d\n", completeBatch)
	if got := lines(); got != want.String() {
		t.Errorf("after the filter closed: %q, want %q", got, want.String())
	}

	f = load(t, "batch_complete", fmt.Sprintf("output = %q", out))
	f.completions.delay = 10 * time.Millisecond
	complete(100)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.HasSuffix(lines(), "n=100\n") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := lines(); !strings.HasSuffix(got, "n=100\n") {
		t.Errorf("a lone completion was not made after its delay: %q", got)
	}
}
