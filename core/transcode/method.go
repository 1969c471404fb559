package transcode

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/code"
	_ "google.golang.org/genproto/googleapis/rpc/errdetails" // the standard error details, for problem bodies
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/exchange"
	"github.com/lintelhq/lintel/core/problem"
	"github.com/lintelhq/lintel/core/router"
)

// Upstream is where a Method's calls go: proxy.Service.
type Upstream interface {
	Do(x *exchange.Exchange, req *http.Request) (*http.Response, error)
	Timeout() time.Duration
}

// Limits on what a call reads.
const (
	maxRequestBody = 4 << 20 // the client's JSON body
	maxMessage     = 4 << 20 // the service's response message (gRPC's default)
)

// Method serves one route with one unary gRPC method.
type Method struct {
	up      Upstream
	path    string // "/package.Service/Method"
	desc    protoreflect.MethodDescriptor
	body    *string // nil: "*" for POST, PUT and PATCH, else none
	forward []string
	types   *types
	json    protojson.MarshalOptions
	timeout time.Duration // of a call, a whole stream included; 0 none
}

// NewMethod prepares a route's method: it checks that the method exists
// in d, that the body field is a message field of its request, and that
// each parameter of the route's path names a field. js shapes its
// answers' JSON.
func NewMethod(d *Descriptors, up Upstream, rc *config.RouteGRPC, routePath string, js config.GRPCJSON) (*Method, error) {
	md, err := d.Method(rc.Method)
	if err != nil {
		return nil, err
	}
	if md.IsStreamingClient() {
		return nil, fmt.Errorf("%s streams from the client; a REST request is one message (unary and server-streaming methods can be served)", md.Name())
	}
	m := &Method{up: up, path: "/" + rc.Method, desc: md, body: rc.Body, forward: rc.ForwardHeaders, types: newTypes(d.files), timeout: up.Timeout()}
	if rc.Timeout != nil {
		m.timeout = rc.Timeout.D()
	}
	m.json = protojson.MarshalOptions{EmitUnpopulated: !js.OmitUnpopulated, UseProtoNames: js.ProtoNames, UseEnumNumbers: js.EnumNumbers, Resolver: m.types}
	in := md.Input()
	if b := rc.Body; b != nil && *b != "" && *b != "*" {
		fd := fieldByName(in, *b)
		if fd == nil || fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			return nil, fmt.Errorf("body %q is not a message field of %s", *b, in.FullName())
		}
	}
	for _, seg := range strings.Split(routePath, "/") {
		if len(seg) > 1 && (seg[0] == ':' || seg[0] == '*') {
			if _, err := fieldPath(in, seg[1:]); err != nil {
				return nil, fmt.Errorf("path parameter %q: %v", seg[1:], err)
			}
		}
	}
	return m, nil
}

// Streaming reports whether the method streams its answer.
func (m *Method) Streaming() bool { return m.desc.IsStreamingServer() }

// JSON calls the method with a request message filled from ps alone (an
// aggregation part), within ctx, and returns the answer as JSON; a gRPC
// status other than OK is an error that names it.
func (m *Method) JSON(ctx context.Context, x *exchange.Exchange, ps router.Params) ([]byte, error) {
	req := dynamicpb.NewMessage(m.desc.Input())
	if err := setParams(req, ps); err != nil {
		return nil, err
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	res, err := m.call(ctx, x, payload)
	if err != nil {
		return nil, fmt.Errorf("the gRPC service %w", err)
	}
	if res.code != code.Code_OK {
		return nil, fmt.Errorf("the gRPC service answered %s: %s", code.Code_name[int32(res.code)], res.message)
	}
	return m.marshal(res.message1)
}

// marshal decodes a response message and writes it as JSON.
func (m *Method) marshal(b []byte) ([]byte, error) {
	out := dynamicpb.NewMessage(m.desc.Output())
	if err := proto.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("the gRPC service's answer does not decode as %s: %v", m.desc.Output().FullName(), err)
	}
	j, err := m.json.Marshal(out)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace from build to build on purpose;
	// clients get one stable, compact form.
	var compact bytes.Buffer
	if err := json.Compact(&compact, j); err != nil {
		return nil, err
	}
	return compact.Bytes(), nil
}

