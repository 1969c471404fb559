package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// PluginSchema is the shape of a plugin's config table as the plugin
// declares it (sdk/ABI.md, "Config schema"): a subset of JSON Schema, so
// editors can complete it, plus one keyword of Lintel's, "public". It
// drives three things: unknown keys and wrong types in [filters.NAME]
// config and config_files are errors at load with file, line and key;
// /config shows a value only where the schema calls it public.
type PluginSchema struct {
	// Type is "string", "integer", "number", "boolean", "array" or
	// "object", or a list of them; empty accepts any value.
	Type SchemaTypes `json:"type,omitempty"`
	// Description documents the key (for editors and people); $comment
	// and $schema are read and ignored, as in JSON Schema.
	Description string `json:"description,omitempty"`
	Comment     string `json:"$comment,omitempty"`
	SchemaURI   string `json:"$schema,omitempty"`
	// Properties are the keys of an object.
	Properties map[string]*PluginSchema `json:"properties,omitempty"`
	// AdditionalProperties is the schema of keys of an object not in
	// Properties; false refuses them (absent accepts any, as in JSON
	// Schema).
	AdditionalProperties *AdditionalProperties `json:"additionalProperties,omitempty"`
	// Items is the schema of an array's elements.
	Items *PluginSchema `json:"items,omitempty"`
	// Enum lists the values allowed.
	Enum []any `json:"enum,omitempty"`
	// Public marks a value (and all it holds) as safe to show in /config.
	// Every other string in a plugin's config is shown "[redacted]".
	Public bool `json:"public,omitempty"`
}

// SchemaTypes is a schema's "type": one name or a list of them.
type SchemaTypes []string

func (t *SchemaTypes) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*t = SchemaTypes{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New(`"type" must be a type name or a list of them`)
	}
	*t = many
	return nil
}

// AdditionalProperties is JSON Schema's additionalProperties: a boolean or
// a schema.
type AdditionalProperties struct {
	Allowed bool
	Schema  *PluginSchema
}

func (a *AdditionalProperties) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &a.Allowed); err == nil {
		return nil
	}
	a.Allowed = true
	return json.Unmarshal(b, &a.Schema)
}

func (a AdditionalProperties) MarshalJSON() ([]byte, error) {
	if a.Schema != nil {
		return json.Marshal(a.Schema)
	}
	return json.Marshal(a.Allowed)
}

var schemaTypes = []string{"string", "integer", "number", "boolean", "array", "object"}

// ParsePluginSchema decodes and checks a schema.
func ParsePluginSchema(b []byte) (*PluginSchema, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var s PluginSchema
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("not a schema Lintel reads (JSON Schema's type, description, properties, additionalProperties, items, enum, $comment, $schema; and public): %v", err)
	}
	if err := s.check(""); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *PluginSchema) check(at string) error {
	for _, t := range s.Type {
		if !slices.Contains(schemaTypes, t) {
			return fmt.Errorf("%s: unknown type %q (%s)", orRoot(at), t, strings.Join(schemaTypes, ", "))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.Properties)) {
		if s.Properties[k] == nil {
			return fmt.Errorf("%s: property %q has no schema", orRoot(at), k)
		}
		if err := s.Properties[k].check(joinKey(at, k)); err != nil {
			return err
		}
	}
	if a := s.AdditionalProperties; a != nil && a.Schema != nil {
		if err := a.Schema.check(at + ".*"); err != nil {
			return err
		}
	}
	if s.Items != nil {
		return s.Items.check(at + "[]")
	}
	return nil
}

func orRoot(at string) string {
	if at == "" {
		return "(top level)"
	}
	return at
}

