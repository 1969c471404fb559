package meter

import "errors"

var errTruncated = errors.New("truncated")

// reader reads a module binary. The first error sticks: later reads
// return zeros, and callers check err once after a run of reads.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) more() bool { return r.err == nil && r.pos < len(r.b) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
	r.pos = len(r.b)
}

func (r *reader) byte() byte {
	if r.pos >= len(r.b) {
		r.fail(errTruncated)
		return 0
	}
	r.pos++
	return r.b[r.pos-1]
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b)-r.pos {
		r.fail(errTruncated)
		return nil
	}
	r.pos += n
	return r.b[r.pos-n : r.pos]
}

// u32 reads an unsigned LEB128 of at most 32 bits.
func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7F) << shift
		if c&0x80 == 0 {
			if v > 1<<32-1 {
				r.fail(errors.New("integer too large"))
			}
			return uint32(v)
		}
	}
	r.fail(errors.New("integer too long"))
	return 0
}

// sleb skips a signed LEB128 of at most max bytes.
func (r *reader) sleb(max int) {
	for range max {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail(errors.New("integer too long"))
}

// vec reads a vector's length; range over it to read the elements.
func (r *reader) vec() int {
	n := r.u32()
	if int(n) > len(r.b)-r.pos { // every element takes at least a byte
		r.fail(errTruncated)
		return 0
	}
	return int(n)
}

func (r *reader) limits() {
	switch flags := r.byte(); flags {
	case 0x00, 0x02: // min (shared)
		r.u32()
	case 0x01, 0x03: // min, max (shared)
		r.u32()
		r.u32()
	default:
		r.fail(errors.New("unsupported limits (64-bit memory?)"))
	}
}

// memarg reads a load's or store's alignment (with a memory index when
// its bit 6 is set) and offset.
func (r *reader) memarg() {
	if r.u32()&0x40 != 0 {
		r.u32()
	}
	r.u32()
}

// blockType reads a block type: empty (0x40), one value type, or a type
// index, all one signed LEB128 of 33 bits.
func (r *reader) blockType() { r.sleb(5) }

func uleb(v uint64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		out = append(out, c)
		if v == 0 {
			return out
		}
	}
}

func sleb(v int64) []byte {
	var out []byte
	for {
		c := byte(v & 0x7F)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(out, c)
		}
		out = append(out, c|0x80)
	}
}
