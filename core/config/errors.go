package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is one problem in a configuration file. Its text has the form
// "FILE:LINE: key: what is wrong", which editors and CI logs link to the
// line. Line is 0 when the problem has no place in the file (a missing
// file, say); the text then omits it.
type Error struct {
	File string
	Line int
	Key  string // dotted path with array indices, e.g. "routes[2].service"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one configuration, ordered by line.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Sort orders the problems by line, then key, so output is stable.
func (es Errors) Sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Key < es[j].Key
	})
}

// errs collects positioned errors for one file.
type errs struct {
	file   string
	pos    positions
	list   Errors
	failed map[string]bool // keys that already have an error, after freeze
}

// freeze remembers the keys that have errors so far: later errors about
// those keys or keys inside them are dropped as consequences.
func (c *errs) freeze() {
	c.failed = map[string]bool{}
	for _, e := range c.list {
		c.failed[e.Key] = true
	}
}

func (c *errs) add(key, format string, args ...any) {
	for k := key; k != ""; k = parentKey(k) {
		if c.failed[k] {
			return
		}
	}
	c.list = append(c.list, &Error{File: c.file, Line: c.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	c.list.Sort()
	return c.list
}
