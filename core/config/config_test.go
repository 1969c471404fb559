package config

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func parse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse("test.toml", []byte(src), env(map[string]string{"SECRET": "s3cret", "HOST": "10.1.2.3"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func parseErr(t *testing.T, src string) Errors {
	t.Helper()
	_, err := Parse("test.toml", []byte(src), env(nil))
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("Parse error = %v (%T), want Errors", err, err)
	}
	return es
}

func TestDefaultConfigParses(t *testing.T) {
	c, err := Load("../../gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listeners) != 2 || len(c.Routes) == 0 {
		t.Errorf("listeners %d, routes %d", len(c.Listeners), len(c.Routes))
	}
}

func TestDefaults(t *testing.T) {
	c := parse(t, `
[services.s]
targets = ["http://127.0.0.1:1"]
[[routes]]
path = "/x"
service = "s"
[[routes]]
path = "/agg/:id"
[routes.aggregate]
parts = [{ key = "a", service = "s", path = "/a", timeout = "10s" }, { key = "b", service = "s", path = "/b", timeout = "100ms" }]
`)
	l := c.Listeners[DefaultListener]
	if l == nil || l.Listen != "127.0.0.1:8080" || l.ReadHeaderTimeout.D() != 5*time.Second || l.MaxBody != 10<<20 || l.MaxConcurrent != 10000 {
		t.Errorf("default listener = %+v", l)
	}
	s := c.Services["s"]
	if s.Timeout.D() != 30*time.Second || s.Retry.Attempts != 2 || s.MaxIdleConns != 256 || s.Name != "s" {
		t.Errorf("service defaults = %+v", s)
	}
	r := c.Routes[0]
	if r.Listener != DefaultListener || strings.Join(r.Methods, ",") != strings.Join(DefaultMethods, ",") {
		t.Errorf("route defaults = %+v", r)
	}
	if c.Server.DrainTimeout.D() != 30*time.Second || c.Plugins.Dir != "plugins" {
		t.Errorf("server defaults = %+v %+v", c.Server, c.Plugins)
	}
	parts := c.Routes[1].Aggregate.Parts
	if c.Routes[1].Aggregate.Timeout.D() != 3*time.Second || parts[0].Timeout.D() != 3*time.Second || parts[1].Timeout.D() != 100*time.Millisecond {
		t.Errorf("part timeouts: aggregate %v, parts %v %v (a part may not outlive its aggregate)",
			c.Routes[1].Aggregate.Timeout, parts[0].Timeout, parts[1].Timeout)
	}
}

func TestEnvExpansion(t *testing.T) {
	c := parse(t, `
[services.s]
targets = ["http://${HOST}:9000"]
[filters.auth]
config = { secret = "${SECRET}", nested = [{ k = "x-${SECRET}" }], literal = "$${SECRET}", dollar = "a$b" }
[[routes]]
path = "/x"
service = "s"
filters = ["auth"]
`)
	if got := c.Services["s"].Targets[0]; got != "http://10.1.2.3:9000" {
		t.Errorf("target = %q", got)
	}
	cfg := c.Filters["auth"].Config
	if cfg["secret"] != "s3cret" || cfg["literal"] != "${SECRET}" || cfg["dollar"] != "a$b" {
		t.Errorf("filter config = %v", cfg)
	}
	if k := cfg["nested"].([]any)[0].(map[string]any)["k"]; k != "x-s3cret" {
		t.Errorf("nested = %v", k)
	}
	if c.Filters["auth"].Plugin != "auth" {
		t.Errorf("plugin defaults to the filter name, got %q", c.Filters["auth"].Plugin)
	}
}

func TestEnvErrors(t *testing.T) {
	es := parseErr(t, `
[filters.f]
config = { a = "${NOPE}", b = "${1BAD}", c = "${OPEN" }
`)
	want := []string{
		`test.toml:3: filters.f.config.a: environment variable NOPE is not set`,
		`test.toml:3: filters.f.config.b: invalid environment variable name "1BAD"`,
		`test.toml:3: filters.f.config.c: unterminated ${ in "${OPEN"`,
	}
	if got := es.Error(); got != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestPositionsTrickyTOML checks that the line scanner is not fooled by
// brackets and equals signs inside strings and comments, quoted and
// dotted keys, and nested arrays of tables.
func TestPositionsTrickyTOML(t *testing.T) {
	src := `# [[routes]] in a comment
title = """
[[routes]]
x = 1
"""
"quoted.key" = 'it is [not] a "table"'
dotted.inner = { a = "}", b = [1, [2, 3]] }

[[routes]] # first
path = "/a"

[[routes]]
path = "/b"
[routes.aggregate]
parts = [
  { key = "x" },
  # a comment
  { key = "y",
    path = "/y" },
]

[[routes.extra]]
k = 1
[[routes.extra]]
k = 2
`
	pos := scanPositions(src)
	for key, line := range map[string]int{
		"title":                             2,
		`"quoted.key"`:                      6,
		"dotted.inner.a":                    7,
		"dotted.inner.b[1]":                 7,
		"routes[0]":                         9,
		"routes[0].path":                    10,
		"routes[1].path":                    13,
		"routes[1].aggregate":               14,
		"routes[1].aggregate.parts[0]":      16,
		"routes[1].aggregate.parts[1]":      18,
		"routes[1].aggregate.parts[1].path": 19,
		"routes[1].extra[0].k":              23,
		"routes[1].extra[1].k":              25,
	} {
		if got := pos[key]; got != line {
			t.Errorf("line of %s = %d, want %d", key, got, line)
		}
	}
	if pos.line("routes[1].aggregate.parts[1].take") != 18 {
		t.Errorf("an unwritten key takes its table's line")
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]ByteSize{"512": 512, "64KiB": 64 << 10, "10MiB": 10 << 20, "1GiB": 1 << 30, "10MB": 10e6, "3 KB": 3000, "7B": 7} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "ten", "-1", "1.5MiB", "99999999999GiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", bad)
		}
	}
	if d, err := parseDuration("1m30s"); err != nil || d.D() != 90*time.Second {
		t.Errorf("parseDuration = %v, %v", d, err)
	}
}

