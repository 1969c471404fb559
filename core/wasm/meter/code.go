package meter

import (
	"errors"
	"fmt"
)

// rewriteCode instruments every function body of the code section.
func (m *module) rewriteCode(body []byte, fuel, depth int) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	r := &reader{b: body}
	n := r.u32()
	if r.err == nil && int(n) != len(m.funcTypes) {
		return nil, fmt.Errorf("code section has %d bodies for %d functions", n, len(m.funcTypes))
	}
	out := make([]byte, 0, len(body)+len(body)/4)
	out = append(out, uleb(uint64(n))...)
	for i := range int(n) {
		fn := r.bytes(int(r.u32()))
		if r.err != nil {
			return nil, fmt.Errorf("code section: %w", r.err)
		}
		f := &function{m: m, typeIdx: m.funcTypes[i], fuel: fuel, depth: depth}
		nf, err := f.rewrite(fn)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", m.importedFuncs+i, err)
		}
		out = append(out, uleb(uint64(len(nf)))...)
		out = append(out, nf...)
	}
	return out, nil
}

// function is one body being instrumented.
type function struct {
	m           *module
	typeIdx     uint32
	fuel, depth int

	// Found by the first pass: instructions charged at the function's
	// entry (outside loops) and at each loop's head, in order; whether
	// it calls (and so takes a frame).
	charges []int64
	calls   bool
	bulk    bool  // has a bulk memory or table instruction
	frames  int64 // taken from the depth budget on entry
}

// bytesPerFuelShift: a bulk instruction (memory.fill, memory.copy,
// memory.init and their table forms) pays one unit of fuel for every
// 1<<bytesPerFuelShift bytes or elements it may touch, about what the
// host's memmove does in the time of one instruction. Counting such an
// instruction as one would let a loop of them run for hours on one
// call's fuel.
const bytesPerFuelShift = 4

// valuesPerFrame is how many params and locals make a frame: a function
// with more takes a frame for each valuesPerFrame of them, so the depth
// bound also bounds the host's stack memory, not just the calls.
const valuesPerFrame = 32

func (f *function) rewrite(fn []byte) ([]byte, error) {
	r := &reader{b: fn}
	values := int64(len(f.m.types[f.typeIdx].params))
	for range r.vec() {
		values += int64(r.u32()) // count
		r.byte()                 // type
	}
	f.frames = 1 + values/valuesPerFrame
	if r.err != nil {
		return nil, fmt.Errorf("locals: %w", r.err)
	}
	locals := fn[:r.pos]
	code := fn[r.pos:]

	// First pass: count.
	f.charges = []int64{0}
	open := []int{0} // per open block: the charge it adds to
	err := walk(code, func(op byte, start, end int, final bool) {
		f.charges[open[len(open)-1]]++
		f.bulk = f.bulk || bulkSized(code[start:end])
		switch op {
		case opBlock, opIf:
			open = append(open, open[len(open)-1])
		case opLoop:
			f.charges = append(f.charges, 0)
			open = append(open, len(f.charges)-1)
		case opEnd:
			open = open[:len(open)-1]
		case opCall, opCallIndirect, opReturnCall, opReturnCallIndirect:
			f.calls = true
		}
	})
	if err != nil {
		return nil, err
	}

	// Second pass: write.
	out := make([]byte, 0, len(fn)+64)
	if f.bulk {
		// One more i32 local, after the others (no index moves), to hold
		// a bulk instruction's size while it is charged.
		out = appendLocal(out, locals, opI32)
	} else {
		out = append(out, locals...)
	}
	if f.calls {
		out = f.takeFrame(out)
		out = f.charge(out, f.charges[0])
		out = append(out, opBlock)
		out = append(out, f.m.blockType(f.typeIdx)...)
	}
	loops := 0
	_ = walk(code, func(op byte, start, end int, final bool) {
		switch {
		case final && f.calls:
			out = append(out, opEnd) // the wrapping block
			out = f.giveFrame(out)
		case op == opReturn || op == opReturnCall || op == opReturnCallIndirect:
			if f.calls {
				out = f.giveFrame(out)
			}
		}
		if f.bulk && bulkSized(code[start:end]) {
			out = f.chargeSize(out, uint64(values))
		}
		out = append(out, code[start:end]...)
		if op == opLoop {
			loops++
			out = f.charge(out, f.charges[loops])
		}
	})
	return out, nil
}

