package filter_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/filter"
	"github.com/lintelhq/lintel/core/filter/filtertest"
)

// chain builds native test filters named a, b, c... with the given config
// tables.
func chain(t *testing.T, f *filtertest.Factory, configs ...map[string]any) filter.Chain {
	t.Helper()
	var c filter.Chain
	for i, cfg := range configs {
		flt, err := f.New(&config.Filter{Name: string(rune('a' + i)), Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		c = append(c, flt)
	}
	return c
}

func newExchange() *exchange.Exchange {
	return &exchange.Exchange{Request: httptest.NewRequest("GET", "/x", nil), RequestID: "r1", BaseLog: slog.New(slog.DiscardHandler)}
}

// target answers 200 with a body, or as the test says.
func target(status int, body string) filter.Handler {
	return func(x *exchange.Exchange, w http.ResponseWriter) {
		w.Header().Set("X-Target", "1")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestChainRunsRequestsInOrderAndResponsesInReverse(t *testing.T) {
	var f filtertest.Factory
	w := httptest.NewRecorder()
	chain(t, &f, nil, nil, nil).Serve(newExchange(), w, target(200, "ok"))
	want := []string{"a:request", "b:request", "c:request", "c:response", "c:release", "b:response", "b:release", "a:response", "a:release"}
	if got := f.Events(); !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if w.Code != 200 || w.Body.String() != "ok" || strings.Join(w.Header().Values("X-Trace"), ",") != "c,b,a" {
		t.Errorf("response %d %q %v", w.Code, w.Body, w.Header())
	}
}

func TestFilterThatAnswersSkipsTheRestButNotTheResponsesBefore(t *testing.T) {
	var f filtertest.Factory
	w := httptest.NewRecorder()
	x := newExchange()
	called := false
	chain(t, &f, nil, map[string]any{"answer": int64(401)}, nil).Serve(x, w, func(*exchange.Exchange, http.ResponseWriter) { called = true })
	if called || w.Code != 401 || w.Body.String() != "answered by b" {
		t.Errorf("target called %v, response %d %q", called, w.Code, w.Body)
	}
	if got, want := f.Events(), []string{"a:request", "b:request", "a:response", "a:release"}; !slices.Equal(got, want) {
		t.Errorf("events %v, want %v", got, want)
	}
	if x.AnsweredBy != exchange.ByFilter {
		t.Errorf("AnsweredBy %q", x.AnsweredBy)
	}
}

func TestFailingOrPanickingFilterCostsOneRequestA500(t *testing.T) {
	for _, mode := range []string{"request", "panic", "response"} {
		var f filtertest.Factory
		w := httptest.NewRecorder()
		chain(t, &f, nil, map[string]any{"fail": mode}).Serve(newExchange(), w, target(200, "secret upstream body"))
		if w.Code != 500 || strings.Contains(w.Body.String(), "secret") || !strings.Contains(w.Body.String(), `filter \"b\" failed`) {
			t.Errorf("fail=%s: %d %q", mode, w.Code, w.Body)
		}
	}
}

func TestBufferedResponseIsWholeForTheResponsePhase(t *testing.T) {
	var f filtertest.Factory
	w := httptest.NewRecorder()
	chain(t, &f, map[string]any{"buffer": true, "append_body": "+a"}, map[string]any{"append_body": "+b"}).
		Serve(newExchange(), w, func(x *exchange.Exchange, w http.ResponseWriter) {
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "o")
			io.WriteString(w, "k")
		})
	if w.Body.String() != "ok+b+a" || w.Header().Get("Content-Length") != "6" {
		t.Errorf("body %q, Content-Length %q", w.Body, w.Header().Get("Content-Length"))
	}
}

func TestTooLargeForABufferingFilterIs502(t *testing.T) {
	var f filtertest.Factory
	w := httptest.NewRecorder()
	chain(t, &f, map[string]any{"buffer": true}).Serve(newExchange(), w, func(x *exchange.Exchange, w http.ResponseWriter) {
		chunk := make([]byte, 1<<20)
		for range filter.MaxBufferedResponse/len(chunk) + 1 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	if w.Code != 502 {
		t.Errorf("status %d", w.Code)
	}
}

func TestResponsePhaseSeesAFailedTarget(t *testing.T) {
	var f filtertest.Factory
	w := httptest.NewRecorder()
	chain(t, &f, nil).Serve(newExchange(), w, func(x *exchange.Exchange, w http.ResponseWriter) {
		x.AnsweredBy = exchange.ForFailedTarget
		w.WriteHeader(502)
	})
	if w.Code != 502 || w.Header().Get("X-Trace-Error") != "a" {
		t.Errorf("%d %v", w.Code, w.Header())
	}
}
