// Package state is the shared state plugins keep between requests: atomic
// get, set, compare-and-swap and increment, with expiry. Memory is the
// in-process backend; a Redis backend shares state across a fleet behind
// the same interface.
package state

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"time"
)

var (
	_ Store = (*Memory)(nil)
	_ Store = (*Redis)(nil)
	_ Store = (*namespaced)(nil)
)

// Store is a key-value store whose every operation is atomic. A ttl of 0
// means the key does not expire. Values are bytes; Increment stores a
// decimal integer, which Get returns as such.
type Store interface {
	Get(ctx context.Context, key string) (value []byte, ok bool, err error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
	// CompareAndSwap sets key to new if its value is old; a nil old means
	// "only if absent". It reports whether it swapped.
	CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error)
	// Increment adds delta to the integer at key (absent counts as 0) and
	// returns the result. ttl applies when the increment creates the key.
	Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error)
	Delete(ctx context.Context, key string) error
	// GCRA decides one request against a rate limit kept at key, by the
	// generic cell rate algorithm: requests are admitted at one per
	// interval, with burst admitted at once from idle. It is atomic, and
	// the store's own clock decides (a Redis server's, so a fleet agrees
	// whatever its clocks say). The key expires once the limit is full
	// again.
	GCRA(ctx context.Context, key string, interval time.Duration, burst int) (Decision, error)
	Close() error
}

// Decision is a GCRA outcome, in the terms of the IETF RateLimit fields.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests would be admitted now.
	Remaining int
	// RetryAfter is how long a refused request should wait (0 if allowed).
	RetryAfter time.Duration
	// Reset is how long until the limit is full again.
	Reset time.Duration
}

// gcra is the algorithm on a theoretical arrival time tat (0: none) at
// time now, both in nanoseconds; it returns the decision and the new tat
// (unchanged when refused). The Redis script is the same computation.
func gcra(tat, now, interval int64, burst int) (Decision, int64) {
	tat = max(tat, now)
	tau := interval * int64(burst-1) // how far ahead of now tat may run
	if tat-now > tau {
		return Decision{RetryAfter: time.Duration(tat - now - tau), Reset: time.Duration(tat - now)}, tat
	}
	next := tat + interval
	return Decision{Allowed: true, Remaining: int((tau - (next - now) + interval) / interval), Reset: time.Duration(next - now)}, next
}

// ErrNotInteger is returned by Increment on a value that is not one.
var ErrNotInteger = errors.New("value is not an integer")

// Memory is a Store in this process: sharded maps under mutexes, expired
// keys dropped when touched and swept in the background.
type Memory struct {
	seed   maphash.Seed
	shards [64]shard
	now    func() time.Time
	stop   chan struct{}
	done   chan struct{}
}

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	value   []byte
	expires int64 // unix nanos; 0 = never
}

// NewMemory returns a Memory store that sweeps expired keys every
// interval (a minute when 0).
func NewMemory(interval time.Duration) *Memory {
	if interval <= 0 {
		interval = time.Minute
	}
	m := &Memory{seed: maphash.MakeSeed(), now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	for i := range m.shards {
		m.shards[i].m = map[string]entry{}
	}
	go m.sweep(interval)
	return m
}

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}

func (m *Memory) expiry(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return m.now().Add(ttl).UnixNano()
}

// live returns the entry at key unless it has expired (then it is dropped).
func (s *shard) live(key string, now int64) (entry, bool) {
	e, ok := s.m[key]
	if ok && e.expires != 0 && e.expires <= now {
		delete(s.m, key)
		return entry{}, false
	}
	return e, ok
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, m.now().UnixNano())
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(e.value), true, nil
}

func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	s := m.shard(key)
	s.mu.Lock()
	s.m[key] = entry{bytes.Clone(value), m.expiry(ttl)}
	s.mu.Unlock()
	return nil
}

func (m *Memory) CompareAndSwap(_ context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, m.now().UnixNano())
	if old == nil && ok || old != nil && (!ok || !bytes.Equal(e.value, old)) {
		return false, nil
	}
	s.m[key] = entry{bytes.Clone(new), m.expiry(ttl)}
	return true, nil
}

func (m *Memory) Increment(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.live(key, m.now().UnixNano())
	var n int64
	if ok {
		var err error
		if n, err = strconv.ParseInt(string(e.value), 10, 64); err != nil {
			return 0, ErrNotInteger
		}
	} else {
		e.expires = m.expiry(ttl)
	}
	n += delta
	s.m[key] = entry{strconv.AppendInt(nil, n, 10), e.expires}
	return n, nil
}

func (m *Memory) Delete(_ context.Context, key string) error {
	s := m.shard(key)
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

func (m *Memory) GCRA(_ context.Context, key string, interval time.Duration, burst int) (Decision, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.now().UnixNano()
	var tat int64
	if e, ok := s.live(key, now); ok {
		tat, _ = strconv.ParseInt(string(e.value), 10, 64)
	}
	d, next := gcra(tat, now, int64(interval), burst)
	if d.Allowed {
		s.m[key] = entry{strconv.AppendInt(nil, next, 10), next}
	}
	return d, nil
}

// Len counts the keys held, expired ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}

// Close stops the sweeper.
func (m *Memory) Close() error {
	select {
	case <-m.stop:
	default:
		close(m.stop)
		<-m.done
	}
	return nil
}

// sweep drops expired keys, one shard at a time so no lock is held long.
func (m *Memory) sweep(interval time.Duration) {
	defer close(m.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.Sweep()
		}
	}
}

// Sweep drops every expired key now.
func (m *Memory) Sweep() {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		now := m.now().UnixNano()
		for k, e := range s.m {
			if e.expires != 0 && e.expires <= now {
				delete(s.m, k)
			}
		}
		s.mu.Unlock()
	}
}

// Namespace prefixes every key with ns, so stores of different filters
// cannot see one another's keys.
func Namespace(s Store, ns string) Store { return &namespaced{s, ns + "\x00"} }

type namespaced struct {
	Store
	prefix string
}

func (n *namespaced) Get(ctx context.Context, key string) ([]byte, bool, error) {
	return n.Store.Get(ctx, n.prefix+key)
}

func (n *namespaced) Set(ctx context.Context, key string, v []byte, ttl time.Duration) error {
	return n.Store.Set(ctx, n.prefix+key, v, ttl)
}

func (n *namespaced) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	return n.Store.CompareAndSwap(ctx, n.prefix+key, old, new, ttl)
}

func (n *namespaced) Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	return n.Store.Increment(ctx, n.prefix+key, delta, ttl)
}

func (n *namespaced) GCRA(ctx context.Context, key string, interval time.Duration, burst int) (Decision, error) {
	return n.Store.GCRA(ctx, n.prefix+key, interval, burst)
}

func (n *namespaced) Delete(ctx context.Context, key string) error {
	return n.Store.Delete(ctx, n.prefix+key)
}

// Close does nothing: the underlying store is shared.
func (n *namespaced) Close() error { return nil }