// charge subtracts n from the fuel and traps when it went below zero.
func (f *function) charge(out []byte, n int64) []byte {
	if n == 0 {
		return out
	}
	g := uleb(uint64(f.fuel))
	out = append(out, opGlobalGet)
	out = append(out, g...)
	out = append(out, opI64Const)
	out = append(out, sleb(n)...)
	out = append(out, opI64Sub, opGlobalSet)
	out = append(out, g...)
	out = append(out, opGlobalGet)
	out = append(out, g...)
	return append(out, opI64Const, 0, opI64LtS, opIf, blockEmpty, opUnreachable, opEnd)
}

// chargeSize charges a bulk instruction for its size, the i32 on top of
// the stack, which it leaves there (through the scratch local).
func (f *function) chargeSize(out []byte, scratch uint64) []byte {
	g, l := uleb(uint64(f.fuel)), uleb(scratch)
	out = append(out, opLocalTee)
	out = append(out, l...)
	out = append(out, opGlobalGet)
	out = append(out, g...)
	out = append(out, opLocalGet)
	out = append(out, l...)
	out = append(out, opI64ExtendI32U, opI64Const)
	out = append(out, sleb(bytesPerFuelShift)...)
	out = append(out, opI64ShrU, opI64Sub, opGlobalSet)
	out = append(out, g...)
	out = append(out, opGlobalGet)
	out = append(out, g...)
	return append(out, opI64Const, 0, opI64LtS, opIf, blockEmpty, opUnreachable, opEnd)
}

// bulkSized reports whether instr (an instruction's bytes) is a bulk
// instruction whose work grows with the size on top of the stack:
// memory.init, memory.copy, memory.fill, table.init, table.copy,
// table.grow and table.fill.
func bulkSized(instr []byte) bool {
	if len(instr) < 2 || instr[0] != 0xFC {
		return false
	}
	r := &reader{b: instr, pos: 1}
	switch r.u32() {
	case 8, 10, 11, 12, 14, 15, 17:
		return true
	}
	return false
}

// appendLocal appends a function's locals declaration (a vector of
// count-type groups) with one more local of type t at its end.
func appendLocal(out, locals []byte, t byte) []byte {
	r := &reader{b: locals}
	n := r.u32()
	out = append(out, uleb(uint64(n)+1)...)
	out = append(out, locals[r.pos:]...)
	return append(out, 1, t)
}

// takeFrame takes the function's frames from the depth budget; with too
// few left it sets the budget to zero (how the host tells this trap) and
// traps.
func (f *function) takeFrame(out []byte) []byte {
	g := uleb(uint64(f.depth))
	k := sleb(f.frames)
	out = append(out, opGlobalGet)
	out = append(out, g...)
	out = append(out, opI32Const)
	out = append(out, k...)
	out = append(out, opI32LtU, opIf, blockEmpty, opI32Const, 0, opGlobalSet)
	out = append(out, g...)
	out = append(out, opUnreachable, opEnd, opGlobalGet)
	out = append(out, g...)
	out = append(out, opI32Const)
	out = append(out, k...)
	out = append(out, opI32Sub, opGlobalSet)
	return append(out, g...)
}

// giveFrame gives the function's frames back.
func (f *function) giveFrame(out []byte) []byte {
	g := uleb(uint64(f.depth))
	out = append(out, opGlobalGet)
	out = append(out, g...)
	out = append(out, opI32Const)
	out = append(out, sleb(f.frames)...)
	out = append(out, opI32Add, opGlobalSet)
	return append(out, g...)
}

// Opcodes the rewrite looks at or writes.
const (
	opUnreachable        = 0x00
	opBlock              = 0x02
	opLoop               = 0x03
	opIf                 = 0x04
	opElse               = 0x05
	opEnd                = 0x0B
	opReturn             = 0x0F
	opCall               = 0x10
	opCallIndirect       = 0x11
	opReturnCall         = 0x12
	opReturnCallIndirect = 0x13
	opLocalGet           = 0x20
	opLocalTee           = 0x22
	opGlobalGet          = 0x23
	opGlobalSet          = 0x24
	opI32Const           = 0x41
	opI64Const           = 0x42
	opI32LtU             = 0x49
	opI64LtS             = 0x53
	opI32Add             = 0x6A
	opI32Sub             = 0x6B
	opI64Sub             = 0x7D
	opI64ShrU            = 0x88
	opI64ExtendI32U      = 0xAD
	opI32                = 0x7F // the value type
	blockEmpty           = 0x40
)

