package wasm

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// linearMemory backs a guest's linear memory with an anonymous mapping
// outside the Go heap, reserved at the memory's maximum and touched only
// as the guest uses it:
//
//   - the Go heap's size, and so its garbage collection target, does not
//     include guests' memory (with it, a gateway with a few hundred MiB of
//     instances had a GC target of twice that);
//   - growing never copies (the mapping is already as large as it may
//     get), and a closed instance's memory goes back to the system at
//     once, not at the next collection.
//
// The host never keeps a slice of guest memory past the call that read it
// (values that outlive a call are copied), so unmapping on Free is safe.
type linearMemory struct {
	buf  []byte
	heap bool // the mapping failed: grow on the Go heap, as wazero does
}

// memoryAllocator is the filter runtimes' allocator (nil: wazero's own).
var memoryAllocator experimental.MemoryAllocator = experimental.MemoryAllocatorFunc(newLinearMemory)

func newLinearMemory(_, max uint64) experimental.LinearMemory {
	buf, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return &linearMemory{heap: true}
	}
	return &linearMemory{buf: buf}
}

func (m *linearMemory) Reallocate(size uint64) []byte {
	if m.heap {
		if size > uint64(len(m.buf)) {
			m.buf = append(m.buf, make([]byte, size-uint64(len(m.buf)))...)
		}
		return m.buf[:size]
	}
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size:size]
}

func (m *linearMemory) Free() {
	if m.buf != nil && !m.heap {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}