// Serve answers one request: its parameters and body become the request
// message, and the method's answer becomes JSON, or a problem.
func (m *Method) Serve(x *exchange.Exchange, w http.ResponseWriter, ps router.Params) {
	req := dynamicpb.NewMessage(m.desc.Input())
	if err := m.fill(req, x.Request, ps); err != nil {
		m.refuse(x, w, http.StatusBadRequest, err.Error())
		return
	}
	payload, err := proto.Marshal(req)
	if err != nil {
		m.refuse(x, w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := x.Request.Context()
	if d := m.timeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if m.desc.IsStreamingServer() {
		m.serveStream(ctx, x, w, payload)
		return
	}
	res, err := m.call(ctx, x, payload)
	if err != nil {
		m.failed(x, w, err)
		return
	}
	h := w.Header()
	for name, values := range res.metadata {
		h[name] = values
	}
	if res.code != code.Code_OK {
		m.statusProblem(w, res)
		return
	}
	body, err := m.marshal(res.message1)
	if err != nil {
		x.AnsweredBy = exchange.ForFailedTarget
		problem.Error(w, http.StatusBadGateway, err.Error())
		return
	}
	body = append(body, '\n')
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// failed answers for a call that got no status: 502, or 504 when the
// service did not answer in time.
func (m *Method) failed(x *exchange.Exchange, w http.ResponseWriter, err error) {
	x.AnsweredBy = exchange.ForFailedTarget
	status := http.StatusBadGateway
	if errors.Is(err, context.DeadlineExceeded) {
		status = http.StatusGatewayTimeout
	}
	problem.Error(w, status, "the gRPC service "+err.Error())
}

// statusProblem answers a status other than OK as a problem.
func (m *Method) statusProblem(w http.ResponseWriter, res *result) {
	p := problem.Details{Status: httpStatus(res.code), Detail: res.message, GRPCStatus: code.Code_name[int32(res.code)]}
	if len(res.details) > 0 {
		p.GRPCDetails = m.details(res.details)
	}
	problem.Write(w, p)
}

// serveStream answers a server-streaming method: each message as it
// comes, as a line of JSON (application/x-ndjson), or as a Server-Sent
// Event when the client accepts text/event-stream, flushed one by one. A
// status other than OK before the first message is a problem answer;
// after it, a last line (or an "error" event) holding the status. The
// client leaving cancels the call.
func (m *Method) serveStream(ctx context.Context, x *exchange.Exchange, w http.ResponseWriter, payload []byte) {
	resp, err := m.send(ctx, x, payload)
	if err != nil {
		m.failed(x, w, err)
		return
	}
	defer resp.Body.Close()
	sse := strings.Contains(x.Request.Header.Get("Accept"), "text/event-stream")
	started := false
	rc := http.NewResponseController(w)
	for {
		msg, err := readFrame(resp.Body)
		if err == io.EOF {
			break
		}
		if err != nil {
			err = brokeOff(ctx, err)
			if !started {
				m.failed(x, w, err)
				return
			}
			m.streamError(w, sse, map[string]any{"message": "the gRPC service " + err.Error()})
			return
		}
		line, err := m.marshal(msg)
		if err != nil {
			err = fmt.Errorf("the gRPC service %w", err)
			if !started {
				m.failed(x, w, err)
				return
			}
			m.streamError(w, sse, map[string]any{"message": err.Error()})
			return
		}
		if !started {
			started = true
			h := w.Header()
			for name, values := range metadata(resp.Header) {
				h[name] = values
			}
			h.Set("Content-Type", "application/x-ndjson")
			if sse {
				h.Set("Content-Type", "text/event-stream")
				h.Set("Cache-Control", "no-cache")
			}
			w.WriteHeader(http.StatusOK)
		}
		if sse {
			_, _ = fmt.Fprintf(w, "data: %s\n\n", line)
		} else {
			_, _ = w.Write(append(line, '\n'))
		}
		if err := rc.Flush(); err != nil {
			return // the client left; ctx ends the call
		}
	}
	res, err := callStatus(resp)
	switch {
	case err != nil && !started:
		m.failed(x, w, err)
	case err != nil:
		m.streamError(w, sse, map[string]any{"message": "the gRPC service " + err.Error()})
	case res.code != code.Code_OK && !started:
		for name, values := range res.metadata {
			w.Header()[name] = values
		}
		m.statusProblem(w, res)
	case res.code != code.Code_OK:
		e := map[string]any{"grpc_status": code.Code_name[int32(res.code)], "message": res.message}
		if d := m.details(res.details); d != nil {
			e["grpc_details"] = d
		}
		m.streamError(w, sse, e)
	case !started:
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
	}
}

// streamError ends a stream whose head was sent with the error that
// ended it: a last line {"error": ...}, or an "error" event.
func (m *Method) streamError(w http.ResponseWriter, sse bool, e map[string]any) {
	b, _ := json.Marshal(map[string]any{"error": e})
	if sse {
		_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", b)
		return
	}
	_, _ = w.Write(append(b, '\n'))
}

func (m *Method) refuse(x *exchange.Exchange, w http.ResponseWriter, status int, detail string) {
	x.AnsweredBy = exchange.ByGateway
	problem.Error(w, status, detail)
}

// fill sets the request message from the JSON body, then the path's
// parameters, then the query's: a parameter wins over the body.
func (m *Method) fill(msg *dynamicpb.Message, r *http.Request, ps router.Params) error {
	body := ""
	switch {
	case m.body != nil:
		body = *m.body
	case r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodPatch:
		body = "*"
	}
	if body != "" && r.Body != nil {
		b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
		if err != nil {
			return fmt.Errorf("the request body could not be read: %v", err)
		}
		if len(strings.TrimSpace(string(b))) > 0 {
			target := protoreflect.Message(msg)
			if body != "*" {
				target = msg.Mutable(fieldByName(msg.Descriptor(), body)).Message()
			}
			if err := (protojson.UnmarshalOptions{Resolver: m.types}).Unmarshal(b, target.Interface()); err != nil {
				return fmt.Errorf("the JSON body does not fit %s: %v", target.Descriptor().FullName(), cleanJSONError(err))
			}
		}
	}
	if err := setParams(msg, ps); err != nil {
		return err
	}
	for key, values := range r.URL.Query() {
		if err := setField(msg, key, values); err != nil {
			return fmt.Errorf("query parameter %q: %v", key, err)
		}
	}
	return nil
}

// setParams sets the fields the route's path parameters name.
func setParams(msg *dynamicpb.Message, ps router.Params) error {
	for _, p := range ps {
		// A catch-all keeps its slash.
		if err := setField(msg, p.Key, []string{strings.TrimPrefix(p.Value, "/")}); err != nil {
			return fmt.Errorf("path parameter %q: %v", p.Key, err)
		}
	}
	return nil
}

// cleanJSONError drops protojson's "proto: " prefix.
func cleanJSONError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "proto:")
	return strings.TrimSpace(strings.ReplaceAll(s, "\u00a0", " "))
}

// fieldByName finds a field by its proto name or its JSON name.
func fieldByName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	if fd := md.Fields().ByName(protoreflect.Name(name)); fd != nil {
		return fd
	}
	return md.Fields().ByJSONName(name)
}

