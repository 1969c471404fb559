// Package transcode serves REST and JSON requests with unary gRPC calls:
// a route's path and query parameters and its JSON body become the
// method's request message, the response message becomes JSON, and a gRPC
// status becomes an HTTP status with a problem body.
//
// Descriptors come from .proto files compiled at load, in pure Go (no
// protoc). Calls go through the service's own transport (proxy.Service:
// its balancing, health and retry, HTTP/2), framed as gRPC over HTTP/2;
// protobuf encoding is google.golang.org/protobuf's.
package transcode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The google.api and google.rpc files a .proto may import
	// (annotations, http, status), found in protoregistry.GlobalFiles.
	_ "google.golang.org/genproto/googleapis/api/annotations"
	_ "google.golang.org/genproto/googleapis/rpc/status"
)

// Descriptors are the files of one grpc service, compiled.
type Descriptors struct {
	files *protoregistry.Files
}

// Compile compiles .proto files (absolute paths). Imports resolve
// against importPaths, then each file's own directory, then the
// well-known types and the google.api and google.rpc files linked into
// the gateway. An error names the file, line and column.
func Compile(ctx context.Context, protos, importPaths []string) (*Descriptors, error) {
	paths := append([]string(nil), importPaths...)
	var names []string
	for _, p := range protos {
		name, dir := "", ""
		for _, ip := range importPaths {
			if rel, err := filepath.Rel(ip, p); err == nil && !strings.HasPrefix(rel, "..") {
				name, dir = filepath.ToSlash(rel), ip
				break
			}
		}
		if name == "" {
			name, dir = filepath.Base(p), filepath.Dir(p)
			paths = append(paths, dir)
		}
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%s not found", p)
			}
			return nil, err
		}
		names = append(names, name)
	}
	source := &protocompile.SourceResolver{ImportPaths: paths}
	linked := protocompile.ResolverFunc(func(path string) (protocompile.SearchResult, error) {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(path)
		if err != nil {
			return protocompile.SearchResult{}, err
		}
		return protocompile.SearchResult{Desc: fd}, nil
	})
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(protocompile.CompositeResolver{source, linked}),
	}
	compiled, err := c.Compile(ctx, names...)
	if err != nil {
		return nil, err
	}
	files := new(protoregistry.Files)
	var register func(fd protoreflect.FileDescriptor) error
	register = func(fd protoreflect.FileDescriptor) error {
		if _, err := files.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		imports := fd.Imports()
		for i := range imports.Len() {
			if err := register(imports.Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return files.RegisterFile(fd)
	}
	for _, f := range compiled {
		if err := register(f); err != nil {
			return nil, err
		}
	}
	return &Descriptors{files: files}, nil
}

// LoadSet reads a FileDescriptorSet (protoc --descriptor_set_out, buf
// build -o). Imports missing from the set are taken from those linked
// into the gateway (well-known types, google/api, google/rpc).
func LoadSet(path string) (*Descriptors, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s not found", path)
		}
		return nil, err
	}
	set := &descriptorpb.FileDescriptorSet{}
	if err := proto.Unmarshal(b, set); err != nil {
		return nil, fmt.Errorf("%s is not a FileDescriptorSet: %v", path, err)
	}
	have := map[string]bool{}
	for _, f := range set.File {
		have[f.GetName()] = true
	}
	for i := 0; i < len(set.File); i++ {
		for _, dep := range set.File[i].GetDependency() {
			if have[dep] {
				continue
			}
			fd, err := protoregistry.GlobalFiles.FindFileByPath(dep)
			if err != nil {
				return nil, fmt.Errorf("%s: import %s is not in the set (build it with --include_imports)", path, dep)
			}
			have[dep] = true
			set.File = append(set.File, protodesc.ToFileDescriptorProto(fd))
		}
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return &Descriptors{files: files}, nil
}

// Files are the compiled files, for a reflection server, say.
func (d *Descriptors) Files() *protoregistry.Files { return d.files }

// Method finds a method by its full name, "package.Service/Method".
func (d *Descriptors) Method(full string) (protoreflect.MethodDescriptor, error) {
	svc, name, ok := strings.Cut(full, "/")
	if !ok {
		return nil, fmt.Errorf("%q is not \"package.Service/Method\"", full)
	}
	desc, err := d.files.FindDescriptorByName(protoreflect.FullName(svc))
	if err != nil {
		return nil, fmt.Errorf("no service %q in the service's protos", svc)
	}
	sd, ok := desc.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("%q is a %T, not a service", svc, desc)
	}
	md := sd.Methods().ByName(protoreflect.Name(name))
	if md == nil {
		var known []string
		for i := range sd.Methods().Len() {
			known = append(known, string(sd.Methods().Get(i).Name()))
		}
		return nil, fmt.Errorf("service %q has no method %q (it has %s)", svc, name, strings.Join(known, ", "))
	}
	return md, nil
}
