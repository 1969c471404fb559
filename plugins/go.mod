module github.com/lintelhq/lintel/plugins

go 1.26

require github.com/lintelhq/lintel/sdk/go v0.0.0

require github.com/golang-jwt/jwt/v5 v5.3.1 // indirect

replace github.com/lintelhq/lintel/sdk/go => ../sdk/go
