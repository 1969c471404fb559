package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
		out = strconv.AppendQuote(out, name)
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
// else, or invalid JSON, is an error.
func objectFields(data []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("body is not JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("body is not a JSON object")
	}
	var fields []field
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("body is not JSON")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("body is not JSON")
		}
		fields = append(fields, field{tok.(string), v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("body is not JSON")
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("body is not JSON: data after the object")
	}
	return fields, nil
}
