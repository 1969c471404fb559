package config

import (
	"strconv"
	"strings"
)

// positions maps every key path of a TOML document to the line it is
// written on. Paths use the same spelling as the decoder's error keys:
// dotted, with array indices ("routes[1].aggregate.parts[0].service").
//
// BurntSushi/toml keeps key positions private and does not index arrays of
// tables, so Lintel scans the document once more for positions only. The
// scanner assumes the document has already parsed without error; on input
// it does not understand it stops early, which only costs line numbers.
type positions map[string]int

// line returns the line of key, or of its nearest ancestor that has one.
func (p positions) line(key string) int {
	for key != "" {
		if l, ok := p[key]; ok {
			return l
		}
		key = parentKey(key)
	}
	return 0
}

// parentKey strips the last element of a key path: "a.b[2]" -> "a.b",
// "a.b" -> "a".
func parentKey(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// joinKey appends one key to a path, quoting it when it is not bare.
func joinKey(parent, key string) string {
	if !isBare(key) {
		key = strconv.Quote(key)
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexKey(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

func isBare(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isBareByte(s[i]) {
			return false
		}
	}
	return true
}

func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

type scanner struct {
	src    string
	i      int
	line   int
	pos    positions
	arrays map[string]int // resolved path of an array of tables -> elements so far
}

func scanPositions(src string) positions {
	s := &scanner{src: src, line: 1, pos: positions{}, arrays: map[string]int{}}
	defer func() { _ = recover() }() // a scanner bug costs line numbers, never a panic
	s.document()
	return s.pos
}

func (s *scanner) peek() byte {
	if s.i < len(s.src) {
		return s.src[s.i]
	}
	return 0
}

func (s *scanner) next() byte {
	c := s.peek()
	s.i++
	if c == '\n' {
		s.line++
	}
	return c
}

// skip passes spaces, tabs and comments; with newlines, line ends too.
func (s *scanner) skip(newlines bool) {
	for s.i < len(s.src) {
		switch c := s.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			s.next()
		case c == '\n' && newlines:
			s.next()
		case c == '#':
			for s.i < len(s.src) && s.peek() != '\n' {
				s.next()
			}
		default:
			return
		}
	}
}

func (s *scanner) document() {
	table := ""
	for {
		s.skip(true)
		if s.i >= len(s.src) {
			return
		}
		if s.peek() == '[' {
			table = s.header()
			continue
		}
		line := s.line
		key := s.key(table)
		if key == "" {
			return
		}
		s.pos[key] = line
		s.skip(false)
		if s.next() != '=' {
			return
		}
		s.value(key)
	}
}

// header reads "[a.b]" or "[[a.b]]" and returns the resolved table path.
func (s *scanner) header() string {
	line := s.line
	s.next()
	array := s.peek() == '['
	if array {
		s.next()
	}
	var parts []string
	for {
		s.skip(false)
		parts = append(parts, s.keyPart())
		s.skip(false)
		if s.peek() != '.' {
			break
		}
		s.next()
	}
	for s.i < len(s.src) && s.peek() != '\n' && s.peek() != '#' {
		s.next()
	}
	path := ""
	for i, p := range parts {
		path = joinKey(path, p)
		if n, ok := s.arrays[path]; ok && (i < len(parts)-1 || !array) {
			path = indexKey(path, n-1)
		}
	}
	if array {
		n := s.arrays[path]
		s.arrays[path] = n + 1
		s.pos[path] = line
		path = indexKey(path, n)
	}
	s.pos[path] = line
	return path
}

// key reads a possibly dotted key and returns it joined onto table.
func (s *scanner) key(table string) string {
	path := table
	for {
		s.skip(false)
		p := s.keyPart()
		if p == "" && s.peek() != '"' && s.peek() != '\'' {
			return ""
		}
		path = joinKey(path, p)
		s.skip(false)
		if s.peek() != '.' {
			return path
		}
		s.pos[path] = s.line
		s.next()
	}
}

func (s *scanner) keyPart() string {
	switch s.peek() {
	case '"', '\'':
		return s.str()
	}
	start := s.i
	for s.i < len(s.src) && isBareByte(s.peek()) {
		s.next()
	}
	return s.src[start:s.i]
}

// str reads any of TOML's four string forms and returns its contents
// (escapes in basic strings are kept as written; keys rarely hold them).
func (s *scanner) str() string {
	q := s.next()
	triple := strings.HasPrefix(s.src[s.i:], string([]byte{q, q}))
	if triple {
		s.next()
		s.next()
	}
	var b strings.Builder
	for s.i < len(s.src) {
		c := s.next()
		if c == '\\' && q == '"' {
			b.WriteByte(c)
			b.WriteByte(s.next())
			continue
		}
		if c == q {
			if !triple {
				return b.String()
			}
			if strings.HasPrefix(s.src[s.i:], string([]byte{q, q})) {
				s.next()
				s.next()
				for s.peek() == q { // up to two quotes may end the content
					b.WriteByte(s.next())
				}
				return b.String()
			}
		}
		b.WriteByte(c)
	}
	return b.String()
}

func (s *scanner) value(path string) {
	s.skip(false)
	switch s.peek() {
	case '"', '\'':
		s.str()
	case '[':
		s.next()
		for n := 0; ; n++ {
			s.skip(true)
			if s.peek() == ']' || s.i >= len(s.src) {
				s.next()
				return
			}
			el := indexKey(path, n)
			s.pos[el] = s.line
			s.value(el)
			s.skip(true)
			if s.peek() == ',' {
				s.next()
			}
		}
	case '{':
		s.next()
		for {
			s.skip(true)
			if s.peek() == '}' || s.i >= len(s.src) {
				s.next()
				return
			}
			line := s.line
			key := s.key(path)
			if key == "" {
				return
			}
			s.pos[key] = line
			s.skip(false)
			s.next() // '='
			s.value(key)
			s.skip(true)
			if s.peek() == ',' {
				s.next()
			}
		}
	default:
		for s.i < len(s.src) {
			switch s.peek() {
			case ',', ']', '}', '\n', '#':
				return
			}
			s.next()
		}
	}
}
