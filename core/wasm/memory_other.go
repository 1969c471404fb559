//go:build !linux

package wasm

import "github.com/tetratelabs/wazero/experimental"

// memoryAllocator is nil off Linux: wazero allocates guest memory on the
// Go heap.
var memoryAllocator experimental.MemoryAllocator
