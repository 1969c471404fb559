package router

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Template is an upstream path with {name} placeholders for the params of
// a route pattern: "/orders/{rest}", "/internal/catalog/{id}".
//
// A catch-all param is substituted without its leading slash, so
// "/api/*rest" with rewrite "/v2/{rest}" sends "/api/a/b" to "/v2/a/b".
// The result is cleaned like a request path (see Normalize), so a
// template cannot produce "//" or climb with "..".
type Template struct {
	parts []tplPart
}

type tplPart struct {
	lit   string
	param string // when non-empty, substitute this param
}

// ParseTemplate compiles t against the route pattern it will be expanded
// with. A placeholder that names no param of pattern is an error.
func ParseTemplate(t, pattern string) (*Template, error) {
	params := PatternParams(pattern)
	tpl := &Template{}
	for s := t; s != ""; {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf("unmatched '}' in %q", t)
			}
			tpl.parts = append(tpl.parts, tplPart{lit: s})
			break
		}
		if i > 0 {
			tpl.parts = append(tpl.parts, tplPart{lit: s[:i]})
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("unterminated '{' in %q", t)
		}
		name := s[i+1 : i+end]
		if !slices.Contains(params, name) {
			return nil, fmt.Errorf("{%s} is not a param of path %q (it has: %s)", name, pattern, strings.Join(params, ", "))
		}
		tpl.parts = append(tpl.parts, tplPart{param: name})
		s = s[i+end+1:]
	}
	return tpl, nil
}

// PatternParams lists the param names of an httprouter pattern.
func PatternParams(pattern string) []string {
	var names []string
	for _, seg := range strings.Split(pattern, "/") {
		if len(seg) > 1 && (seg[0] == ':' || seg[0] == '*') {
			names = append(names, seg[1:])
		}
	}
	return names
}

// Expand substitutes ps into the template and returns a clean, decoded
// path (the caller's URL type encodes it).
func (t *Template) Expand(ps Params) string {
	var b strings.Builder
	for _, p := range t.parts {
		if p.param == "" {
			b.WriteString(p.lit)
			continue
		}
		b.WriteString(strings.TrimPrefix(ps.Get(p.param), "/"))
	}
	out := b.String()
	trailing := strings.HasSuffix(out, "/")
	out = path.Clean("/" + out)
	if trailing && out != "/" {
		out += "/"
	}
	return out
}
