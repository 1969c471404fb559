// Package meter rewrites a WebAssembly module so that its host can bound
// every call into it without the engine's help: the work the guest does
// (fuel) and how deep its calls nest (depth).
//
// Instrument appends two mutable globals, exported as FuelExport (i64) and
// DepthExport (i32), and adds to the code:
//
//   - at the head of every loop, a charge of the instructions in the loop's
//     body (nested loops charge their own);
//   - before every bulk memory or table instruction (memory.fill,
//     memory.copy, memory.init, table.*), a charge of the size it was
//     given, one unit for every 16 bytes or elements;
//   - at the entry of every function that calls another, a charge of its
//     instructions outside loops, and its frames taken from the depth
//     budget, given back when the function returns: one frame, and one
//     more for every 32 params and locals, so that the bound holds the
//     host's memory for the guest's stack, not only the count of calls.
//
// When a charge makes the fuel negative, or a function is entered with too
// few frames left, the guest traps (unreachable). After a trap the host
// tells which bound stopped it by reading the globals: fuel below zero, or
// depth at zero. A function that neither loops nor calls runs a bounded number
// of instructions and is left as it is, so every unbounded execution goes
// through a charge, and the cheap leaf functions pay nothing.
//
// A unit of fuel is one instruction counted statically: a branch that
// skips half a loop's body still pays for all of it. The count is an upper
// bound on work, independent of how busy the machine is.
//
// Function, global and type indices of the original module are unchanged
// (the globals and any block type are appended, no import is added), so
// names, exports and tables keep meaning what they meant.
package meter

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The exports Instrument adds.
const (
	FuelExport  = "lintel.fuel"  // i64: instructions the call may still run
	DepthExport = "lintel.depth" // i32: frames the call may still enter
)

// Budget is the fuel and depth a module starts with: what its start
// function and anything run before the host sets the globals may spend.
type Budget struct {
	Fuel  int64
	Depth int32
}

// section ids, in the order the binary format requires them.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secCode     = 10
)

var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

type section struct {
	id   byte
	body []byte
}

// Instrument returns a copy of the module binary wasm with fuel and depth
// metering, starting with budget b. It fails on a binary it cannot read;
// the result is otherwise left to the engine to validate.
func Instrument(wasm []byte, b Budget) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("invalid magic number")
	}
	if binary.LittleEndian.Uint32(wasm[4:8]) != 1 {
		return nil, fmt.Errorf("unsupported binary version %d", binary.LittleEndian.Uint32(wasm[4:8]))
	}
	var secs []section
	for r := (reader{b: wasm, pos: 8}); r.more(); {
		id := r.byte()
		n := r.u32()
		body := r.bytes(int(n))
		if r.err != nil {
			return nil, fmt.Errorf("section %d: %w", id, r.err)
		}
		if id != secCustom && sectionRank[id] == 0 {
			return nil, fmt.Errorf("unknown section id %d", id)
		}
		secs = append(secs, section{id, body})
	}
	m := &module{}
	if err := m.read(secs); err != nil {
		return nil, err
	}
	fuelIdx := m.importedGlobals + m.definedGlobals
	depthIdx := fuelIdx + 1

	code, err := m.rewriteCode(find(secs, secCode), fuelIdx, depthIdx)
	if err != nil {
		return nil, err
	}
	secs = put(secs, secCode, code)
	secs = put(secs, secType, m.typeSection(find(secs, secType)))

	globals := appendVec(find(secs, secGlobal), 2,
		append(append([]byte{0x7E, 0x01, 0x42}, sleb(b.Fuel)...), 0x0B),         // i64 mut = Fuel
		append(append([]byte{0x7F, 0x01, 0x41}, sleb(int64(b.Depth))...), 0x0B)) // i32 mut = Depth
	secs = put(secs, secGlobal, globals)

	exports := find(secs, secExport)
	if names, err := exportNames(exports); err != nil {
		return nil, err
	} else if names[FuelExport] || names[DepthExport] {
		return nil, fmt.Errorf("the module already exports %q or %q", FuelExport, DepthExport)
	}
	exports = appendVec(exports, 2, export(FuelExport, fuelIdx), export(DepthExport, depthIdx))
	secs = put(secs, secExport, exports)

	out := append([]byte(nil), wasm[:8]...)
	for _, s := range secs {
		out = append(out, s.id)
		out = append(out, uleb(uint64(len(s.body)))...)
		out = append(out, s.body...)
	}
	return out, nil
}

