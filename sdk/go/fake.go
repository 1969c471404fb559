//go:build !wasip1

package lintel

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Hosted is false natively, against the fake host; see host_wasip1.go.
const Hosted = false

// FakeHost stands in for gatewayd when a plugin is built natively, so its
// handlers run under plain go test. Fill in the request, call Run, and
// read what the plugin did.
type FakeHost struct {
	Method, URI, Protocol, SourceAddr string
	RequestHeader                     http.Header
	RequestBody                       []byte
	// Config is the filter's config as JSON (get_config).
	Config []byte
	// Properties holds request properties; set the host's (client_ip,
	// route, ...) before Run.
	Properties map[string]string

	// Upstream is the response the next handler produces when the
	// plugin passes the request on.
	UpstreamStatus int
	UpstreamHeader http.Header
	UpstreamBody   []byte

	// After Run: what the client would receive.
	Answered       bool // the plugin answered in the request phase
	Status         int
	ResponseHeader http.Header
	ResponseBody   []byte

	// Shared state, metrics and logs, kept across Runs.
	State   map[string][]byte
	Metrics map[string]float64 // "name{label=value,...}" -> value
	Logs    []string           // "LEVEL msg key=value ..."
	// Fetch answers the plugin's outbound calls; nil refuses them all.
	Fetch func(method, url string, headers []string, body []byte) (status int, header http.Header, respBody []byte, err error)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Emitted collects the lines written with Emit; NoOutput makes Emit
	// fail as on a filter without output.
	Emitted  []string
	NoOutput bool
	// Memoized holds the last Memoize call's headers and ttl (nil when
	// the plugin did not memoize).
	Memoized    []string
	MemoizedTTL time.Duration

	phase      int // 0 request, 1 response, 2 complete
	features   uint32
	declared   uint32
	bodyRead   int
	bodyWrites [2]bool
	expires    map[string]time.Time
	fetched    http.Header
	fetchBody  []byte
}

// NewFakeHost returns a host with a GET / request and a 200 upstream.
func NewFakeHost() *FakeHost {
	return &FakeHost{
		Method: "GET", URI: "/", Protocol: "HTTP/1.1", SourceAddr: "192.0.2.1:5000",
		RequestHeader: http.Header{}, Properties: map[string]string{"client_ip": "192.0.2.1", "request_id": "test"},
		UpstreamStatus: 200, UpstreamHeader: http.Header{},
		Config: []byte("{}"), State: map[string][]byte{}, Metrics: map[string]float64{},
		expires: map[string]time.Time{},
	}
}

var (
	fakeMu sync.Mutex
	fake   *FakeHost
)

// Run serves one request through the registered handlers as gatewayd
// would: request phase; then, if the plugin passed the request on, the
// upstream response and the response phase; then the completion.
func (h *FakeHost) Run() {
	fakeMu.Lock()
	defer fakeMu.Unlock()
	fake = h
	defer func() { fake = nil }()
	h.phase, h.bodyRead, h.bodyWrites = 0, 0, [2]bool{}
	h.Memoized, h.MemoizedTTL = nil, 0
	h.declared = initDeclared
	h.Status, h.ResponseHeader, h.ResponseBody, h.Answered = 200, http.Header{}, nil, false
	if !handleRequest() {
		h.Answered = true
	} else {
		h.Status = h.UpstreamStatus
		for k, v := range h.UpstreamHeader {
			h.ResponseHeader[k] = append([]string(nil), v...)
		}
		h.ResponseBody = append([]byte(nil), h.UpstreamBody...)
		h.phase, h.bodyRead = 1, 0
		if h.declared&NoResponse == 0 {
			handleResponse()
		}
	}
	h.phase = 2
	h.Properties["status"] = strconv.Itoa(h.Status)
	handleComplete()
}

// Declared returns the flags the plugin declared.
func (h *FakeHost) Declared() uint32 { return h.declared }

