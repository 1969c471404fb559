module github.com/lintelhq/lintel/sdk/go

go 1.26
