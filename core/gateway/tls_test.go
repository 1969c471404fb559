package gateway_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/gateway"
	"github.com/lintelhq/lintel/internal/gatewaytest"
	"github.com/lintelhq/lintel/internal/testpki"
)

// tlsRoute is a config whose listener terminates TLS with certs (a TOML
// array of {cert, key}) in front of the echo service.
func tlsRoute(certs, extra string) string {
	return fmt.Sprintf(`
[listeners.default]
listen = "127.0.0.1:0"
[listeners.default.tls]
certificates = %s
%s
[services.echo]
targets = ["{{echo}}"]
[[routes]]
path = "/*rest"
service = "echo"
`, certs, extra)
}

func pair(cert, key string) string { return fmt.Sprintf("{ cert = %q, key = %q }", cert, key) }

// servedName dials addr with SNI name (none when "") and returns the
// common name of the certificate the gateway presents (valid for that
// name or not: the choice is what is tested).
func servedName(t *testing.T, addr, name string, ca *testpki.CA) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, RootCAs: ca.Pool, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS handshake with SNI %q: %v", name, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSListenerPicksCertificateBySNI(t *testing.T) {
	ca := testpki.New(t)
	a := pair(ca.Issue(t, "a", "a.test"))
	b := pair(ca.Issue(t, "b", "b.test", "*.b.test"))
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, tlsRoute("["+a+", "+b+"]", ""), map[string]string{"echo": up.URL})
	addr := h.Addr("default")
	for sni, want := range map[string]string{"a.test": "a.test", "b.test": "b.test", "api.b.test": "b.test", "": "a.test", "other.test": "a.test"} {
		if got := servedName(t, addr, sni, ca); got != want {
			t.Errorf("SNI %q: certificate %q, want %q", sni, got, want)
		}
	}
}

func TestTLSListenerServesHTTP2AndHTTP1(t *testing.T) {
	ca := testpki.New(t)
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, tlsRoute("["+pair(ca.Issue(t, "a", "a.test"))+"]", ""), map[string]string{"echo": up.URL})
	for _, h2 := range []bool{true, false} {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "a.test", RootCAs: ca.Pool}, Protocols: new(http.Protocols)}
		tr.Protocols.SetHTTP1(!h2)
		tr.Protocols.SetHTTP2(h2)
		resp, err := (&http.Client{Transport: tr}).Get("https://" + h.Addr("default") + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		want := map[bool]int{true: 2, false: 1}[h2]
		if resp.StatusCode != 200 || resp.ProtoMajor != want {
			t.Errorf("client for HTTP/%d: %d over %s", want, resp.StatusCode, resp.Proto)
		}
		if p := up.Last().Header.Get("X-Forwarded-Proto"); p != "https" {
			t.Errorf("X-Forwarded-Proto %q, want https", p)
		}
	}
}

func TestTLSListenerRefusesOldVersionsAndHTTP2WhenOff(t *testing.T) {
	ca := testpki.New(t)
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, tlsRoute("["+pair(ca.Issue(t, "a", "a.test"))+"]", "min_version = \"1.3\"\nhttp2 = false"), map[string]string{"echo": up.URL})
	addr := h.Addr("default")
	if _, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("TLS 1.2 handshake accepted with min_version = 1.3")
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p == "h2" {
		t.Error("h2 negotiated with http2 = false")
	}
}

func TestTLSBadCertificateNamesKey(t *testing.T) {
	ca := testpki.New(t)
	cert, _ := ca.Issue(t, "a", "a.test")
	_, err := newFromTOML(t, strings.ReplaceAll(tlsRoute("["+pair(cert, "/nonexistent.key")+"]", ""), "{{echo}}", "http://127.0.0.1:1"))
	if err == nil || !strings.Contains(err.Error(), "listeners.default.tls.certificates[0]") || !strings.Contains(err.Error(), "nonexistent.key") {
		t.Errorf("missing key file: %v", err)
	}
}