// initHost answers calls made before any Run (a plugin's init): config
// reads as {}; what is declared there applies to every FakeHost.
var initHost = NewFakeHost()

func host() *FakeHost {
	if fake == nil {
		return initHost
	}
	return fake
}

func (h *FakeHost) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

// declare may run in init, before any FakeHost exists: it is kept for all.
var initDeclared uint32

func declare(flags uint32) {
	if fake == nil {
		initDeclared = flags
		return
	}
	fake.declared = flags
}

func enableFeatures(f uint32) uint32 {
	if fake != nil {
		fake.features |= f & 3
	}
	return 3
}

func getConfig() []byte     { return host().Config }
func getMethod() string     { return host().Method }
func setMethod(m string)    { host().Method = m }
func getURI() string        { return host().URI }
func setURI(u string)       { host().URI = u }
func getProtocol() string   { return host().Protocol }
func getSourceAddr() string { return host().SourceAddr }
func getStatus() int        { return host().Status }
func setStatus(code int)    { host().Status = code }
func now() int64            { return host().now().UnixNano() }
func (h *FakeHost) header(kind uint32) http.Header {
	if kind == kindRequest {
		return h.RequestHeader
	}
	return h.ResponseHeader
}

func headerNames(kind uint32) []string {
	var names []string
	for k := range host().header(kind) {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	return names
}

func headerValues(kind uint32, name string) []string { return host().header(kind).Values(name) }
func headerValue(kind uint32, name string) string    { return host().header(kind).Get(name) }
func setHeader(kind uint32, name, value string)      { host().header(kind).Set(name, value) }
func addHeader(kind uint32, name, value string)      { host().header(kind).Add(name, value) }
func removeHeader(kind uint32, name string)          { host().header(kind).Del(name) }

func readBody(kind uint32) []byte {
	h := host()
	if kind == kindRequest {
		return append([]byte(nil), h.RequestBody...)
	}
	if h.phase != 1 || h.features&BufferResponse == 0 {
		return nil
	}
	return append([]byte(nil), h.ResponseBody...)
}

func writeBody(kind uint32, b []byte) {
	h := host()
	target := &h.ResponseBody
	if kind == kindRequest {
		target = &h.RequestBody
	}
	if !h.bodyWrites[kind] {
		h.bodyWrites[kind] = true
		*target = nil
	}
	*target = append(*target, b...)
}

func getProperty(name string) (string, bool) {
	v, ok := host().Properties[name]
	return v, ok
}

func setProperty(name, value string) { host().Properties[name] = value }

func memoize(ttl time.Duration, names []string) {
	h := host()
	if h.phase != 0 || h.declared&Memoizable == 0 {
		return
	}
	h.Memoized, h.MemoizedTTL = append([]string{}, names...), ttl
}

func (h *FakeHost) live(key string) ([]byte, bool) {
	if exp, ok := h.expires[key]; ok && !h.now().Before(exp) {
		delete(h.State, key)
		delete(h.expires, key)
	}
	v, ok := h.State[key]
	return v, ok
}

func (h *FakeHost) put(key string, v []byte, ttl time.Duration) {
	h.State[key] = append([]byte(nil), v...)
	delete(h.expires, key)
	if ttl > 0 {
		h.expires[key] = h.now().Add(ttl)
	}
}

func stateGet(key string) ([]byte, bool, error) {
	v, ok := host().live(key)
	return v, ok, nil
}

func stateSet(key string, value []byte, ttl time.Duration) error {
	host().put(key, value, ttl)
	return nil
}

func stateCAS(key string, old, value []byte, ttl time.Duration) (bool, error) {
	h := host()
	cur, ok := h.live(key)
	if old == nil && ok || old != nil && (!ok || string(cur) != string(old)) {
		return false, nil
	}
	h.put(key, value, ttl)
	return true, nil
}

func stateIncr(key string, delta int64, ttl time.Duration) (int64, error) {
	h := host()
	cur, ok := h.live(key)
	var n int64
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(cur), 10, 64); err != nil {
			return 0, ErrNotInteger
		}
		exp, hasExp := h.expires[key]
		h.State[key] = strconv.AppendInt(nil, n+delta, 10)
		if hasExp {
			h.expires[key] = exp
		}
		return n + delta, nil
	}
	h.put(key, strconv.AppendInt(nil, delta, 10), ttl)
	return delta, nil
}

