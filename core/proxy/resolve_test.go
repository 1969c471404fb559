package proxy_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer answers A, AAAA and SRV queries over UDP on loopback from
// records the test sets, or fails them all (SERVFAIL).
type dnsServer struct {
	addr    string
	mu      sync.Mutex
	a       map[string][]netip.Addr // by name, with its final dot
	srv     map[string][]dnsmessage.SRVResource
	failing bool
	queries atomic.Int64
}

func startDNS(t *testing.T) *dnsServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{addr: pc.LocalAddr().String(), a: map[string][]netip.Addr{}, srv: map[string][]dnsmessage.SRVResource{}}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := d.answer(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	return d
}

func (d *dnsServer) setA(name string, ips ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.a[name+"."] = nil
	for _, ip := range ips {
		d.a[name+"."] = append(d.a[name+"."], netip.MustParseAddr(ip))
	}
}

func (d *dnsServer) setSRV(name string, records ...dnsmessage.SRVResource) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.srv[name+"."] = records
}

func (d *dnsServer) fail(on bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.failing = on
}

func (d *dnsServer) answer(query []byte) []byte {
	d.queries.Add(1)
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RCode: dnsmessage.RCodeSuccess}
	name := q.Name.String()
	_, knownA := d.a[name]
	_, knownSRV := d.srv[name]
	switch {
	case d.failing:
		rh.RCode = dnsmessage.RCodeServerFailure
	case !knownA && !knownSRV:
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if rh.RCode == dnsmessage.RCodeSuccess {
		rr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
		switch q.Type {
		case dnsmessage.TypeA:
			for _, ip := range d.a[name] {
				if ip.Is4() {
					b.AResource(rr, dnsmessage.AResource{A: ip.As4()})
				}
			}
		case dnsmessage.TypeAAAA:
			for _, ip := range d.a[name] {
				if ip.Is6() {
					b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: ip.As16()})
				}
			}
		case dnsmessage.TypeSRV:
			for _, r := range d.srv[name] {
				b.SRVResource(rr, r)
			}
		}
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// listenAt serves handler on ip, at port when it is not 0; connState,
// when given, follows its connections.
func listenAt(t *testing.T, ip string, port int, handler http.Handler, connState ...func(net.Conn, http.ConnState)) *httptest.Server {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(port)))
	if err != nil {
		t.Skipf("cannot listen on %s:%d: %v", ip, port, err)
	}
	s := &httptest.Server{Listener: ln, Config: &http.Server{Handler: handler}}
	if connState != nil {
		s.Config.ConnState = connState[0]
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

// whoAmI answers "IP HOST" (the address it listens on, the Host it got).
func whoAmI(ip string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { fmt.Fprintf(w, "%s %s", ip, r.Host) }
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
	}
}

// TestDNSTargetsJoinAndLeave: a named target is every address DNS gives
// it, each dialled by IP with the name as Host. An address that joins
// gets requests; one that leaves finishes the request it holds, gets no
// more, and its connections close. A failed lookup keeps the addresses.
func TestDNSTargetsJoinAndLeave(t *testing.T) {
	release := make(chan struct{})
	var holding atomic.Int64
	var open1 atomic.Int64 // connections open to 127.0.0.1
	one := listenAt(t, "127.0.0.1", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			holding.Add(1)
			<-release
		}
		whoAmI("127.0.0.1")(w, r)
	}), func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			open1.Add(1)
		case http.StateClosed, http.StateHijacked:
			open1.Add(-1)
		}
	})
	port := one.Listener.Addr().(*net.TCPAddr).Port
	listenAt(t, "127.0.0.2", port, whoAmI("127.0.0.2"))
	dns := startDNS(t)
	dns.setA("orders.test", "127.0.0.1")

	s := service(t, fmt.Sprintf("timeout = \"2s\"\ndns = { interval = \"1s\", servers = [%q] }", dns.addr), fmt.Sprintf("http://orders.test:%d", port))
	host := fmt.Sprintf("orders.test:%d", port)
	if code, body := send(t, s, "GET", "/", ""); code != 200 || body != "127.0.0.1 "+host {
		t.Fatalf("first request: %d %q", code, body)
	}
	s.Start()

	dns.setA("orders.test", "127.0.0.1", "127.0.0.2")
	seen := map[string]bool{}
	eventually(t, "both addresses serve", func() bool {
		_, body := send(t, s, "GET", "/", "")
		seen[body] = true
		return seen["127.0.0.1 "+host] && seen["127.0.0.2 "+host]
	})

	// Hold a request on 127.0.0.1, then take the address out of DNS.
	held := make(chan string, 1)
	go func() {
		for holding.Load() == 0 {
			code, body := send(t, s, "GET", "/hold", "")
			if strings.HasPrefix(body, "127.0.0.1") {
				held <- fmt.Sprintf("%d %s", code, body)
				return
			}
		}
	}()
	eventually(t, "a request is held on 127.0.0.1", func() bool { return holding.Load() == 1 })
	dns.setA("orders.test", "127.0.0.2")
	eventually(t, "127.0.0.1 leaves", func() bool { return len(s.Targets()) == 1 })
	close(release)
	if got := <-held; got != "200 127.0.0.1 "+host {
		t.Errorf("the request held while its address left: %q", got)
	}
	for range 6 {
		if _, body := send(t, s, "GET", "/", ""); body != "127.0.0.2 "+host {
			t.Errorf("after 127.0.0.1 left: %q", body)
		}
	}
	eventually(t, "127.0.0.1's connections close", func() bool { return open1.Load() == 0 })

	// DNS fails: the addresses stay.
	dns.fail(true)
	before := dns.queries.Load()
	eventually(t, "a failed lookup", func() bool { return dns.queries.Load() > before })
	time.Sleep(100 * time.Millisecond)
	if code, body := send(t, s, "GET", "/", ""); code != 200 || body != "127.0.0.2 "+host || len(s.Targets()) != 1 {
		t.Errorf("with DNS failing: %d %q, %d targets", code, body, len(s.Targets()))
	}
}

