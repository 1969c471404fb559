package transcode

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	v1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	v1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// reflected keeps the last descriptors each service's reflection gave,
// by service and target: a reload while the service is down keeps
// serving with them instead of failing.
var reflected sync.Map // string -> *Descriptors

// Reflect asks a gRPC server for its services' descriptors through its
// reflection API: grpc.reflection.v1, or v1alpha when the server has
// only that. addr is "host:port"; tlsConfig nil means no TLS. When the
// server cannot answer but an earlier Reflect of the same key succeeded,
// it returns those descriptors and the error, so the caller can warn and
// go on.
func Reflect(ctx context.Context, key, addr string, tlsConfig *tls.Config) (*Descriptors, error) {
	d, err := reflect(ctx, addr, tlsConfig)
	if err == nil {
		reflected.Store(key, d)
		return d, nil
	}
	if last, ok := reflected.Load(key); ok {
		return last.(*Descriptors), err
	}
	return nil, err
}

func reflect(ctx context.Context, addr string, tlsConfig *tls.Config) (*Descriptors, error) {
	creds := insecure.NewCredentials()
	if tlsConfig != nil {
		creds = credentials.NewTLS(tlsConfig)
	}
	// A connection of its own, for reflection only: calls go through the
	// service's transport.
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var s reflectionStream
	if stream, err := v1.NewServerReflectionClient(conn).ServerReflectionInfo(ctx); err == nil {
		s = stream
	} else {
		return nil, fmt.Errorf("reflection from %s: %v", addr, err)
	}
	files, err := collect(s)
	if status.Code(err) == codes.Unimplemented {
		stream, err := v1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
		if err != nil {
			return nil, fmt.Errorf("reflection from %s: %v", addr, err)
		}
		files, err = collect(alphaStream{stream})
		if err != nil {
			return nil, fmt.Errorf("reflection (v1alpha) from %s: %v", addr, err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("reflection from %s: %v", addr, err)
	}
	reg, err := protodesc.NewFiles(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		return nil, fmt.Errorf("reflection from %s: the descriptors do not link: %v", addr, err)
	}
	return &Descriptors{files: reg}, nil
}

// reflectionStream is the v1 stream; alphaStream makes v1alpha's look so.
type reflectionStream interface {
	Send(*v1.ServerReflectionRequest) error
	Recv() (*v1.ServerReflectionResponse, error)
}

// alphaStream speaks v1alpha through v1's types: the two protos are the
// same message for message, field for field.
type alphaStream struct {
	s v1alpha.ServerReflection_ServerReflectionInfoClient
}

func (a alphaStream) Send(req *v1.ServerReflectionRequest) error {
	var out v1alpha.ServerReflectionRequest
	if err := convert(req, &out); err != nil {
		return err
	}
	return a.s.Send(&out)
}

func (a alphaStream) Recv() (*v1.ServerReflectionResponse, error) {
	resp, err := a.s.Recv()
	if err != nil {
		return nil, err
	}
	var out v1.ServerReflectionResponse
	return &out, convert(resp, &out)
}

func convert(from, to proto.Message) error {
	b, err := proto.Marshal(from)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, to)
}

// collect lists the server's services and gathers the files that define
// them and everything they import.
func collect(s reflectionStream) ([]*descriptorpb.FileDescriptorProto, error) {
	ask := func(req *v1.ServerReflectionRequest) (*v1.ServerReflectionResponse, error) {
		if err := s.Send(req); err != nil {
			if err == io.EOF {
				// The server ended the stream (an older server answers
				// v1 with Unimplemented at once): its status says why.
				_, err = s.Recv()
			}
			return nil, err
		}
		resp, err := s.Recv()
		if err != nil {
			return nil, err
		}
		if e := resp.GetErrorResponse(); e != nil {
			return nil, status.Error(codes.Code(e.GetErrorCode()), e.GetErrorMessage())
		}
		return resp, nil
	}
	resp, err := ask(&v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_ListServices{}})
	if err != nil {
		return nil, err
	}
	have := map[string]*descriptorpb.FileDescriptorProto{}
	var order []string
	add := func(resp *v1.ServerReflectionResponse) error {
		for _, b := range resp.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := &descriptorpb.FileDescriptorProto{}
			if err := proto.Unmarshal(b, fd); err != nil {
				return err
			}
			if have[fd.GetName()] == nil {
				have[fd.GetName()] = fd
				order = append(order, fd.GetName())
			}
		}
		return nil
	}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		if strings.HasPrefix(svc.GetName(), "grpc.reflection.") {
			continue
		}
		r, err := ask(&v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc.GetName()}})
		if err != nil {
			return nil, fmt.Errorf("service %s: %v", svc.GetName(), err)
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	if len(order) == 0 {
		return nil, errors.New("the server lists no service")
	}
	// Imports the server did not send: ask for each by name, or take the
	// ones linked into the gateway (well-known types, google.api).
	for i := 0; i < len(order); i++ {
		for _, dep := range have[order[i]].GetDependency() {
			if have[dep] != nil {
				continue
			}
			if fd, err := protoregistry.GlobalFiles.FindFileByPath(dep); err == nil {
				have[dep] = protodesc.ToFileDescriptorProto(fd)
				order = append(order, dep)
				continue
			}
			r, err := ask(&v1.ServerReflectionRequest{MessageRequest: &v1.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
			if err != nil {
				return nil, fmt.Errorf("import %s: %v", dep, err)
			}
			if err := add(r); err != nil {
				return nil, err
			}
			if have[dep] == nil {
				return nil, fmt.Errorf("import %s: not sent", dep)
			}
		}
	}
	files := make([]*descriptorpb.FileDescriptorProto, len(order))
	for i, name := range order {
		files[i] = have[name]
	}
	return files, nil
}
