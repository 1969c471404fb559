package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/lintelhq/lintel/core/router"
)

// Request is what a part sends: a path (with an optional query after '?')
// and headers, templates of {param} from the route's path and, for a part
// that chains, {KEY.FIELD} from the JSON answer of the part named KEY
// ("{product.seller_id}", nested fields dotted). A part that refers to
// others waits for them; the others still run in parallel.
//
// Values from other parts are escaped where they land: as one path
// segment ("/" becomes %2F; "", "." and ".." are refused, so a value
// cannot climb the path), as a query value, or as a header value (CR, LF
// and other control bytes refused). Numbers are kept as the answer wrote
// them.
type Request struct {
	path, query []piece
	headers     []headerTemplate
	// Needs are the indexes of the parts this one waits for.
	Needs []int
}

// HeaderError is a part's header template that does not compile.
type HeaderError struct {
	Name string
	Err  error
}

func (e *HeaderError) Error() string { return e.Err.Error() }

type headerTemplate struct {
	name  string
	value []piece
}

// piece is a literal, a route param or a reference to another part.
type piece struct {
	lit   string
	param string
	ref   *ref
}

type ref struct {
	part  int      // index of the part referred to
	key   string   // its key, for errors
	field []string // the field's path in its answer
}

// ParseRequest compiles a part's path and headers against the route's
// pattern and the keys of the aggregate's parts (self is this part's
// index).
func ParseRequest(p string, headers map[string]string, pattern string, keys []string, self int) (*Request, error) {
	r := &Request{}
	pathTpl, queryTpl, _ := strings.Cut(p, "?")
	var err error
	if r.path, err = r.parse(pathTpl, pattern, keys, self); err != nil {
		return nil, err
	}
	if r.query, err = r.parse(queryTpl, pattern, keys, self); err != nil {
		return nil, err
	}
	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, err := r.parse(headers[name], pattern, keys, self)
		if err != nil {
			return nil, &HeaderError{Name: name, Err: err}
		}
		r.headers = append(r.headers, headerTemplate{http.CanonicalHeaderKey(name), v})
	}
	return r, nil
}

func (r *Request) parse(t, pattern string, keys []string, self int) ([]piece, error) {
	params := router.PatternParams(pattern)
	var out []piece
	for s := t; s != ""; {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf("unmatched '}' in %q", t)
			}
			out = append(out, piece{lit: s})
			break
		}
		if i > 0 {
			out = append(out, piece{lit: s[:i]})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated '{' in %q", t)
		}
		name := s[i+1 : i+end]
		s = s[i+end+1:]
		key, field, chained := strings.Cut(name, ".")
		if !chained {
			if !slices.Contains(params, name) {
				return nil, fmt.Errorf("{%s} is not a param of path %q (it has: %s) nor a part's field ({KEY.FIELD})", name, pattern, strings.Join(params, ", "))
			}
			out = append(out, piece{param: name})
			continue
		}
		j := slices.Index(keys, key)
		switch {
		case j < 0:
			return nil, fmt.Errorf("{%s} names no part of this aggregate (parts: %s)", name, strings.Join(keys, ", "))
		case field == "" || slices.Contains(strings.Split(field, "."), ""):
			return nil, fmt.Errorf("{%s}: name a field of part %q", name, key)
		}
		if !slices.Contains(r.Needs, j) {
			r.Needs = append(r.Needs, j) // itself too: a cycle Link reports
		}
		out = append(out, piece{ref: &ref{part: j, key: key, field: strings.Split(field, ".")}})
	}
	return out, nil
}

// Link refuses parts that wait on each other in a cycle, naming it.
func Link(parts []*Part) error {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]int, len(parts))
	var stack []int
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case done:
			return nil
		case visiting:
			at := slices.Index(stack, i)
			var names []string
			for _, j := range append(stack[at:], i) {
				names = append(names, parts[j].Key)
			}
			return fmt.Errorf("parts wait on each other in a cycle: %s", strings.Join(names, " -> "))
		}
		state[i] = visiting
		stack = append(stack, i)
		if r := parts[i].Request; r != nil {
			for _, n := range r.Needs {
				if err := visit(n); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[i] = done
		return nil
	}
	for i := range parts {
		if err := visit(i); err != nil {
			return err
		}
	}
	return nil
}