func TestLoadNamesFileOnError(t *testing.T) {
	_, err := Load("testdata-does-not-exist.toml")
	if err == nil || err.Error() != "testdata-does-not-exist.toml: no such file or directory" {
		t.Errorf("err = %v", err)
	}
}

// FuzzParse: no input makes Parse panic, and every error it returns is
// positioned in the file.
func FuzzParse(f *testing.F) {
	data, _ := os.ReadFile("../../gateway.toml")
	f.Add(string(data))
	f.Add("[[routes]]\npath = \"/a\"\n[routes.aggregate]\nparts = [{key=\"a\"}]")
	f.Add("a = \"\"\"\n[x]\n\"\"\"\n[[b]]\nc.d = {e = [1,{f=2}]}")
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse("f.toml", []byte(src), env(nil))
		var es Errors
		if err != nil && !errors.As(err, &es) {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, e := range es {
			if e.File != "f.toml" || e.Msg == "" {
				t.Fatalf("bad error %+v", e)
			}
		}
	})
}

// authSchema declares what jwt-auth's config shows: its algorithms, issuer
// and key ids, never a key's secret.
const authSchema = `{"type": "object", "additionalProperties": false, "properties": {
  "algorithms": {"type": "array", "items": {"type": "string"}, "public": true},
  "issuer": {"type": "string", "public": true},
  "jwks_url": {"type": "string", "public": true},
  "jwks": {"type": "string"},
  "keys": {"type": "array", "items": {"type": "object", "additionalProperties": false, "properties": {
    "kid": {"type": "string", "public": true}, "secret": {"type": "string"}}}},
  "cache_size": {"type": "integer", "public": true},
  "mode": {"enum": ["strict", "lax"], "public": true}}}`

