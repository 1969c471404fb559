// Package grpcinventory is a real gRPC server for tests and the demo: the
// inventory service of testdata/grpc/inventory.proto, served with
// google.golang.org/grpc from the descriptors the gateway compiles (no
// generated code).
//
// Products: "123" (a laptop, 7 in stock, 2 reserved). GetProduct answers
// NOT_FOUND with a ResourceInfo detail for any other id; AdjustStock
// answers FAILED_PRECONDITION when stock would go below zero; WatchStock
// streams the product three times, stock counting down, and for id "124"
// once, then ABORTED. Id "slow" waits for the call's deadline. Every answer carries the header
// metadata x-served-by: inventory-grpc, and x-saw-authorization: yes when
// the call carried an authorization value.
package grpcinventory

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/lintelhq/lintel/core/transcode"
)

// Proto is the path of the service's .proto file.
func Proto() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "../../testdata/grpc/inventory.proto")
}

// Server is a running inventory service.
type Server struct {
	Addr string
	srv  *grpc.Server

	any bool

	mu       sync.Mutex
	stock    int32
	calls    []string // full method names, in order
	last     metadata.MD
	deadline time.Duration // what the last "slow" call had left; -1 none
}

// Options shape a Server.
type Options struct {
	// Addr to listen on; default a free loopback port.
	Addr string
	// Proto is the service's .proto file; default Proto().
	Proto string
	// Stock is the stock a product starts with; default 7.
	Stock int32
	// AnyProduct answers every id as a product (the demo); by default
	// only "123" exists.
	AnyProduct bool
	// Reflection serves the reflection API: "v1" (with v1alpha too),
	// "v1alpha" (only the older one), or "" (none).
	Reflection string
}

// services is what reflection lists: the inventory.
type services struct{}

func (services) GetServiceInfo() map[string]grpc.ServiceInfo {
	return map[string]grpc.ServiceInfo{"lintel.demo.inventory.v1.Inventory": {}}
}

// Start serves the inventory (HTTP/2 without TLS).
func Start(o Options) (*Server, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.Proto == "" {
		o.Proto = Proto()
	}
	if o.Stock == 0 {
		o.Stock = 7
	}
	d, err := transcode.Compile(context.Background(), []string{o.Proto}, nil)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: l.Addr().String(), stock: o.Stock, any: o.AnyProduct}
	s.srv = grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		full, _ := grpc.MethodFromServerStream(stream)
		md, err := d.Method(strings.TrimPrefix(full, "/"))
		if err != nil {
			return status.Error(codes.Unimplemented, err.Error())
		}
		return s.serve(stream, full, md, d)
	}))
	ro := reflection.ServerOptions{Services: services{}, DescriptorResolver: d.Files()}
	switch o.Reflection {
	case "v1":
		reflectionv1.RegisterServerReflectionServer(s.srv, reflection.NewServerV1(ro))
		fallthrough
	case "v1alpha":
		reflectionv1alpha.RegisterServerReflectionServer(s.srv, reflection.NewServer(ro))
	}
	go s.srv.Serve(l)
	return s, nil
}

// Serve starts a server for a test, stopped when the test ends.
func Serve(tb testing.TB, o Options) *Server {
	tb.Helper()
	s, err := Start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Stop stops the server.
func (s *Server) Stop() { s.srv.Stop() }

// Calls returns the methods called so far.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// SlowDeadline is the time the last call for id "slow" had left when it
// arrived (from its grpc-timeout); -1 when it had no deadline.
func (s *Server) SlowDeadline() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// LastMetadata is the metadata of the last call.
func (s *Server) LastMetadata() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last.Copy()
}

