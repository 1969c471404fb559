package transcode

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Rule is one REST binding a method's google.api.http annotation gives.
type Rule struct {
	Method     string // "package.Service/Method"
	HTTPMethod string // GET, POST, ...
	Path       string // the route's path, in the router's syntax
	Template   string // the annotation's path template, as written
	Body       string // the annotation's body: "*", a field, or ""
}

// Rules returns the bindings of every annotated method of the compiled
// files' services, additional bindings included, in file and declaration
// order. A template the router cannot hold (a parameter over several
// segments but at the end, a verb, a literal inside a variable) is an
// error naming the method and the template.
func (d *Descriptors) Rules() ([]Rule, error) {
	var rules []Rule
	var err error
	d.files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		services := fd.Services()
		for i := range services.Len() {
			methods := services.Get(i).Methods()
			for j := range methods.Len() {
				md := methods.Get(j)
				rule := httpRule(md)
				if rule == nil {
					continue
				}
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					var out Rule
					if out, err = binding(md, r); err != nil {
						return false
					}
					rules = append(rules, out)
				}
			}
		}
		return true
	})
	return rules, err
}

// httpRule reads a method's google.api.http option. Options compiled
// from source hold it as unknown bytes or a dynamic message, so the
// options go through their wire form to the generated type.
func httpRule(md protoreflect.MethodDescriptor) *annotations.HttpRule {
	opts, ok := md.Options().(*descriptorpb.MethodOptions)
	if !ok || opts == nil {
		return nil
	}
	b, err := proto.Marshal(opts)
	if err != nil {
		return nil
	}
	typed := &descriptorpb.MethodOptions{}
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(b, typed); err != nil {
		return nil
	}
	rule, _ := proto.GetExtension(typed, annotations.E_Http).(*annotations.HttpRule)
	if rule == nil || rule.GetPattern() == nil {
		return nil
	}
	return rule
}

// binding turns one HttpRule into a Rule.
func binding(md protoreflect.MethodDescriptor, r *annotations.HttpRule) (Rule, error) {
	full := string(md.Parent().FullName()) + "/" + string(md.Name())
	out := Rule{Method: full, Body: r.GetBody()}
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		out.HTTPMethod, out.Template = http.MethodGet, p.Get
	case *annotations.HttpRule_Put:
		out.HTTPMethod, out.Template = http.MethodPut, p.Put
	case *annotations.HttpRule_Post:
		out.HTTPMethod, out.Template = http.MethodPost, p.Post
	case *annotations.HttpRule_Delete:
		out.HTTPMethod, out.Template = http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		out.HTTPMethod, out.Template = http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		out.HTTPMethod, out.Template = p.Custom.GetKind(), p.Custom.GetPath()
	}
	if r.GetResponseBody() != "" {
		return out, fmt.Errorf("%s: response_body is not supported yet (the whole response message is answered)", full)
	}
	path, err := routerPath(out.Template)
	if err != nil {
		return out, fmt.Errorf("%s: path template %q: %v", full, out.Template, err)
	}
	out.Path = path
	return out, nil
}

// routerPath translates a path template (google/api/http.proto) into the
// router's syntax: "{field}" and "{field=*}" become ":field", a last
// "{field=**}" becomes "*field". Anything else has no router equivalent.
func routerPath(tpl string) (string, error) {
	if !strings.HasPrefix(tpl, "/") {
		return "", fmt.Errorf("must begin with '/'")
	}
	if i := strings.LastIndexByte(tpl, ':'); i > strings.LastIndexByte(tpl, '}') && i > strings.LastIndexByte(tpl, '/') {
		return "", fmt.Errorf("a custom verb (%q) has no route equivalent", tpl[i:])
	}
	segs := segments(tpl[1:])
	out := make([]string, len(segs))
	for i, seg := range segs {
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			field, pattern, _ := strings.Cut(seg[1:len(seg)-1], "=")
			switch {
			case pattern == "" || pattern == "*":
				out[i] = ":" + field
			case pattern == "**" && i == len(segs)-1:
				out[i] = "*" + field
			default:
				return "", fmt.Errorf("variable %q spans a pattern (%q) the router cannot match; only {field}, {field=*} and a last {field=**} can", field, pattern)
			}
		case strings.ContainsAny(seg, "{}*"):
			return "", fmt.Errorf("segment %q: wildcards outside a variable have no route equivalent", seg)
		default:
			out[i] = seg
		}
	}
	return "/" + strings.Join(out, "/"), nil
}

// segments splits a template at the slashes outside its variables.
func segments(path string) []string {
	var segs []string
	start, depth := 0, 0
	for i := range len(path) {
		switch path[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				segs = append(segs, path[start:i])
				start = i + 1
			}
		}
	}
	return append(segs, path[start:])
}