// module is what the rewrite needs to know of the original.
type module struct {
	types           []funcType
	extraTypes      [][]byte // appended block types, by their results
	importedFuncs   int
	importedGlobals int
	definedGlobals  int
	funcTypes       []uint32 // type index of each defined function
}

func (m *module) read(secs []section) error {
	for _, s := range secs {
		r := &reader{b: s.body}
		switch s.id {
		case secType:
			for range r.vec() {
				if r.byte() != 0x60 {
					return errors.New("type section: not a function type")
				}
				params := r.bytes(int(r.u32()))
				m.types = append(m.types, funcType{params, r.bytes(int(r.u32()))})
			}
		case secImport:
			for range r.vec() {
				r.bytes(int(r.u32())) // module
				r.bytes(int(r.u32())) // name
				switch kind := r.byte(); kind {
				case 0x00: // function
					r.u32()
					m.importedFuncs++
				case 0x01: // table: reftype, limits
					r.byte()
					r.limits()
				case 0x02: // memory
					r.limits()
				case 0x03: // global: valtype, mutability
					r.byte()
					r.byte()
					m.importedGlobals++
				default:
					return fmt.Errorf("import section: unknown import kind %d", kind)
				}
			}
		case secFunction:
			for range r.vec() {
				m.funcTypes = append(m.funcTypes, r.u32())
			}
		case secGlobal:
			m.definedGlobals = int(r.u32())
		}
		if r.err != nil {
			return fmt.Errorf("section %d: %w", s.id, r.err)
		}
	}
	for _, t := range m.funcTypes {
		if int(t) >= len(m.types) {
			return fmt.Errorf("function section: type index %d out of range", t)
		}
	}
	return nil
}

// blockType is the block type of a body wrapped in a block: no params,
// the function's results.
func (m *module) blockType(typeIdx uint32) []byte {
	results := m.types[typeIdx].results
	switch len(results) {
	case 0:
		return []byte{0x40}
	case 1:
		return results
	}
	for i, t := range m.types {
		if len(t.params) == 0 && string(t.results) == string(results) {
			return sleb(int64(i))
		}
	}
	for i, t := range m.extraTypes {
		if string(t) == string(results) {
			return sleb(int64(len(m.types) + i))
		}
	}
	m.extraTypes = append(m.extraTypes, results)
	return sleb(int64(len(m.types) + len(m.extraTypes) - 1))
}

func (m *module) typeSection(old []byte) []byte {
	if len(m.extraTypes) == 0 {
		return old
	}
	var entries [][]byte
	for _, results := range m.extraTypes {
		e := []byte{0x60, 0x00}
		e = append(e, uleb(uint64(len(results)))...)
		entries = append(entries, append(e, results...))
	}
	return appendVec(old, len(entries), entries...)
}

type funcType struct{ params, results []byte }

// find returns the body of the section with id, nil if there is none.
func find(secs []section, id byte) []byte {
	for _, s := range secs {
		if s.id == id {
			return s.body
		}
	}
	return nil
}

// put replaces the section with id, or inserts it where the format wants
// it.
func put(secs []section, id byte, body []byte) []section {
	if body == nil {
		return secs
	}
	for i := range secs {
		if secs[i].id == id {
			secs[i].body = body
			return secs
		}
	}
	at := len(secs)
	for i, s := range secs {
		if s.id != secCustom && sectionRank[s.id] > sectionRank[id] {
			at = i
			break
		}
	}
	return append(secs[:at], append([]section{{id, body}}, secs[at:]...)...)
}

// appendVec adds entries to a vector section's body (nil: a new one).
func appendVec(body []byte, n int, entries ...[]byte) []byte {
	var count uint32
	rest := body
	if len(body) > 0 {
		r := &reader{b: body}
		count = r.u32()
		rest = body[r.pos:]
	}
	out := uleb(uint64(count) + uint64(n))
	out = append(out, rest...)
	for _, e := range entries {
		out = append(out, e...)
	}
	return out
}

func export(name string, global int) []byte {
	e := append(uleb(uint64(len(name))), name...)
	e = append(e, 0x03) // global
	return append(e, uleb(uint64(global))...)
}

func exportNames(body []byte) (map[string]bool, error) {
	names := map[string]bool{}
	if body == nil {
		return names, nil
	}
	r := &reader{b: body}
	for range r.vec() {
		names[string(r.bytes(int(r.u32())))] = true
		r.byte()
		r.u32()
	}
	if r.err != nil {
		return nil, fmt.Errorf("export section: %w", r.err)
	}
	return names, nil
}
