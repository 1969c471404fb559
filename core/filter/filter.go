// Package filter defines what a filter is and runs ordered chains of them.
//
// A filter sees a request before its target (the request phase, in the
// configured order) and the response after it (the response phase, in
// reverse order), like http-wasm's handle_request and handle_response. A
// filter may answer a request itself; the filters after it and the target
// are then skipped, while the response phase of the filters before it
// still runs.
//
// The response phase runs when the response head is about to be sent, so
// it can change the status and headers of a streamed response (SSE, a
// large download) without holding its body. A filter that needs the body
// sets exchange.Exchange.BufferResponse in its request phase; the chain holds
// the whole response and runs the response phase once it is complete.
//
// This package knows nothing of WebAssembly; core/wasm implements Filter.
package filter

import (
	"net/http"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
)

// Filter is one configured filter. Implementations must be safe for
// concurrent use: one Filter serves every request of its chains.
type Filter interface {
	// Name is the filter's name in gateway.toml.
	Name() string
	// Request runs the request phase. It may change x.Request. To answer
	// the request itself it writes the response to w and returns
	// next=false. A non-nil Pending receives the response phase and is
	// always released exactly once. An error is answered with 500 unless
	// a response was already written.
	Request(x *exchange.Exchange, w http.ResponseWriter) (next bool, p Pending, err error)
}

// Pending is a filter's hold on one request between its two phases (a
// WASM instance, for example).
type Pending interface {
	// Response runs the response phase: r.Header and r.Status may be
	// changed; r.Body holds the body only when BufferResponse was set.
	Response(x *exchange.Exchange, r *Response) error
	// Release ends the hold. It is called once, after Response or instead
	// of it (the filter answered, a later filter failed, the client left).
	Release()
}

// Response is the response as the response phase sees it.
type Response struct {
	Status int
	Header http.Header
	// Body is the whole body when Buffered, else nil.
	Body     []byte
	Buffered bool
	// Error reports that the target failed and the gateway answered
	// for it (502, 504, ...).
	Error bool
}

// Factory builds the Filter a [filters.NAME] table describes.
type Factory interface {
	New(spec *config.Filter) (Filter, error)
}