// build expands the request for route params ps and the answers of the
// parts it needs (results, complete for those). It returns the decoded
// path, its escaping (RawPath; "" when it is the default), the encoded
// query and the headers.
func (r *Request) build(ps router.Params, results []result) (p, raw, query string, h http.Header, err error) {
	var answers map[int]any // each needed part's answer, decoded once
	value := func(rf *ref) (string, error) {
		if answers == nil {
			answers = make(map[int]any, len(r.Needs))
		}
		doc, ok := answers[rf.part]
		if !ok {
			doc = decode(results[rf.part].raw)
			answers[rf.part] = doc
		}
		v, err := fieldValue(doc, rf.field)
		if err != nil {
			return "", fmt.Errorf("{%s.%s}: %w", rf.key, strings.Join(rf.field, "."), err)
		}
		return v, nil
	}

	// Values from answers are whole segments, escaped in RawPath; such a
	// path is not cleaned (cleaning would read an escaped "/" as a step).
	chained := slices.ContainsFunc(r.path, func(pc piece) bool { return pc.ref != nil })
	var dec, enc strings.Builder
	for _, pc := range r.path {
		switch {
		case pc.ref != nil:
			v, err := value(pc.ref)
			if err != nil {
				return "", "", "", nil, err
			}
			if v == "" || v == "." || v == ".." {
				return "", "", "", nil, fmt.Errorf("{%s.%s} is %q, which cannot be a path segment", pc.ref.key, strings.Join(pc.ref.field, "."), v)
			}
			dec.WriteString(v)
			enc.WriteString(url.PathEscape(v))
		case pc.param != "":
			v := strings.TrimPrefix(ps.Get(pc.param), "/")
			dec.WriteString(v)
			if chained {
				enc.WriteString((&url.URL{Path: v}).EscapedPath())
			}
		default:
			dec.WriteString(pc.lit)
			if chained {
				enc.WriteString((&url.URL{Path: pc.lit}).EscapedPath())
			}
		}
	}
	p = dec.String()
	if chained {
		raw = enc.String()
	} else {
		trailing := strings.HasSuffix(p, "/")
		p = path.Clean("/" + p)
		if trailing && p != "/" {
			p += "/"
		}
	}

	if query, err = render(r.query, ps, value, url.QueryEscape); err != nil {
		return "", "", "", nil, err
	}
	if len(r.headers) > 0 {
		h = make(http.Header, len(r.headers))
	}
	for _, ht := range r.headers {
		v, err := render(ht.value, ps, value, func(s string) string { return s })
		if err != nil {
			return "", "", "", nil, err
		}
		if !httpguts.ValidHeaderFieldValue(v) {
			return "", "", "", nil, fmt.Errorf("header %s: the value holds control characters (CR, LF, ...)", ht.name)
		}
		h[ht.name] = []string{v}
	}
	return p, raw, query, h, nil
}

// render writes pieces with their values escaped by escape (literals as
// written).
func render(pieces []piece, ps router.Params, value func(*ref) (string, error), escape func(string) string) (string, error) {
	var b strings.Builder
	for _, pc := range pieces {
		switch {
		case pc.ref != nil:
			v, err := value(pc.ref)
			if err != nil {
				return "", err
			}
			b.WriteString(escape(v))
		case pc.param != "":
			b.WriteString(escape(strings.TrimPrefix(ps.Get(pc.param), "/")))
		default:
			b.WriteString(pc.lit)
		}
	}
	return b.String(), nil
}

var errNotAValue = errors.New("is missing, or is not a string, number or boolean")

// decode reads a part's JSON answer, numbers kept as written; nil when it
// is not JSON (its fields are then missing).
func decode(body []byte) any {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return nil
	}
	return v
}

// fieldValue reads a field of a decoded answer as text: a string as it
// is, a number as it was written, a boolean as true or false.
func fieldValue(v any, field []string) (string, error) {
	for _, f := range field {
		m, ok := v.(map[string]any)
		if !ok {
			return "", errNotAValue
		}
		if v, ok = m[f]; !ok {
			return "", errNotAValue
		}
	}
	switch t := v.(type) {
	case string:
		return t, nil
	case json.Number:
		return t.String(), nil
	case bool:
		if t {
			return "true", nil
		}
		return "false", nil
	}
	return "", errNotAValue
}