// TestRedactedBySchema pins /config's leaks and over-redactions: a header
// value "Bearer ...", an X-Api-Key value, a jwks_url with user:password@
// and keys named signing_key or hmac were shown; aggregation parts' key
// and the whole table of a filter named apikey were hidden, so the dump
// no longer validated.
func TestRedactedBySchema(t *testing.T) {
	env := map[string]string{"TOKEN": "admin-tok"}
	cfg, err := Parse("t.toml", []byte(`
[admin]
token = "${TOKEN}"
[state]
backend = "redis"
redis_url = "redis://:hunter2@127.0.0.1:6379/0"
[filters.auth]
plugin = "jwt-auth"
config = { algorithms = ["HS256"], keys = [{ kid = "a", secret = "s3cr3t-s3cr3t" }], issuer = "https://idp", jwks_url = "https://svc:pa55word@idp/jwks", cache_size = 10 }
[filters.apikey]
plugin = "header-rewrite"
config = { request = { set = { Authorization = "Bearer sekrit-bearer", X-Api-Key = "sekrit-key" } }, signing_key = "sekrit-sign", hmac = "sekrit-hmac" }
[services.a]
targets = ["http://127.0.0.1:1"]
[[routes]]
path = "/p"
[routes.aggregate]
parts = [{ key = "product", service = "a", path = "/x" }]
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	schema, err := ParsePluginSchema([]byte(authSchema))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cfg.Redacted(map[string]*PluginSchema{"auth": schema})
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"admin-tok", "hunter2", "s3cr3t", "pa55word", "sekrit"} {
		if strings.Contains(out, secret) {
			t.Errorf("secret %q in /config output:\n%s", secret, out)
		}
	}
	for _, kept := range []string{`issuer = "https://idp"`, `algorithms = ["HS256"]`, `kid = "a"`, `cache_size = 10`,
		`key = "product"`, "svc:redacted@idp/jwks", "127.0.0.1:6379", `key_prefix = "lintel:"`, `Authorization = "[redacted]"`} {
		if !strings.Contains(out, kept) {
			t.Errorf("%q missing from /config output:\n%s", kept, out)
		}
	}
	// The dump loads again, and is the same config apart from secrets.
	again, err := Parse("dump.toml", b, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("the /config dump does not load: %v\n%s", err, out)
	}
	if err := again.CheckFilterConfig(again.Filters["auth"], schema); err != nil {
		t.Errorf("the dump's auth config does not fit its schema: %v", err)
	}
}

// TestPluginConfigTypo pins claims_to_header (for claims_to_headers)
// passing validation and silently dropping X-User: a plugin's schema
// makes unknown keys and wrong types errors with file, line and key.
func TestPluginConfigTypo(t *testing.T) {
	cfg, err := Parse("t.toml", []byte(`
[filters.auth]
plugin = "jwt-auth"
config_files = { jwks = "keys.json", extra = "x.json" }
config.algorithms = "HS256"
config.isuer = "https://idp"
config.cache_size = 1.5
config.mode = "loose"
config.keys = [{ kid = "a", sekret = "s" }]
`), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	schema, err := ParsePluginSchema([]byte(authSchema))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.CheckFilterConfig(cfg.Filters["auth"], schema)
	want := []string{
		`t.toml:4: filters.auth.config_files.extra: unknown key (the plugin knows algorithms, cache_size, issuer, jwks, jwks_url, keys, mode)`,
		`t.toml:5: filters.auth.config.algorithms: must be array, found a string`,
		`t.toml:6: filters.auth.config.isuer: unknown key (did you mean "issuer"?)`,
		`t.toml:7: filters.auth.config.cache_size: must be integer, found a float`,
		`t.toml:8: filters.auth.config.mode: must be one of "strict", "lax", found "loose"`,
		`t.toml:9: filters.auth.config.keys[0].sekret: unknown key (did you mean "secret"?)`,
	}
	if got == nil || got.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestParsePluginSchemaRefusesWhatItDoesNotRead(t *testing.T) {
	for _, bad := range []string{`{"type": "strng"}`, `{"properties": {"a": {"minimum": 1}}}`, `not json`, `{"type": 3}`} {
		if _, err := ParsePluginSchema([]byte(bad)); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

func TestByteSizeWritesAsConfigured(t *testing.T) {
	for in, want := range map[ByteSize]string{0: "0", 1000: "1000", 64 << 10: "64KiB", 10 << 20: "10MiB", 3 << 30: "3GiB", 1536 << 10: "1536KiB"} {
		b, _ := in.MarshalText()
		if string(b) != want {
			t.Errorf("%d writes as %q, want %q", in, b, want)
		}
		if back, err := parseByteSize(string(b)); err != nil || back != in {
			t.Errorf("%q reads back as %d, %v", b, back, err)
		}
	}
}

// A route's retry table replaces only the keys it sets: the rest stay
// the service's, whatever they are (not the defaults).
func TestRouteRetryOverlaysService(t *testing.T) {
	c := parse(t, `
[services.s]
targets = ["http://127.0.0.1:1"]
retry = { attempts = 3, on = ["connect", "503"], budget = 0.1 }
[[routes]]
path = "/a"
service = "s"
retry = { non_idempotent = true }
[[routes]]
path = "/b"
service = "s"
[routes.retry]
attempts = 1
`)
	a, b := c.Routes[0].Retry, c.Routes[1].Retry
	if a.Attempts != 3 || !a.NonIdempotent || a.Budget != 0.1 || strings.Join(a.On, ",") != "connect,503" {
		t.Errorf("route a's policy = %+v", a)
	}
	if b.Attempts != 1 || b.NonIdempotent || b.Budget != 0.1 || a.MaxBody != 64<<10 {
		t.Errorf("route b's policy = %+v", b)
	}
	if c.Routes[0].Retry == c.Services["s"].Retry || c.Services["s"].Retry.NonIdempotent {
		t.Error("the route's overlay changed the service's policy")
	}
}

// retry = true/false was a setting of earlier versions: it gets an error
// that names what replaces it, not "expected a table".
func TestRetryBoolNamesItsReplacement(t *testing.T) {
	es := parseErr(t, `
[services.s]
targets = ["http://127.0.0.1:1"]
retry = false
`)
	if len(es) != 1 || es[0].Line != 4 || !strings.Contains(es[0].Msg, "retry = { attempts = 1 }") {
		t.Errorf("errors = %v", es)
	}
}