func (s *Server) serve(stream grpc.ServerStream, full string, md protoreflect.MethodDescriptor, d *transcode.Descriptors) error {
	in := dynamicpb.NewMessage(md.Input())
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	meta, _ := metadata.FromIncomingContext(stream.Context())
	s.mu.Lock()
	s.calls = append(s.calls, full)
	s.last = meta
	s.mu.Unlock()
	header := metadata.Pairs("x-served-by", "inventory-grpc")
	if len(meta.Get("authorization")) > 0 {
		header.Append("x-saw-authorization", "yes")
	}
	if err := stream.SetHeader(header); err != nil {
		return err
	}
	field := func(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
		return m.Descriptor().Fields().ByName(protoreflect.Name(name))
	}
	id := in.Get(field(in, "id")).String()
	if id == "slow" { // answers only when the call's deadline has passed
		deadline, ok := stream.Context().Deadline()
		s.mu.Lock()
		s.deadline = time.Until(deadline)
		if !ok {
			s.deadline = -1
		}
		s.mu.Unlock()
		select {
		case <-stream.Context().Done():
			return status.FromContextError(stream.Context().Err()).Err()
		case <-time.After(5 * time.Second):
			return status.Error(codes.Internal, "no deadline came")
		}
	}
	interrupted := md.IsStreamingServer() && id == "124"
	if id != "123" && !s.any && !interrupted {
		st, _ := status.New(codes.NotFound, "no product "+id).WithDetails(&errdetails.ResourceInfo{ResourceType: "product", ResourceName: id})
		return st.Err()
	}
	s.mu.Lock()
	if strings.HasSuffix(full, "/AdjustStock") {
		change := in.Get(field(in, "change")).Message()
		delta := int32(change.Get(field(change, "delta")).Int())
		if s.stock+delta < 0 {
			s.mu.Unlock()
			return status.Errorf(codes.FailedPrecondition, "only %d in stock", s.stock)
		}
		s.stock += delta
	}
	stock := s.stock
	s.mu.Unlock()

	out := dynamicpb.NewMessage(md.Output())
	out.Set(field(out, "id"), protoreflect.ValueOfString(id))
	out.Set(field(out, "name"), protoreflect.ValueOfString("Laptop"))
	out.Set(field(out, "stock"), protoreflect.ValueOfInt32(stock))
	if fd := field(in, "include_reserved"); fd != nil && in.Get(fd).Bool() {
		out.Set(field(out, "reserved"), protoreflect.ValueOfInt64(2))
	}
	out.Set(field(out, "availability"), protoreflect.ValueOfEnum(1))
	out.Set(field(out, "warehouse_id"), protoreflect.ValueOfString("eu-west"))
	ts := timestamppb.New(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	updated := out.Mutable(field(out, "updated")).Message()
	updated.Set(updated.Descriptor().Fields().ByName("seconds"), protoreflect.ValueOfInt64(ts.Seconds))
	tags := out.Mutable(field(out, "tags")).List()
	tags.Append(protoreflect.ValueOfString("computers"))
	tags.Append(protoreflect.ValueOfString("14-inch"))
	if !md.IsStreamingServer() {
		return stream.SendMsg(out)
	}
	for i := range int32(3) {
		out.Set(field(out, "stock"), protoreflect.ValueOfInt32(stock-i))
		if err := stream.SendMsg(out); err != nil {
			return err
		}
		if interrupted {
			return status.Error(codes.Aborted, "the stock feed was interrupted")
		}
	}
	return nil
}

// Client calls the inventory with grpc-go, as a gRPC client of the
// gateway would.
type Client struct {
	conn *grpc.ClientConn
	d    *transcode.Descriptors
}

// Dial connects to addr (HTTP/2 without TLS); the connection closes when
// the test ends.
func Dial(tb testing.TB, addr string) *Client {
	tb.Helper()
	d, err := transcode.Compile(context.Background(), []string{Proto()}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &Client{conn: conn, d: d}
}

// GetProduct calls GetProduct and returns the product as protojson's
// map, with the header metadata.
func (c *Client) GetProduct(id string) (map[string]any, metadata.MD, error) {
	return c.Call("GetProduct", id)
}

// Call calls a method of the inventory with a request that has id set
// (WatchStock, a streaming method, is called as if unary).
func (c *Client) Call(method, id string) (map[string]any, metadata.MD, error) {
	sd, err := c.d.Method("lintel.demo.inventory.v1.Inventory/GetProduct")
	if err != nil {
		return nil, nil, err
	}
	md := sd.Parent().(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
	in := dynamicpb.NewMessage(md.Input())
	in.Set(md.Input().Fields().ByName("id"), protoreflect.ValueOfString(id))
	out := dynamicpb.NewMessage(md.Output())
	var header metadata.MD
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Invoke(ctx, "/lintel.demo.inventory.v1.Inventory/"+method, in, out, grpc.Header(&header)); err != nil {
		return nil, header, err
	}
	b, err := protojson.Marshal(out)
	if err != nil {
		return nil, header, err
	}
	var m map[string]any
	err = json.Unmarshal(b, &m)
	return m, header, err
}
