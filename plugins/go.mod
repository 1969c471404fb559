module github.com/lintelhq/lintel/plugins

go 1.26

require github.com/lintelhq/lintel/sdk/go v0.0.0

replace github.com/lintelhq/lintel/sdk/go => ../sdk/go