// fieldPath resolves a dotted name ("change.delta") to its fields; every
// field but the last must be a singular message.
func fieldPath(md protoreflect.MessageDescriptor, name string) ([]protoreflect.FieldDescriptor, error) {
	var path []protoreflect.FieldDescriptor
	parts := strings.Split(name, ".")
	for i, part := range parts {
		fd := fieldByName(md, part)
		if fd == nil {
			return nil, fmt.Errorf("%s has no field %q", md.FullName(), part)
		}
		path = append(path, fd)
		if i < len(parts)-1 {
			if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
				return nil, fmt.Errorf("field %q of %s is not a message", part, md.FullName())
			}
			md = fd.Message()
		}
	}
	if last := path[len(path)-1]; last.IsMap() {
		return nil, fmt.Errorf("field %q is a map; give it in the JSON body", last.Name())
	}
	return path, nil
}

// setField sets the field a dotted name names from parameter values:
// one for a singular field, any number for a repeated one.
func setField(msg *dynamicpb.Message, name string, values []string) error {
	path, err := fieldPath(msg.Descriptor(), name)
	if err != nil {
		return err
	}
	m := protoreflect.Message(msg)
	for _, fd := range path[:len(path)-1] {
		m = m.Mutable(fd).Message()
	}
	fd := path[len(path)-1]
	if !fd.IsList() && len(values) != 1 {
		return fmt.Errorf("field %q takes one value, got %d", fd.Name(), len(values))
	}
	for _, s := range values {
		v, err := parseValue(m, fd, s)
		if err != nil {
			return fmt.Errorf("field %q: %v", fd.Name(), err)
		}
		if fd.IsList() {
			m.Mutable(fd).List().Append(v)
		} else {
			m.Set(fd, v)
		}
	}
	return nil
}

