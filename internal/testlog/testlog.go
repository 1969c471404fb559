// Package testlog is a log buffer for tests: written by a gateway or a
// process while the test reads it.
package testlog

import (
	"strings"
	"sync"
	"time"
)

// Buffer collects log output; safe to read while it is written.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WaitFor reports whether the log comes to hold every one of lines
// within 10 s.
func (l *Buffer) WaitFor(lines ...string) bool {
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		s := l.String()
		all := true
		for _, line := range lines {
			all = all && strings.Contains(s, line)
		}
		if all || time.Now().After(deadline) {
			return all
		}
	}
}