// CheckFilterConfig checks a filter's config and config_files against its
// plugin's schema; the problems name the file, line and key
// (filters.NAME.config.KEY). It returns nil or Errors.
func (c *Config) CheckFilterConfig(f *Filter, s *PluginSchema) error {
	e := &errs{file: c.File, pos: c.pos}
	key := joinKey("filters", f.Name)
	for _, k := range sortedKeys(f.Config) {
		s.checkKey(e, joinKey(key, "config"), k, f.Config[k])
	}
	for _, k := range sortedKeys(f.ConfigFiles) {
		if _, dup := f.Config[k]; dup {
			e.add(joinKey(joinKey(key, "config_files"), k), "is also set in config")
			continue
		}
		s.checkKey(e, joinKey(key, "config_files"), k, "the file's content")
	}
	return e.err()
}

// checkKey checks the value v of key k of an object whose schema is s.
func (s *PluginSchema) checkKey(e *errs, at, k string, v any) {
	ks := s.Properties[k]
	if a := s.AdditionalProperties; ks == nil && a != nil {
		if !a.Allowed {
			msg := "unknown key"
			known := map[string]int{}
			for name := range s.Properties {
				known[name] = 0
			}
			if sug := suggest(k, known); sug != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", sug)
			} else if len(known) > 0 {
				msg += fmt.Sprintf(" (the plugin knows %s)", strings.Join(slices.Sorted(maps.Keys(known)), ", "))
			}
			e.add(joinKey(at, k), "%s", msg)
			return
		}
		ks = a.Schema
	}
	if ks != nil {
		ks.checkValue(e, joinKey(at, k), v)
	}
}

// checkValue checks one value decoded from TOML (or a config file's
// content, a string) against s.
func (s *PluginSchema) checkValue(e *errs, at string, v any) {
	if len(s.Type) > 0 && !slices.ContainsFunc(s.Type, func(t string) bool { return isType(v, t) }) {
		e.add(at, "must be %s, found %s", strings.Join(s.Type, " or "), tomlType(v))
		return
	}
	if len(s.Enum) > 0 && !slices.ContainsFunc(s.Enum, func(want any) bool { return sameValue(want, v) }) {
		e.add(at, "must be one of %s, found %s", enumList(s.Enum), valueString(v))
		return
	}
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			s.checkKey(e, at, k, t[k])
		}
	case []any:
		if s.Items != nil {
			for i, el := range t {
				s.Items.checkValue(e, indexKey(at, i), el)
			}
		}
	case []map[string]any:
		if s.Items != nil {
			for i, el := range t {
				s.Items.checkValue(e, indexKey(at, i), el)
			}
		}
	}
}

func isType(v any, t string) bool {
	switch v.(type) {
	case string:
		return t == "string"
	case int64:
		return t == "integer" || t == "number"
	case float64:
		return t == "number"
	case bool:
		return t == "boolean"
	case []any, []map[string]any:
		return t == "array"
	case map[string]any:
		return t == "object"
	}
	return false
}

func sameValue(want, v any) bool {
	switch w := want.(type) {
	case float64: // JSON numbers
		switch n := v.(type) {
		case int64:
			return float64(n) == w
		case float64:
			return n == w
		}
		return false
	}
	return want == v
}

func enumList(values []any) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = valueString(v)
	}
	return strings.Join(parts, ", ")
}

func valueString(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// redact returns v with every string the schema does not call public
// replaced by Redacted, keeping its shape (so the result still loads).
// A nil schema makes nothing public.
func (s *PluginSchema) redact(v any) any {
	if s != nil && s.Public {
		return v
	}
	switch t := v.(type) {
	case string:
		return Redacted
	case map[string]any:
		for k, el := range t {
			t[k] = s.child(k).redact(el)
		}
	case []map[string]any:
		for _, el := range t {
			s.items().redact(el)
		}
	case []any:
		for i, el := range t {
			t[i] = s.items().redact(el)
		}
	}
	return v
}

// child is the schema of key k of an object, nil when unknown.
func (s *PluginSchema) child(k string) *PluginSchema {
	if s == nil {
		return nil
	}
	if c := s.Properties[k]; c != nil {
		return c
	}
	if s.AdditionalProperties != nil {
		return s.AdditionalProperties.Schema
	}
	return nil
}

func (s *PluginSchema) items() *PluginSchema {
	if s == nil {
		return nil
	}
	return s.Items
}
