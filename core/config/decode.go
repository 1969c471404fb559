package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, decodes and validates the file at path. Any error it returns
// is an Errors whose entries name the file, line and key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, Errors{{File: path, Msg: errors.Unwrap(err).Error()}}
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse decodes and validates data read from file. lookupEnv resolves
// ${NAME} references in strings (os.LookupEnv in production).
//
// A file without a single key is refused: it is far more often a file
// caught while being written, or truncated, than a configuration.
func Parse(file string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		e := &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
		var pe toml.ParseError
		if errors.As(err, &pe) {
			e.Line, e.Msg = pe.Position.Line, pe.Message
			if pe.LastKey != "" {
				e.Key = pe.LastKey
			}
		}
		return nil, Errors{e}
	}
	if len(raw) == 0 {
		return nil, Errors{{File: file, Msg: "the file has no settings (it is empty, or holds only comments); refused, as a file caught while being written or truncated"}}
	}
	c := &Config{File: file, Digest: Digest(data), pos: scanPositions(string(data))}
	c.setDefaults()
	d := &decoder{errs: errs{file: file, pos: c.pos}, env: lookupEnv, fromEnv: map[string]bool{}, written: map[string]bool{}}
	migrate(&d.errs, raw)
	d.value("", raw, reflect.ValueOf(c).Elem())
	c.fromEnv, c.written = d.fromEnv, d.written
	// Semantic checks run even after decoding errors, so one run lists
	// every problem; keys that failed to decode are not checked again.
	d.errs.freeze()
	c.fillNames()
	c.resolvePaths()
	c.validate(&d.errs)
	if err := d.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Digest identifies the bytes of a configuration file (hex SHA-256).
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

type decoder struct {
	errs
	env     func(string) (string, bool)
	fromEnv map[string]bool // keys whose value came from the environment
	written map[string]bool // keys the file sets
}

