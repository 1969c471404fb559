package aggregate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Shape trims a part's body before the merge: Take lifts one field out;
// Allow keeps, Deny drops and Rename renames top-level fields of an
// object. Field order is kept as the upstream sent it. The zero Shape
// passes any valid JSON through unchanged.
type Shape struct {
	Take   []string // path of the field to lift, e.g. ["stock", "count"]
	Allow  map[string]bool
	Deny   map[string]bool
	Rename map[string]string
}

// NewShape builds a Shape from the config's lists.
func NewShape(take string, allow, deny []string, rename map[string]string) Shape {
	var s Shape
	if take != "" {
		s.Take = strings.Split(take, ".")
	}
	s.Allow = set(allow)
	s.Deny = set(deny)
	if len(rename) > 0 {
		s.Rename = rename
	}
	return s
}

func set(list []string) map[string]bool {
	if len(list) == 0 {
		return nil
	}
	m := make(map[string]bool, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

// Apply returns the shaped body, or an error when body is not JSON or
// lacks what the shape needs.
func (s *Shape) Apply(body []byte) ([]byte, error) {
	if len(s.Take) == 0 && s.Allow == nil && s.Deny == nil && s.Rename == nil {
		if !json.Valid(body) {
			return nil, errors.New("body is not JSON")
		}
		return body, nil
	}
	if len(s.Take) > 0 {
		v := json.RawMessage(body)
		for i, name := range s.Take {
			fields, err := objectFields(v)
			if err != nil {
				return nil, fmt.Errorf("take %q: %w", strings.Join(s.Take[:i+1], "."), err)
			}
			found := false
			for _, f := range fields {
				if f.name == name {
					v, found = f.value, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("take %q: no such field", strings.Join(s.Take[:i+1], "."))
			}
		}
		return v, nil
	}
	fields, err := objectFields(body)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(body))
	out = append(out, '{')
	n := 0
	for _, f := range fields {
		if s.Allow != nil && !s.Allow[f.name] || s.Deny[f.name] {
			continue
		}
		name := f.name
		if to, ok := s.Rename[name]; ok {
			name = to
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendJSONString(out, name)
		out = append(out, ':')
		out = append(out, f.value...)
	}
	return append(out, '}'), nil
}

type field struct {
	name  string
	value json.RawMessage
}

// objectFields splits a JSON object into its fields, in order. Anything
// else, or invalid JSON, is an error. The document is validated first, so
// the split itself only has to find where strings and values end.
func objectFields(data []byte) ([]field, error) {
	if !json.Valid(data) {
		return nil, errors.New("body is not JSON")
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, errors.New("body is not a JSON object")
	}
	fields := make([]field, 0, 8)
	for i = skipSpace(data, i+1); data[i] != '}'; i = skipSpace(data, i+1) {
		end := stringEnd(data, i)
		name := string(data[i+1 : end-1])
		if needsDecoding(data[i:end]) {
			if err := json.Unmarshal(data[i:end], &name); err != nil {
				return nil, err
			}
		}
		start := skipSpace(data, skipSpace(data, end)+1) // past ':'
		stop := valueEnd(data, start)
		fields = append(fields, field{name, data[start:stop]})
		i = skipSpace(data, stop)
		if data[i] == '}' {
			break
		}
	}
	return fields, nil
}

// needsDecoding reports whether a JSON string holds escapes or non-ASCII
// bytes, which encoding/json must decode (invalid UTF-8 becomes U+FFFD).
func needsDecoding(quoted []byte) bool {
	for _, c := range quoted {
		if c == '\\' || c >= 0x80 {
			return true
		}
	}
	return false
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at i.
func stringEnd(data []byte, i int) int {
	for i++; data[i] != '"'; i++ {
		if data[i] == '\\' {
			i++
		}
	}
	return i + 1
}

// valueEnd returns the index just past the value that starts at i.
func valueEnd(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			i = stringEnd(data, i) - 1
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		case ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		if depth == 0 && (data[i] == '}' || data[i] == ']' || data[i] == '"') {
			return i + 1
		}
	}
	return i
}
