// Package confschema generates the JSON Schema of gateway.toml from the
// configuration's Go types (core/config): their toml tags give the keys,
// their Go types the value types, their defaults (the values a key the
// file omits keeps) the defaults, and their doc comments the
// descriptions. Editors with TOML support (Taplo, VS Code's Even Better
// TOML) read it through the `#:schema` line at the top of gateway.toml.
//
// The schema checks shape: keys and value types. What depends on several
// values, or on files, is `gatewayd validate`'s to say.
package confschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/lintelhq/lintel/core/config"
)

// File is where the schema is kept, relative to the repository's root.
const File = "gateway.schema.json"

// ID is the schema's $id: where its published copy is found.
const ID = "https://raw.githubusercontent.com/lintelhq/lintel/main/gateway.schema.json"

// Patterns of the string forms: a duration ("800ms", "1m30s"), a size
// ("64KiB", "10MB", "512"), each also accepted as a ${ENV} reference.
const (
	durationPattern = `^\s*([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+\s*$|\$\{`
	sizePattern     = `^\s*[0-9]+\s*(KiB|MiB|GiB|KB|MB|GB|B)?\s*$|\$\{`
)

// Generate returns the schema, with descriptions read from the Go
// sources of core/config in dir.
func Generate(dir string) ([]byte, error) {
	docs, err := fieldDocs(dir)
	if err != nil {
		return nil, err
	}
	g := &generator{docs: docs}
	root := g.object(reflect.TypeFor[config.Config](), defaults())
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["$id"] = ID
	root["title"] = "Lintel gateway.toml"
	root["description"] = "The configuration of gatewayd, the Lintel API gateway (README.md, Configuration)."
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// defaults returns a Config holding every default: what Parse fills in
// before it reads a file.
func defaults() reflect.Value {
	var c config.Config
	config.ApplyDefaults(&c)
	return reflect.ValueOf(&c).Elem()
}

type generator struct {
	docs map[string]string // "Type.Field" -> doc comment
}

type schema = map[string]any

var (
	durationType = reflect.TypeFor[config.Duration]()
	sizeType     = reflect.TypeFor[config.ByteSize]()
)

// object is the schema of a struct type; def holds its defaults (or is
// invalid when it has none).
func (g *generator) object(t reflect.Type, def reflect.Value) schema {
	props := schema{}
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		var fd reflect.Value
		if def.IsValid() {
			fd = def.Field(i)
		}
		s := g.value(f.Type, fd)
		if d := g.docs[t.Name()+"."+f.Name]; d != "" {
			s["description"] = withoutSubject(d, f.Name, key)
		}
		if fd.IsValid() {
			if v, ok := defaultValue(fd); ok {
				s["default"] = v
			}
		}
		props[key] = s
	}
	return schema{"type": "object", "properties": props, "additionalProperties": false}
}

// value is the schema of a value of type t; def is its default, if any.
func (g *generator) value(t reflect.Type, def reflect.Value) schema {
	switch t {
	case durationType:
		return schema{"type": "string", "pattern": durationPattern}
	case sizeType:
		return schema{"oneOf": []any{
			schema{"type": "integer", "minimum": 0},
			schema{"type": "string", "pattern": sizePattern},
		}}
	}
	switch t.Kind() {
	case reflect.Pointer:
		el := t.Elem()
		if el.Kind() == reflect.Struct {
			return g.object(el, elementDefaults(el))
		}
		return g.value(el, reflect.Value{})
	case reflect.Struct:
		if !def.IsValid() {
			def = elementDefaults(t)
		}
		return g.object(t, def)
	case reflect.Map:
		return schema{"type": "object", "additionalProperties": g.value(t.Elem(), reflect.Value{})}
	case reflect.Slice:
		return schema{"type": "array", "items": g.value(t.Elem(), reflect.Value{})}
	case reflect.String:
		return schema{"type": "string"}
	case reflect.Bool:
		return schema{"type": "boolean"}
	case reflect.Int:
		return schema{"type": "integer", "minimum": 0, "maximum": 1<<31 - 1}
	case reflect.Int64:
		return schema{"type": "integer", "minimum": 0}
	case reflect.Float64:
		return schema{"type": "number"}
	case reflect.Interface:
		return schema{} // any value: a plugin's own config
	}
	panic(fmt.Sprintf("confschema: no schema for %s", t))
}

// elementDefaults returns the defaults of a table that appears many
// times (a listener, a service, a filter, a route): those its type sets
// itself, or an invalid Value when it has none.
func elementDefaults(t reflect.Type) reflect.Value {
	p := reflect.New(t)
	if config.ApplyDefaults(p.Interface()) {
		return p.Elem()
	}
	return reflect.Value{}
}

// defaultValue is v as the schema's "default", when it says something:
// zero values (false, "", 0, empty lists) are left out.
func defaultValue(v reflect.Value) (any, bool) {
	if v.IsZero() {
		return nil, false
	}
	switch v.Type() {
	case durationType:
		return v.Interface().(config.Duration).String(), true
	case sizeType:
		b, _ := v.Interface().(config.ByteSize).MarshalText()
		return string(b), true
	}
	switch v.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return v.Interface(), true
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.String {
			return v.Interface(), true
		}
	}
	return nil, false
}

// fieldDocs reads the doc comments of the struct fields in the package
// in dir, keyed "Type.Field", as one line of text each.
func fieldDocs(dir string) (map[string]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	docs := map[string]string{}
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return false
			}
			for _, field := range st.Fields.List {
				if field.Doc == nil {
					continue
				}
				text := strings.Join(strings.Fields(field.Doc.Text()), " ")
				for _, name := range field.Names {
					// "Listen is its address; ..." -> "Its address; ..."
					docs[ts.Name.Name+"."+name.Name] = text
				}
			}
			return false
		})
	}
	return docs, nil
}

// withoutSubject speaks of a key as the file names it: a Go doc
// comment's leading "Name is" / "Name are" is dropped ("Listen is its
// address" -> "Its address"), and another leading Go name becomes the
// key ("Pprof serves" -> "pprof serves").
func withoutSubject(text, name, key string) string {
	for _, verb := range []string{" is ", " are "} {
		if rest, ok := strings.CutPrefix(text, name+verb); ok {
			return strings.ToUpper(rest[:1]) + rest[1:]
		}
	}
	if rest, ok := strings.CutPrefix(text, name+" "); ok {
		return key + " " + rest
	}
	return text
}
