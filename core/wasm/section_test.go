package wasm

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
)

func TestEmbedSchemaReplacesTheSection(t *testing.T) {
	code, err := os.ReadFile("../../testdata/wasm/stamp.wasm")
	if err != nil {
		t.Fatal(err)
	}
	first, err := EmbedSchema(code, []byte(`{"type": "object"}`))
	if err != nil {
		t.Fatal(err)
	}
	second, err := EmbedSchema(first, []byte(`{"type": "object", "additionalProperties": false}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ConfigSchema(second)
	if err != nil || string(got) != `{"type": "object", "additionalProperties": false}` {
		t.Fatalf("schema read back %q, %v", got, err)
	}
	if n := bytes.Count(second, []byte(sectionConfigSchema)); n != 1 {
		t.Errorf("%d schema sections after embedding twice", n)
	}
	if s, err := parseSchema(second); err != nil || s == nil || s.AdditionalProperties == nil || s.AdditionalProperties.Allowed {
		t.Errorf("parseSchema: %+v, %v", s, err)
	}
	// The module still compiles.
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	if _, err := rt.CompileModule(ctx, second); err != nil {
		t.Fatal(err)
	}
	if _, err := EmbedSchema(code, []byte(`{"type": "strng"}`)); err == nil {
		t.Error("an invalid schema was embedded")
	}
	if none, err := ConfigSchema(code); none != nil || err != nil {
		t.Errorf("a module without a schema: %q, %v", none, err)
	}
}
