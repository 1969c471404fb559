// Package schematest keeps a bundled plugin's schema.json and its Config
// struct in step: every key the struct decodes is declared, and every key
// declared is decoded, at every level of nesting.
package schematest

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type schema struct {
	Type                 any                `json:"type"`
	Properties           map[string]*schema `json:"properties"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Items                *schema            `json:"items"`
}

// Check compares schema.json in the current directory with config's type.
func Check(t *testing.T, config any) {
	t.Helper()
	b, err := os.ReadFile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var s schema
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	compare(t, "config", &s, reflect.TypeOf(config))
}

func compare(t *testing.T, at string, s *schema, typ reflect.Type) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch typ.Kind() {
	case reflect.Struct:
		if string(s.AdditionalProperties) != "false" {
			t.Errorf("%s: the schema should refuse unknown keys (additionalProperties: false)", at)
		}
		var fields []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields = append(fields, name)
			ps := s.Properties[name]
			if ps == nil {
				t.Errorf("%s.%s: decoded by the plugin, missing from schema.json", at, name)
				continue
			}
			compare(t, at+"."+name, ps, f.Type)
		}
		for name := range s.Properties {
			if !slices.Contains(fields, name) {
				t.Errorf("%s.%s: in schema.json, not decoded by the plugin", at, name)
			}
		}
	case reflect.Slice:
		if s.Items != nil {
			compare(t, at+"[]", s.Items, typ.Elem())
		}
	case reflect.Map:
		var el schema
		if json.Unmarshal(s.AdditionalProperties, &el) == nil && el.Type != nil {
			compare(t, at+".*", &el, typ.Elem())
		}
	}
}