// TestDNSSRVTargets: a srv+http target is the hosts and ports of its
// most preferred SRV records, each sent its record's name as Host.
func TestDNSSRVTargets(t *testing.T) {
	a := listenAt(t, "127.0.0.1", 0, whoAmI("a"))
	b := listenAt(t, "127.0.0.1", 0, whoAmI("b"))
	backup := listenAt(t, "127.0.0.1", 0, whoAmI("backup"))
	portOf := func(s *httptest.Server) uint16 { return uint16(s.Listener.Addr().(*net.TCPAddr).Port) }
	dns := startDNS(t)
	dns.setA("node-a.test", "127.0.0.1")
	dns.setA("node-b.test", "127.0.0.1")
	dns.setSRV("_api._tcp.test",
		dnsmessage.SRVResource{Priority: 10, Weight: 1, Port: portOf(a), Target: dnsmessage.MustNewName("node-a.test.")},
		dnsmessage.SRVResource{Priority: 10, Weight: 1, Port: portOf(b), Target: dnsmessage.MustNewName("node-b.test.")},
		dnsmessage.SRVResource{Priority: 20, Weight: 1, Port: portOf(backup), Target: dnsmessage.MustNewName("node-a.test.")},
	)
	s := service(t, fmt.Sprintf("dns = { servers = [%q] }", dns.addr), "srv+http://_api._tcp.test")
	seen := map[string]int{}
	for range 10 {
		_, body := send(t, s, "GET", "/", "")
		seen[body]++
	}
	wantA, wantB := fmt.Sprintf("a node-a.test:%d", portOf(a)), fmt.Sprintf("b node-b.test:%d", portOf(b))
	if seen[wantA] != 5 || seen[wantB] != 5 || len(seen) != 2 {
		t.Errorf("answers %v, want five each of %q and %q", seen, wantA, wantB)
	}
}

// TestDNSTargetOverTLSKeepsTheNameAsServerName: dialled by IP, an https
// target asks for its name's certificate (SNI).
func TestDNSTargetOverTLSKeepsTheNameAsServerName(t *testing.T) {
	var sni atomic.Value
	up := httptest.NewUnstartedServer(whoAmI("tls"))
	up.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		sni.Store(hello.ServerName)
		return nil, nil
	}}
	up.StartTLS()
	defer up.Close()
	port := up.Listener.Addr().(*net.TCPAddr).Port
	dns := startDNS(t)
	dns.setA("secure.test", "127.0.0.1")
	s := serviceTLS(t, fmt.Sprintf("dns = { servers = [%q] }", dns.addr), &tls.Config{InsecureSkipVerify: true}, fmt.Sprintf("https://secure.test:%d", port))
	if code, body := send(t, s, "GET", "/", ""); code != 200 || body != fmt.Sprintf("tls secure.test:%d", port) || sni.Load() != "secure.test" {
		t.Errorf("%d %q, SNI %q", code, body, sni.Load())
	}
}

// TestDNSNameThatNeverResolved: no address at all is the gateway's 503,
// not a dial of the name.
func TestDNSNameThatNeverResolved(t *testing.T) {
	dns := startDNS(t)
	s := service(t, fmt.Sprintf("dns = { servers = [%q] }", dns.addr), "http://missing.test:80")
	if code, body := send(t, s, "GET", "/", ""); code != 0 || !strings.Contains(body, "no target address") {
		t.Errorf("%d %q", code, body)
	}
}
