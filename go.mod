module github.com/lintelhq/lintel

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/julienschmidt/httprouter v1.3.0
	golang.org/x/net v0.62.0
)

require (
	github.com/tetratelabs/wazero v1.12.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