// migrate reports settings of earlier versions whose meaning changed, with
// what replaces them, and removes them from raw so they are not reported
// twice.
func migrate(e *errs, raw map[string]any) {
	services, _ := raw["services"].(map[string]any)
	for _, name := range sortedKeys(services) {
		s, _ := services[name].(map[string]any)
		if v, ok := s["retry"].(bool); ok {
			replacement := "remove the key for the default policy, which retries what retry = true did (attempts = 2, on = [\"connect\", \"reset\"])"
			if !v {
				replacement = "write retry = { attempts = 1 } to turn retries off"
			}
			e.add(joinKey(joinKey("services", name), "retry"), "retry = %v is from an earlier version: retry is a table now ([services.%s.retry]: attempts, on, per_try_timeout, budget, ...); %s", v, name, replacement)
			delete(s, "retry")
		}
	}
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// value stores src, a value decoded by BurntSushi/toml into any, in dst.
// Each mismatch is recorded against key and decoding goes on, so one run
// reports every problem.
func (d *decoder) value(key string, src any, dst reflect.Value) {
	switch dst.Type() {
	case durationType:
		s, ok := src.(string)
		if !ok {
			d.add(key, "expected a duration string such as \"800ms\", found %s", tomlType(src))
			return
		}
		v, err := parseDuration(d.expand(key, s))
		if err != nil {
			d.add(key, "%v", err)
			return
		}
		dst.SetInt(int64(v))
		return
	case byteSizeType:
		switch s := src.(type) {
		case int64:
			if s < 0 {
				d.add(key, "size %d is negative", s)
				return
			}
			dst.SetInt(s)
		case string:
			v, err := parseByteSize(d.expand(key, s))
			if err != nil {
				d.add(key, "%v", err)
				return
			}
			dst.SetInt(int64(v))
		default:
			d.add(key, "expected a size such as \"10MiB\", found %s", tomlType(src))
		}
		return
	}

	switch dst.Kind() {
	case reflect.Pointer:
		v := reflect.New(dst.Type().Elem())
		if df, ok := v.Interface().(defaulter); ok {
			df.setDefaults()
		}
		d.value(key, src, v.Elem())
		dst.Set(v)
	case reflect.Struct:
		m, ok := src.(map[string]any)
		if !ok {
			d.add(key, "expected a table, found %s", tomlType(src))
			return
		}
		d.structFields(key, m, dst)
	case reflect.Map:
		m, ok := src.(map[string]any)
		if !ok {
			d.add(key, "expected a table, found %s", tomlType(src))
			return
		}
		if dst.IsNil() {
			dst.Set(reflect.MakeMapWithSize(dst.Type(), len(m)))
		}
		for _, k := range sortedKeys(m) {
			el := reflect.New(dst.Type().Elem()).Elem()
			d.value(joinKey(key, k), m[k], el)
			dst.SetMapIndex(reflect.ValueOf(k), el)
		}
	case reflect.Slice:
		items := reflect.ValueOf(src)
		if src == nil || items.Kind() != reflect.Slice {
			d.add(key, "expected an array, found %s", tomlType(src))
			return
		}
		out := reflect.MakeSlice(dst.Type(), items.Len(), items.Len())
		for i := range items.Len() {
			d.value(indexKey(key, i), items.Index(i).Interface(), out.Index(i))
		}
		dst.Set(out)
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			d.add(key, "expected a string, found %s", tomlType(src))
			return
		}
		dst.SetString(d.expand(key, s))
	case reflect.Bool:
		b, ok := src.(bool)
		if !ok {
			d.add(key, "expected true or false, found %s", tomlType(src))
			return
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, ok := src.(int64)
		if !ok {
			d.add(key, "expected an integer, found %s", tomlType(src))
			return
		}
		if n < 0 || (dst.Kind() == reflect.Int && n > math.MaxInt32) {
			d.add(key, "%d is out of range", n)
			return
		}
		dst.SetInt(n)
	case reflect.Float64:
		switch n := src.(type) {
		case float64:
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			d.add(key, "expected a number, found %s", tomlType(src))
		}
	case reflect.Interface:
		dst.Set(reflect.ValueOf(d.expandAll(key, src)))
	default:
		panic(fmt.Sprintf("config: no decoder for %s", dst.Type()))
	}
}

func (d *decoder) structFields(key string, m map[string]any, dst reflect.Value) {
	fields := tomlFields(dst.Type())
	for _, k := range sortedKeys(m) {
		i, ok := fields[k]
		if !ok {
			msg := "unknown key"
			if s := suggest(k, fields); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			d.add(joinKey(key, k), "%s", msg)
			continue
		}
		d.written[joinKey(key, k)] = true
		d.value(joinKey(key, k), m[k], dst.Field(i))
	}
}

// tomlFields maps the toml tags of a struct type to field indices.
func tomlFields(t reflect.Type) map[string]int {
	fields := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if tag := t.Field(i).Tag.Get("toml"); tag != "" && tag != "-" {
			fields[tag] = i
		}
	}
	return fields
}

// suggest returns the known key closest to k, if one is close enough to be
// a typo of it.
func suggest(k string, known map[string]int) string {
	best, bestDist := "", 3
	for name := range known {
		if dist := editDistance(k, name); dist < bestDist || dist == bestDist && name < best {
			best, bestDist = name, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// expand replaces ${NAME} with the environment variable NAME; "$${" is a
// literal "${". An unset variable is an error: a secret that silently
// becomes "" is worse than a gateway that does not start.
func (d *decoder) expand(key, s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			d.add(key, "unterminated ${ in %q", s)
			return b.String()
		}
		name := s[i+2 : i+end]
		if v, ok := d.env(name); ok && validEnvName(name) {
			b.WriteString(v)
			d.fromEnv[key] = true
		} else if !validEnvName(name) {
			d.add(key, "invalid environment variable name %q", name)
		} else {
			d.add(key, "environment variable %s is not set", name)
		}
		s = s[i+end+1:]
	}
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// expandAll expands ${NAME} in every string of a free-form value (a
// filter's config table).
func (d *decoder) expandAll(key string, v any) any {
	switch t := v.(type) {
	case string:
		return d.expand(key, t)
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, el := range t {
			out[k] = d.expandAll(joinKey(key, k), el)
		}
		return out
	case []map[string]any:
		out := make([]any, len(t))
		for i, el := range t {
			out[i] = d.expandAll(indexKey(key, i), el)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, el := range t {
			out[i] = d.expandAll(indexKey(key, i), el)
		}
		return out
	}
	return v
}

func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case nil:
		return "nothing"
	}
	return "a date/time"
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
