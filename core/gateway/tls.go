package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/lintelhq/lintel/core/config"
)

// listenerTLS loads a listener's certificates. Errors name the key of
// the certificate that failed.
func listenerTLS(cfg *config.Config, l *config.Listener) (*tls.Config, *config.Error) {
	t := l.TLS
	if t == nil {
		return nil, nil
	}
	key := "listeners." + l.Name + ".tls"
	tc := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	if t.MinVersion == "1.3" {
		tc.MinVersion = tls.VersionTLS13
	}
	if t.HTTP2 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	for i, c := range t.Certificates {
		pair, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, cfg.Errorf(fmt.Sprintf("%s.certificates[%d]", key, i), "%v", err)
		}
		// Certificates are tried in order for the client's SNI name;
		// the first is also the one for clients that send none.
		tc.Certificates = append(tc.Certificates, pair)
	}
	return tc, nil
}

// upstreamTLS is how a service verifies its https targets.
func upstreamTLS(cfg *config.Config, s *config.Service) (*tls.Config, *config.Error) {
	t := s.TLS
	if t == nil {
		return nil, nil
	}
	tc := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		key := "services." + s.Name + ".tls.ca_file"
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, cfg.Errorf(key, "%v", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, cfg.Errorf(key, "%s holds no PEM certificate", t.CAFile)
		}
	}
	return tc, nil
}
