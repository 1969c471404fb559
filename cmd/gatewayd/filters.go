package main

import (
	"github.com/lintelhq/lintel/core/config"
	"github.com/lintelhq/lintel/core/filter"
)

// filterFactory returns what builds the config's filters. No filter
// implementation is built in yet, so a config naming filters is refused
// with a clear error by gateway.New.
func filterFactory(*config.Config) filter.Factory { return nil }