// parseValue reads one parameter as a field's value: numbers, booleans,
// enums by name or number, bytes as base64, and messages as their JSON
// string form (Timestamp, Duration, FieldMask, wrappers).
func parseValue(m protoreflect.Message, fd protoreflect.FieldDescriptor, s string) (protoreflect.Value, error) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString(s), nil
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(s)
		return protoreflect.ValueOfBool(b), err
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(s, 10, 32)
		return protoreflect.ValueOfInt32(int32(n)), err
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		n, err := strconv.ParseInt(s, 10, 64)
		return protoreflect.ValueOfInt64(n), err
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(s, 10, 32)
		return protoreflect.ValueOfUint32(uint32(n)), err
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(s, 10, 64)
		return protoreflect.ValueOfUint64(n), err
	case protoreflect.FloatKind:
		f, err := strconv.ParseFloat(s, 32)
		return protoreflect.ValueOfFloat32(float32(f)), err
	case protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(s, 64)
		return protoreflect.ValueOfFloat64(f), err
	case protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			b, err = base64.URLEncoding.DecodeString(s)
		}
		return protoreflect.ValueOfBytes(b), err
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(s)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || fd.Enum().Values().ByNumber(protoreflect.EnumNumber(n)) == nil {
			return protoreflect.Value{}, fmt.Errorf("%q is not a value of %s", s, fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	case protoreflect.MessageKind:
		var sub protoreflect.Message
		if fd.IsList() {
			sub = m.Mutable(fd).List().NewElement().Message()
		} else {
			sub = m.NewField(fd).Message()
		}
		quoted, _ := json.Marshal(s)
		if err := protojson.Unmarshal(quoted, sub.Interface()); err != nil {
			if err2 := protojson.Unmarshal([]byte(s), sub.Interface()); err2 != nil {
				return protoreflect.Value{}, errors.New(cleanJSONError(err))
			}
		}
		return protoreflect.ValueOfMessage(sub), nil
	}
	return protoreflect.Value{}, fmt.Errorf("a %s field cannot be set from a parameter", fd.Kind())
}

// result is what a call's response held.
type result struct {
	code     code.Code
	message  string // the status message
	details  []byte // google.rpc.Status, when the service sent one
	message1 []byte // the response message (unary: exactly one)
	metadata http.Header
}

// call makes one unary gRPC call: one message sent, one received, and
// the status.
func (m *Method) call(ctx context.Context, x *exchange.Exchange, payload []byte) (*result, error) {
	resp, err := m.send(ctx, x, payload)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	msg, err := readFrame(resp.Body)
	if err != nil && err != io.EOF {
		return nil, brokeOff(ctx, err)
	}
	if err == nil {
		if _, err := readFrame(resp.Body); err != io.EOF {
			if err == nil {
				err = errors.New("a second message for a unary call")
			}
			return nil, brokeOff(ctx, err)
		}
	}
	res, err := callStatus(resp)
	if err != nil {
		return nil, err
	}
	if res.code == code.Code_OK && msg == nil {
		return nil, errors.New("answered OK without a message")
	}
	res.message1 = msg
	return res, nil
}

// send starts a call over HTTP/2: a length-prefixed message (gRPC's
// framing; the message is proto.Marshal's). The response's body holds
// the answer's messages, its trailers (or its head, when the service
// answered with trailers only) the status.
func (m *Method) send(ctx context.Context, x *exchange.Exchange, payload []byte) (*http.Response, error) {
	frame := make([]byte, 5+len(payload))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(payload)))
	copy(frame[5:], payload)
	header := http.Header{}
	if x.RequestID != "" {
		header.Set("X-Request-Id", x.RequestID)
	}
	for _, name := range m.forward {
		for _, v := range x.Request.Header.Values(name) {
			header.Add(name, v)
		}
	}
	return post(ctx, m.up, x, m.path, frame, header)
}

// post sends gRPC framed messages to path with the given metadata, and
// returns the response once it is known to be a gRPC answer. Its errors
// say what the service did ("could not be reached", "did not answer in
// time", which wraps context.DeadlineExceeded).
func post(ctx context.Context, up Upstream, x *exchange.Exchange, path string, frames []byte, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://grpc"+path, bytes.NewReader(frames))
	if err != nil {
		return nil, err
	}
	req.Header = header
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	req.Header.Set("User-Agent", "lintel")
	if deadline, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", grpcTimeout(time.Until(deadline)))
	}
	resp, err := up.Do(x, req)
	if err != nil {
		if timedOut(ctx) {
			return nil, fmt.Errorf("did not answer in time: %w", context.DeadlineExceeded)
		}
		return nil, errors.New("could not be reached")
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("answered HTTP %d, not gRPC", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/grpc") {
		resp.Body.Close()
		return nil, fmt.Errorf("answered %q, not gRPC", ct)
	}
	return resp, nil
}

