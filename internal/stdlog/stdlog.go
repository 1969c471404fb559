// Package stdlog sends the lines that standard-library servers and
// proxies write to a *log.Logger (net/http's TLS handshake errors and
// recovered panics, httputil's proxy errors) to a slog.Logger, as
// warnings, so they come out in the gateway's format.
package stdlog

import (
	"log"
	"log/slog"
	"strings"
)

// New returns a *log.Logger whose lines go to l at warning level.
func New(l *slog.Logger) *log.Logger { return log.New(writer{l}, "", 0) }

type writer struct{ l *slog.Logger }

func (w writer) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
