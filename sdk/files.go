// Package sdk gives gatewayd the files of the SDKs that live in this
// module, for the projects `gatewayd plugin new` writes (internal/scaffold).
// The Go SDK is its own module (sdk/go), which the root module cannot
// embed: internal/scaffold keeps a copy of it, held equal by a test.
package sdk

import "embed"

// Files holds each SDK's library, by its path under sdk/.
//
//go:embed c/lintel.h rust/src/lib.rs rust/src/json.rs rust/src/heap.rs assemblyscript/assembly/lintel.ts
var Files embed.FS
