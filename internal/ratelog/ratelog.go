// Package ratelog keeps a repeated warning from flooding the log: the
// first line of a kind is written, the repeats within an interval are
// counted and reported with the next line written.
package ratelog

import (
	"sync"
	"time"
)

// Limiter allows one line per key per interval. The zero value allows
// one line per key every ten seconds. It is safe for concurrent use.
type Limiter struct {
	Interval time.Duration

	mu   sync.Mutex
	last map[string]*entry
}

type entry struct {
	at         time.Time
	suppressed int
}

// maxKeys bounds the keys remembered; past it the oldest knowledge is
// dropped (a key then logs once more).
const maxKeys = 1024

// Allow reports whether a line of kind key may be written now and, when
// it may, how many were held back since the last one.
func (l *Limiter) Allow(key string) (ok bool, suppressed int) {
	interval := l.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil || len(l.last) >= maxKeys {
		l.last = map[string]*entry{}
	}
	e := l.last[key]
	if e == nil {
		l.last[key] = &entry{at: now}
		return true, 0
	}
	if now.Sub(e.at) < interval {
		e.suppressed++
		return false, 0
	}
	suppressed = e.suppressed
	e.at, e.suppressed = now, 0
	return true, suppressed
}
