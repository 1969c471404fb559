// Package problem writes error responses as RFC 9457 problem details
// (application/problem+json). Every error the gateway itself answers goes
// through here, so clients see one shape and no internal address leaks
// into a body.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ContentType is the media type of a problem body.
const ContentType = "application/problem+json"

// Details is an RFC 9457 problem. Type is left as its default
// "about:blank", so Title is the HTTP status phrase.
type Details struct {
	Status    int    `json:"status"`
	Title     string `json:"title"`
	Detail    string `json:"detail,omitempty"`
	Instance  string `json:"instance,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Part names the aggregation part that failed, when one did.
	Part string `json:"part,omitempty"`
	// GRPCStatus is a gRPC service's status code ("NOT_FOUND"), and
	// GRPCDetails its status details, when a gRPC call failed.
	GRPCStatus  string          `json:"grpc_status,omitempty"`
	GRPCDetails json.RawMessage `json:"grpc_details,omitempty"`
}

// Write sends d as the response. It must be called before anything else
// is written to w. RequestID defaults to the response's X-Request-Id.
func Write(w http.ResponseWriter, d Details) {
	if d.Title == "" {
		d.Title = http.StatusText(d.Status)
	}
	h := w.Header()
	if d.RequestID == "" {
		d.RequestID = h.Get("X-Request-Id")
	}
	body, _ := json.Marshal(d)
	body = append(body, '\n')
	h.Set("Content-Type", ContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_, _ = w.Write(body)
}

// Error sends a problem with the given status and detail.
func Error(w http.ResponseWriter, status int, detail string) {
	Write(w, Details{Status: status, Detail: detail})
}