// walk calls visit for each instruction of a function body's expression,
// with its opcode (the prefix byte for prefixed ones) and its bytes
// code[start:end]; final marks the end that closes the function. It
// fails on an opcode it does not know, so nothing passes unmetered.
func walk(code []byte, visit func(op byte, start, end int, final bool)) error {
	r := &reader{b: code}
	nesting := 1
	for r.more() {
		start := r.pos
		op := r.byte()
		if err := immediates(r, op); err != nil {
			return fmt.Errorf("at byte %d: %w", start, err)
		}
		if r.err != nil {
			return fmt.Errorf("at byte %d: %w", start, r.err)
		}
		switch op {
		case opBlock, opLoop, opIf:
			nesting++
		case opEnd:
			nesting--
		}
		visit(op, start, r.pos, nesting == 0)
		if nesting == 0 {
			if r.more() {
				return fmt.Errorf("at byte %d: code after the function's end", r.pos)
			}
			return nil
		}
	}
	return errors.New("function body has no end")
}

// immediates reads the immediates of the instruction whose opcode was
// just read.
func immediates(r *reader, op byte) error {
	switch {
	case op == opBlock || op == opLoop || op == opIf:
		r.blockType()
	case op == 0x0C || op == 0x0D: // br, br_if
		r.u32()
	case op == 0x0E: // br_table
		for range r.vec() {
			r.u32()
		}
		r.u32()
	case op == opCall || op == opReturnCall || op == 0xD2: // ref.func
		r.u32()
	case op == opCallIndirect || op == opReturnCallIndirect:
		r.u32()
		r.u32()
	case op == 0x1C: // select t*
		r.bytes(int(r.u32()))
	case op >= 0x20 && op <= 0x26: // locals, globals, table.get/set
		r.u32()
	case op >= 0x28 && op <= 0x3E: // loads and stores
		r.memarg()
	case op == 0x3F || op == 0x40: // memory.size, memory.grow
		r.u32()
	case op == opI32Const:
		r.sleb(5)
	case op == opI64Const:
		r.sleb(10)
	case op == 0x43: // f32.const
		r.bytes(4)
	case op == 0x44: // f64.const
		r.bytes(8)
	case op == 0xD0: // ref.null
		r.byte()
	case op == 0x00, op == 0x01, op == opElse, op == opEnd, op == opReturn,
		op == 0x1A, op == 0x1B, op >= 0x45 && op <= 0xC4, op == 0xD1:
		// no immediates
	case op == 0xFC:
		return prefixedFC(r)
	case op == 0xFD:
		return prefixedFD(r)
	case op == 0xFE:
		return prefixedFE(r)
	default:
		return fmt.Errorf("unknown opcode 0x%02x", op)
	}
	return nil
}

// prefixedFC: saturating truncations, bulk memory and table instructions.
func prefixedFC(r *reader) error {
	switch sub := r.u32(); {
	case sub <= 7: // trunc_sat
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.grow/size/fill
		r.u32()
	default:
		return fmt.Errorf("unknown opcode 0xfc %d", sub)
	}
	return nil
}

// prefixedFD: SIMD.
func prefixedFD(r *reader) error {
	switch sub := r.u32(); {
	case sub <= 11, sub == 92, sub == 93: // loads, stores, load_zero
		r.memarg()
	case sub == 12, sub == 13: // v128.const, i8x16.shuffle
		r.bytes(16)
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		r.byte()
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		r.memarg()
		r.byte()
	case sub <= 0x113: // everything else, relaxed SIMD included
	default:
		return fmt.Errorf("unknown opcode 0xfd %d", sub)
	}
	return nil
}

// prefixedFE: threads (atomics).
func prefixedFE(r *reader) error {
	switch sub := r.u32(); {
	case sub == 3: // atomic.fence
		r.byte()
	case sub <= 0x4E:
		r.memarg()
	default:
		return fmt.Errorf("unknown opcode 0xfe %d", sub)
	}
	return nil
}
