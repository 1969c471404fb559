package aggregate

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestShapeApply(t *testing.T) {
	body := `{"name":"Laptop","price":999,"meta":{"cost":612,"tags":["a"]},"esc\"aped":1}`
	tests := []struct {
		name  string
		shape Shape
		in    string
		want  string // "" when an error is expected
	}{
		{"pass-through", NewShape("", nil, nil, nil), body, body},
		{"pass-through array", NewShape("", nil, nil, nil), `[1,2]`, `[1,2]`},
		{"take", NewShape("price", nil, nil, nil), body, `999`},
		{"take nested", NewShape("meta.tags", nil, nil, nil), body, `["a"]`},
		{"take missing", NewShape("nope", nil, nil, nil), body, ""},
		{"take through a non-object", NewShape("price.x", nil, nil, nil), body, ""},
		{"allow", NewShape("", []string{"price", "name"}, nil, nil), body, `{"name":"Laptop","price":999}`},
		{"deny", NewShape("", nil, []string{"meta", "esc\"aped"}, nil), body, `{"name":"Laptop","price":999}`},
		{"rename", NewShape("", []string{"name"}, nil, map[string]string{"name": "title"}), body, `{"title":"Laptop"}`},
		{"rename escapes", NewShape("", []string{"name"}, nil, map[string]string{"name": "a\"b"}), body, `{"a\"b":"Laptop"}`},
		{"not JSON", NewShape("", nil, nil, nil), `<html>`, ""},
		{"trailing garbage", NewShape("", []string{"a"}, nil, nil), `{"a":1} {"b":2}`, ""},
		{"not an object", NewShape("", []string{"a"}, nil, nil), `[{"a":1}]`, ""},
		{"empty", NewShape("", nil, nil, nil), ``, ""},
	}
	for _, tt := range tests {
		got, err := tt.shape.Apply([]byte(tt.in))
		if tt.want == "" {
			if err == nil {
				t.Errorf("%s: Apply(%s) = %s, want an error", tt.name, tt.in, got)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%s: Apply(%s) = %s, %v; want %s", tt.name, tt.in, got, err, tt.want)
		}
	}
}

func TestMerge(t *testing.T) {
	parts := []*Part{{Key: "product"}, {Key: "stock"}, {Key: "re\"views"}}
	results := []result{{body: []byte(`{"a":1}`)}, {body: []byte(`42`)}, {err: errors.New("down")}}
	if got := string(merge(parts, results)); got != `{"product":{"a":1},"stock":42,"re\"views":null}` {
		t.Errorf("merge = %s", got)
	}
}

func BenchmarkMerge(b *testing.B) {
	parts := []*Part{{Key: "product"}, {Key: "stock"}, {Key: "reviews"}}
	product := []byte(`{"id":"123","name":"Laptop","price":999,"currency":"EUR","description":"` + strings.Repeat("x", 200) + `"}`)
	results := []result{{body: product}, {body: []byte(`42`)}, {body: []byte(`[{"user":"Nhon","rating":5},{"user":"Ada","rating":4}]`)}}
	b.ReportAllocs()
	for b.Loop() {
		merge(parts, results)
	}
}

func BenchmarkShape(b *testing.B) {
	body := []byte(`{"id":"123","name":"Laptop","price":999,"currency":"EUR","description":"` + strings.Repeat("x", 200) + `","images":["a","b"]}`)
	for _, c := range []struct {
		name  string
		shape Shape
	}{
		{"validate", NewShape("", nil, nil, nil)},
		{"take", NewShape("price", nil, nil, nil)},
		{"allow", NewShape("", []string{"id", "name", "price", "currency"}, nil, nil)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.shape.Apply(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzObjectFields: the fast field splitter never panics and agrees with
// encoding/json on every field of every valid object.
func FuzzObjectFields(f *testing.F) {
	for _, s := range []string{`{"a":1,"b":[1,{"c":"}"}],"d":"x\"y","e\u0041":null}`, `{}`, ` { "a" : true } `, `[1]`, `{"a":{"b":{}}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := objectFields([]byte(s))
		var want map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &want) != nil {
			if err == nil {
				t.Fatalf("objectFields accepted %q", s)
			}
			return
		}
		if err != nil {
			t.Fatalf("objectFields(%q): %v", s, err)
		}
		got := map[string]json.RawMessage{}
		for _, fl := range fields {
			got[fl.name] = fl.value
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d fields, want %d", s, len(got), len(want))
		}
		for k, v := range want {
			if !bytes.Equal(bytes.TrimSpace(got[k]), bytes.TrimSpace(v)) {
				t.Fatalf("%q: field %q = %s, want %s", s, k, got[k], v)
			}
		}
	})
}
