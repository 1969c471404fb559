package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/net/http/httpguts"
)

// trustSet is a listener's trusted proxies.
type trustSet []netip.Prefix

func (t trustSet) contains(a netip.Addr) bool {
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// identity works out who the client is and what it asked for. When the
// socket peer is a trusted proxy, X-Forwarded-For is read from the right:
// the first address that is not a trusted proxy is the client (addresses
// to its left could have been written by anyone). Otherwise the peer is
// the client and forwarding headers it sent are ignored.
//
// It returns the client, the X-Forwarded-For value for upstreams, and the
// scheme and host the client used.
func (t trustSet) identity(r *http.Request) (client netip.Addr, xff, scheme, host string) {
	peer := remoteAddr(r)
	scheme, host = "http", r.Host
	if r.TLS != nil {
		scheme = "https"
	}
	if !peer.IsValid() || !t.contains(peer) {
		return peer, peer.String(), scheme, host
	}
	client = peer
	prior := r.Header.Values("X-Forwarded-For")
	if len(prior) > 0 {
		hops := strings.Split(strings.Join(prior, ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break // unparseable: nothing further left can be trusted
			}
			client = a.Unmap()
			if !t.contains(client) {
				break
			}
		}
		xff = strings.Join(prior, ", ") + ", " + peer.String()
	} else {
		xff = peer.String()
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && httpguts.ValidHostHeader(h) {
		host = h
	}
	return client, xff, scheme, host
}

func remoteAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// requestIDs makes request ids: a random per-process prefix and a
// counter, 32 hex digits like a W3C trace id, unique without a syscall
// per request.
type requestIDs struct {
	prefix [16]byte
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [8]byte
	_, _ = rand.Read(b[:])
	g := &requestIDs{}
	hex.Encode(g.prefix[:], b[:])
	return g
}

func (g *requestIDs) next() string {
	var buf [32]byte
	copy(buf[:], g.prefix[:])
	n := strconv.AppendUint(make([]byte, 0, 16), g.n.Add(1), 16)
	for i := range 16 - len(n) {
		buf[16+i] = '0'
	}
	copy(buf[32-len(n):], n)
	return string(buf[:])
}

// validRequestID accepts a client's X-Request-Id when it is short and made
// of characters safe to log and to pass on.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// hopByHop are the headers RFC 9110 7.6.1 says a proxy must not forward,
// but Te, which the proxy reads itself ("trailers") and never forwards.
// HTTP2-Settings belongs to an h2c upgrade (RFC 7540 3.2.1).
var hopByHop = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings",
}

// stripHopByHop removes hop-by-hop headers from a client request as it
// arrives, before any filter runs: the headers named in Connection and the
// standard ones. A protocol upgrade (WebSocket) keeps "Connection:
// Upgrade" and "Upgrade". Te is kept for the proxy to read ("trailers").
//
// Doing this first means a header a filter sets later (X-User, say)
// cannot be stripped by a client listing it in Connection.
func stripHopByHop(h http.Header) {
	upgrade := ""
	if httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		upgrade = h.Get("Upgrade")
	}
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" && !strings.EqualFold(name, "te") {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	if upgrade != "" {
		h.Set("Connection", "Upgrade")
		h.Set("Upgrade", upgrade)
	}
}
