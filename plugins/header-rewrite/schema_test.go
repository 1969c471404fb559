//go:build !wasip1

package main

import (
	"testing"

	"github.com/lintelhq/lintel/plugins/internal/schematest"
)

func TestSchemaMatchesConfig(t *testing.T) { schematest.Check(t, Config{}) }
