package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// target is one address requests go to.
type target struct {
	url *url.URL // where it is dialled: scheme and host:port
	// host is the Host (and TLS server name) sent, when it is not url's
	// host: a resolved name's, for a target dialled by its IP.
	host string
	// key identifies it across resolutions: url and host.
	key       string
	transport *http.Transport // its own, so its connections close when it leaves
	latency   func(time.Duration)
	down      atomic.Bool
	downUntil atomic.Int64 // unix nanos
	inflight  atomic.Int64 // requests sent and not yet answered in full
	// checkedDown: the active health check took it out.
	checkedDown atomic.Bool
	// passes and fails count the health check's results in a row; only
	// the checker touches them.
	passes, fails int
	circuit       circuit // used when the service has a breaker
}

// coolingDown reports whether t is skipped at now: it failed recently,
// or fails its health check.
func (t *target) coolingDown(now time.Time) bool {
	return t.checkedDown.Load() || t.downUntil.Load() > now.UnixNano()
}

// label names t in logs and metrics: its address, and the name it was
// resolved from.
func (t *target) label() string {
	if t.host == "" {
		return t.url.Host
	}
	return t.url.Host + " (" + t.host + ")"
}

// targetSet is a service's targets at one moment, and its balancer over
// them. A resolution replaces the whole set; a request works with the
// set it loaded.
type targetSet struct {
	targets []*target
	balance *balancer // weights indexed as targets
}

// address is a target as configured or resolved.
type address struct {
	url    *url.URL
	host   string // "" for url's host
	weight int
}

func (a address) key() string {
	if a.host == "" {
		return a.url.String()
	}
	return a.url.String() + " " + a.host
}

// update makes addrs the service's targets. A target whose address
// stays keeps its connections, health and circuit; one that leaves
// keeps serving the requests it has, and its idle connections close.
func (s *backend) update(addrs []address) {
	old := s.set.Load()
	if old != nil && sameAddresses(old, addrs) {
		return
	}
	kept := map[string]*target{}
	if old != nil {
		for _, t := range old.targets {
			kept[t.key] = t
		}
	}
	set := &targetSet{}
	var weights []int
	var keys []string
	for _, a := range addrs {
		k := a.key()
		t := kept[k]
		if t == nil {
			t = s.newTarget(a, k)
			if old != nil {
				s.log.Info("upstream target joins", "target", t.label())
			}
		}
		delete(kept, k)
		set.targets = append(set.targets, t)
		weights = append(weights, a.weight)
		keys = append(keys, k)
	}
	set.balance = newBalancer(s.cfg.Balance, weights, keys)
	s.set.Store(set)
	for _, t := range kept {
		s.log.Info("upstream target leaves", "target", t.label())
		s.retire(t)
	}
}

// sameAddresses reports whether set already is addrs.
func sameAddresses(set *targetSet, addrs []address) bool {
	if len(set.targets) != len(addrs) {
		return false
	}
	for i, a := range addrs {
		if set.targets[i].key != a.key() || set.balance.weights[i] != a.weight {
			return false
		}
	}
	return true
}

func (s *backend) newTarget(a address, key string) *target {
	t := &target{url: a.url, host: a.host, key: key, latency: s.metrics.latency(s.Name, a.url.Host)}
	t.circuit.state = circuitClosed
	if s.cfg.Breaker != nil {
		s.metrics.circuit(s.Name, a.url.Host, circuitClosed)
	}
	if s.cfg.HealthCheck != nil {
		s.metrics.healthy(s.Name, a.url.Host, true)
	}
	tc := s.tls
	if a.host != "" && a.url.Scheme == "https" && (tc == nil || tc.ServerName == "") {
		// Dialled by IP: the certificate is the name's.
		name, _, err := net.SplitHostPort(a.host)
		if err != nil {
			name = a.host
		}
		if tc == nil {
			tc = &tls.Config{}
		} else {
			tc = tc.Clone()
		}
		tc.ServerName = name
	}
	t.transport = s.newTransport(tc)
	return t
}

// retire lets a target that left finish: its idle connections close now,
// and those its requests in flight return to the pool close once the
// service's timeout has passed.
func (s *backend) retire(t *target) {
	t.transport.CloseIdleConnections()
	grace := s.cfg.Timeout.D()
	if grace <= 0 {
		grace = time.Minute
	}
	time.AfterFunc(grace, t.transport.CloseIdleConnections)
	s.metrics.forget(s.Name, t.url.Host)
}

func (s *backend) newTransport(tc *tls.Config) *http.Transport {
	cfg := &s.cfg
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout.D(), KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		DialContext:            dialer.DialContext,
		MaxIdleConns:           cfg.MaxIdleConns,
		MaxIdleConnsPerHost:    cfg.MaxIdleConns,
		IdleConnTimeout:        cfg.IdleConnTimeout.D(),
		ResponseHeaderTimeout:  cfg.ResponseHeaderTimeout.D(),
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 1 << 20,
		// Encodings pass through untouched: the client negotiates them
		// with the upstream.
		DisableCompression:  true,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: cfg.ConnectTimeout.D(),
		Protocols:           new(http.Protocols),
	}
	if cfg.Protocol == "http2" || cfg.Protocol == "grpc" {
		// Only HTTP/2: over TLS by ALPN, over plain TCP with prior
		// knowledge (h2c).
		tr.Protocols.SetHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return tr
}