// readFrame reads one length-prefixed message; io.EOF at the clean end
// of the messages.
func readFrame(r io.Reader) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return nil, errors.New("a message cut short")
		}
		return nil, err // io.EOF: no more messages
	}
	if head[0] != 0 {
		return nil, errors.New("a compressed message, which was not asked for")
	}
	size := binary.BigEndian.Uint32(head[1:])
	if size > maxMessage {
		return nil, fmt.Errorf("a message of %d bytes (at most %d)", size, maxMessage)
	}
	msg := make([]byte, size)
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, errors.New("a message cut short")
	}
	return msg, nil
}

// timedOut reports whether a failed call ended by its deadline: ours has
// passed, or is so near that the service, told it by grpc-timeout, ended
// the call at its own (it resets the stream a moment before our clock
// runs out).
func timedOut(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && time.Until(d) < 20*time.Millisecond
}

func brokeOff(ctx context.Context, err error) error {
	if timedOut(ctx) {
		return fmt.Errorf("did not answer in time: %w", context.DeadlineExceeded)
	}
	return fmt.Errorf("broke off its answer: %v", err)
}

// callStatus reads a finished call's status, once its body has been read.
func callStatus(resp *http.Response) (*result, error) {
	trailer := resp.Trailer
	if resp.Header.Get("Grpc-Status") != "" { // trailers only
		trailer = resp.Header
	}
	res := &result{metadata: metadata(resp.Header, resp.Trailer)}
	n, err := strconv.Atoi(trailer.Get("Grpc-Status"))
	if err != nil {
		return nil, errors.New("answered without a grpc-status")
	}
	res.code = code.Code(n)
	res.message, _ = url.PathUnescape(trailer.Get("Grpc-Message"))
	if d := trailer.Get("Grpc-Status-Details-Bin"); d != "" {
		res.details, _ = base64.RawStdEncoding.DecodeString(strings.TrimRight(d, "="))
	}
	return res, nil
}

// metadata is the service's response metadata, as response headers:
// everything but gRPC's own fields and binary values.
func metadata(heads ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range heads {
		for name, values := range h {
			lower := strings.ToLower(name)
			if strings.HasPrefix(lower, "grpc-") || strings.HasSuffix(lower, "-bin") ||
				lower == "content-type" || lower == "content-length" || lower == "trailer" || lower == "date" {
				continue
			}
			out[name] = append(out[name], values...)
		}
	}
	return out
}

// grpcTimeout writes d as gRPC's timeout header: at most eight digits and
// a unit.
func grpcTimeout(d time.Duration) string {
	d = max(d, time.Microsecond)
	if us := d.Microseconds(); us < 1e8 {
		return strconv.FormatInt(us, 10) + "u"
	}
	if ms := d.Milliseconds(); ms < 1e8 {
		return strconv.FormatInt(ms, 10) + "m"
	}
	return strconv.FormatInt(min(int64(d.Seconds()), 1e8-1), 10) + "S"
}

// details renders google.rpc.Status details as a JSON array, with the
// types the service's protos and the standard error details define.
func (m *Method) details(b []byte) json.RawMessage {
	var st rpcstatus.Status
	if err := proto.Unmarshal(b, &st); err != nil || len(st.Details) == 0 {
		return nil
	}
	out := []byte{'['}
	for i, d := range st.Details {
		j, err := protojson.MarshalOptions{Resolver: m.types}.Marshal(d)
		if err != nil {
			j, _ = json.Marshal(map[string]string{"@type": d.TypeUrl})
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, j...)
	}
	return append(out, ']')
}

// types resolves message types by URL and extensions by name for
// protojson: the service's own protos first, then those linked into the
// gateway (well-known types, the standard error details).
type types struct{ own *dynamicpb.Types }

func newTypes(f *protoregistry.Files) *types { return &types{own: dynamicpb.NewTypes(f)} }

func (t *types) FindMessageByName(name protoreflect.FullName) (protoreflect.MessageType, error) {
	if mt, err := t.own.FindMessageByName(name); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByName(name)
}

func (t *types) FindMessageByURL(url string) (protoreflect.MessageType, error) {
	if mt, err := t.own.FindMessageByURL(url); err == nil {
		return mt, nil
	}
	return protoregistry.GlobalTypes.FindMessageByURL(url)
}

func (t *types) FindExtensionByName(name protoreflect.FullName) (protoreflect.ExtensionType, error) {
	if et, err := t.own.FindExtensionByName(name); err == nil {
		return et, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByName(name)
}

func (t *types) FindExtensionByNumber(message protoreflect.FullName, field protoreflect.FieldNumber) (protoreflect.ExtensionType, error) {
	if et, err := t.own.FindExtensionByNumber(message, field); err == nil {
		return et, nil
	}
	return protoregistry.GlobalTypes.FindExtensionByNumber(message, field)
}