// rateLimit is the host's GCRA (core/state) on the fake clock; both make
// the decisions of testdata/gcra.json.
func rateLimit(key string, interval time.Duration, burst int) (RateDecision, error) {
	h := host()
	now := h.now().UnixNano()
	tat := now
	if cur, ok := h.live(key); ok {
		if n, err := strconv.ParseInt(string(cur), 10, 64); err == nil && n > now {
			tat = n
		}
	}
	tau := int64(interval) * int64(burst-1)
	if tat-now > tau {
		return RateDecision{RetryAfter: time.Duration(tat - now - tau), Reset: time.Duration(tat - now)}, nil
	}
	next := tat + int64(interval)
	h.put(key, strconv.AppendInt(nil, next, 10), time.Duration(next-now))
	return RateDecision{Allowed: true, Remaining: int((tau - (next - now) + int64(interval)) / int64(interval)), Reset: time.Duration(next - now)}, nil
}

func stateDelete(key string) error {
	h := host()
	delete(h.State, key)
	delete(h.expires, key)
	return nil
}

// Metrics are defined in init, before a FakeHost exists, so their
// definitions are kept here.
type fakeMetric struct {
	kind   int32
	name   string
	labels []string
}

var fakeMetrics []fakeMetric

func metricDefine(kind int32, name, help string, labels []string) int32 {
	fakeMetrics = append(fakeMetrics, fakeMetric{kind, name, labels})
	return int32(len(fakeMetrics) - 1)
}

// metricUpdate records counters as sums, gauges as the last value, and
// histograms as NAME_count and NAME_sum.
func metricUpdate(id int32, v float64, labelValues []string) {
	h := host()
	m := fakeMetrics[id]
	key := m.name
	if len(m.labels) > 0 {
		pairs := make([]string, len(m.labels))
		for i, l := range m.labels {
			val := ""
			if i < len(labelValues) {
				val = labelValues[i]
			}
			pairs[i] = l + "=" + val
		}
		key += "{" + strings.Join(pairs, ",") + "}"
	}
	switch m.kind {
	case 0:
		h.Metrics[key] += v
	case 1:
		h.Metrics[key] = v
	default:
		name, labels, _ := strings.Cut(key, "{")
		if labels != "" {
			labels = "{" + labels
		}
		h.Metrics[name+"_count"+labels]++
		h.Metrics[name+"_sum"+labels] += v
	}
}

func logKV(level int32, msg string, kv []string) {
	h := host()
	line := map[int32]string{-1: "DEBUG", 0: "INFO", 1: "WARN", 2: "ERROR"}[level] + " " + msg
	for i := 0; i+1 < len(kv); i += 2 {
		line += " " + kv[i] + "=" + kv[i+1]
	}
	h.Logs = append(h.Logs, line)
}

func httpCall(method, url string, headers []string, body []byte) int {
	h := host()
	if h.Fetch == nil {
		return -1
	}
	status, header, respBody, err := h.Fetch(method, url, headers, body)
	if err != nil {
		return -2
	}
	h.fetched, h.fetchBody = header, respBody
	return status
}

func fetchHeader(name string) []string { return host().fetched.Values(name) }
func fetchBody() []byte                { return host().fetchBody }

func emit(line []byte) int32 {
	h := host()
	if h.NoOutput {
		return -1
	}
	h.Emitted = append(h.Emitted, string(line))
	return 0
}
