package confschema

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/internal/gatewaytest"
)

var update = flag.Bool("update", false, "rewrite gateway.schema.json from the config types")

// TestSchemaMatchesConfigTypes: the schema in the repository is the one
// the config types generate; a change of the types without regenerating
// it fails here (go test ./internal/confschema -update rewrites it).
func TestSchemaMatchesConfigTypes(t *testing.T) {
	got, err := Generate(filepath.Join(gatewaytest.Root, "core/config"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(gatewaytest.Root, File)
	if *update {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not what the config types generate: run go test ./internal/confschema -update", File)
	}
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	s, err := c.Compile(filepath.Join(gatewaytest.Root, File))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// instance reads a TOML file as the JSON value an editor checks.
func instance(t *testing.T, file string) any {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(file, &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// goodConfigs are the configurations gatewayd loads: the demo and the
// good examples in testdata.
func goodConfigs(t *testing.T) []string {
	good, _ := filepath.Glob(filepath.Join(gatewaytest.Root, "testdata/config/good/*.toml"))
	return append(good, filepath.Join(gatewaytest.Root, "gateway.toml"))
}

// TestGoodConfigsPass: every configuration gatewayd accepts is valid
// under the schema.
func TestGoodConfigsPass(t *testing.T) {
	s := compile(t)
	t.Setenv("OTEL_API_KEY", "k")
	t.Setenv("LINTEL_ADMIN_TOKEN", "t")
	for _, file := range goodConfigs(t) {
		if _, err := config.Load(file); err != nil {
			t.Errorf("%s does not load: %v", file, err)
		}
		if err := s.Validate(instance(t, file)); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
}

// TestBadShapesFail: every broken configuration in testdata/config/bad
// that is broken by shape (an unknown key, a value of the wrong type, as
// its .golden file says) fails the schema too.
func TestBadShapesFail(t *testing.T) {
	s := compile(t)
	files, _ := filepath.Glob(filepath.Join(gatewaytest.Root, "testdata/config/bad/*.toml"))
	shaped := 0
	for _, file := range files {
		golden, err := os.ReadFile(strings.TrimSuffix(file, ".toml") + ".golden")
		if err != nil {
			t.Fatal(err)
		}
		if !byShape(string(golden)) {
			continue
		}
		var m map[string]any
		if _, err := toml.DecodeFile(file, &m); err != nil {
			continue // not TOML at all: nothing for a schema to check
		}
		shaped++
		if err := s.Validate(instance(t, file)); err == nil {
			t.Errorf("%s is broken by shape but passes the schema:\n%s", filepath.Base(file), golden)
		}
	}
	if shaped < 3 {
		t.Errorf("only %d configs broken by shape found", shaped)
	}
}

// byShape reports whether validate's output names a shape error outside
// a plugin's config (which its plugin's own schema checks).
func byShape(golden string) bool {
	for _, line := range strings.Split(golden, "\n") {
		if strings.Contains(line, ".config.") {
			continue
		}
		for _, s := range []string{"unknown key", "expected a", "expected an", "expected true or false", "is out of range", "is negative"} {
			if strings.Contains(line, s) {
				return true
			}
		}
	}
	return false
}