func TestH2CListener(t *testing.T) {
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, "[listeners.default]\nlisten = \"127.0.0.1:0\"\nh2c = true\n[services.echo]\ntargets = [\"{{echo}}\"]\n[[routes]]\npath = \"/*rest\"\nservice = \"echo\"\n", map[string]string{"echo": up.URL})
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	resp, err := (&http.Client{Transport: tr}).Get(h.URL() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	tr.CloseIdleConnections()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
		t.Errorf("h2c: %d over %s", resp.StatusCode, resp.Proto)
	}
	if resp, _ := h.Do("GET", "/x", nil); resp.StatusCode != 200 || resp.ProtoMajor != 1 {
		t.Errorf("HTTP/1.1 next to h2c: %d over %s", resp.StatusCode, resp.Proto)
	}
}

// tlsUpstream is an HTTPS upstream with a certificate from ca for
// "upstream.internal", answering with the protocol it was reached by.
func tlsUpstream(t *testing.T, ca *testpki.CA, h2 bool) *httptest.Server {
	cert, key := ca.Issue(t, "upstream", "upstream.internal")
	pairTLS, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s tls=%v", r.Proto, r.TLS != nil)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pairTLS}}
	srv.EnableHTTP2 = h2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestUpstreamTLSWithPrivateCA(t *testing.T) {
	ca := testpki.New(t)
	up := tlsUpstream(t, ca, true)
	svc := func(extra string) string {
		return "[services.echo]\ntargets = [\"{{echo}}\"]\n" + extra + "[[routes]]\npath = \"/*rest\"\nservice = \"echo\"\n"
	}
	vars := map[string]string{"echo": up.URL}
	cases := []struct {
		name, extra string
		status      int
		body        string
	}{
		{"trusted CA, HTTP/1.1", fmt.Sprintf("tls = { ca_file = %q, server_name = \"upstream.internal\" }\n", ca.CAFile), 200, "HTTP/1.1 tls=true"},
		{"trusted CA, HTTP/2", fmt.Sprintf("protocol = \"http2\"\ntls = { ca_file = %q, server_name = \"upstream.internal\" }\n", ca.CAFile), 200, "HTTP/2.0 tls=true"},
		{"system roots", "", 502, ""},
		{"wrong name", fmt.Sprintf("tls = { ca_file = %q, server_name = \"other.internal\" }\n", ca.CAFile), 502, ""},
		{"verification skipped", "tls = { insecure_skip_verify = true }\n", 200, "HTTP/1.1 tls=true"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := gatewaytest.Start(t, svc(c.extra), vars)
			resp, body := h.Do("GET", "/x", nil)
			if resp.StatusCode != c.status || c.body != "" && body != c.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, c.status, c.body)
			}
			if c.status == 502 && strings.Contains(body, "127.0.0.1") {
				t.Errorf("problem body reveals the upstream address: %s", body)
			}
		})
	}
}

func TestUpstreamH2C(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	h := gatewaytest.Start(t, "[services.echo]\ntargets = [\"{{echo}}\"]\nprotocol = \"http2\"\n[[routes]]\npath = \"/*rest\"\nservice = \"echo\"\n", map[string]string{"echo": srv.URL})
	if resp, body := h.Do("GET", "/x", nil); resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Errorf("h2c upstream: %d %q, want HTTP/2.0", resp.StatusCode, body)
	}
}

// newFromTOML builds (without starting) a gateway from src.
func newFromTOML(t *testing.T, src string) (*gateway.Gateway, error) {
	cfg, err := config.Parse("test.toml", []byte(src), func(string) (string, bool) { return "", false })
	if err != nil {
		return nil, err
	}
	g, err := gateway.New(cfg, gateway.Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		g.Close()
	}
	return g, err
}

// TestTLSHandshakeIsBounded: a client that connects to a TLS listener
// and never says hello is cut off after read_header_timeout, as a slow
// client over plain HTTP is (slowloris on the handshake).
func TestTLSHandshakeIsBounded(t *testing.T) {
	ca := testpki.New(t)
	up := gatewaytest.NewUpstream(t, nil)
	h := gatewaytest.Start(t, strings.Replace(tlsRoute("["+pair(ca.Issue(t, "b", "b.test"))+"]", ""), "listen = \"127.0.0.1:0\"", "listen = \"127.0.0.1:0\"\nread_header_timeout = \"300ms\"", 1), map[string]string{"echo": up.URL})
	c, err := net.Dial("tcp", h.Addr("default"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent TLS client not cut off: %v after %v", err, time.Since(start))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut off after %v, want about read_header_timeout (300ms)", d)
	}
}
