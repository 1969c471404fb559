package stdlog

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/internal/testlog"
)

func TestLinesBecomeWarnings(t *testing.T) {
	var buf testlog.Buffer
	New(slog.New(slog.NewJSONHandler(&buf, nil))).Printf("http: TLS handshake error from %s: EOF", "127.0.0.1:1")
	if got := buf.String(); !strings.Contains(got, `"level":"WARN","msg":"http: TLS handshake error from 127.0.0.1:1: EOF"}`) {
		t.Errorf("logged %s", got)
	}
}
