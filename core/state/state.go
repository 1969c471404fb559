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
	"strings"
	"sync"
	"sync/atomic"
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

	// The bytes each namespace holds (keys, values and a per-entry
	// overhead): namespace -> *atomic.Int64, within limit.
	used  sync.Map
	limit atomic.Int64
}

// DefaultNamespaceLimit is the bytes one namespace (one filter's state,
// unless filters share one) may hold in a Memory store.
const DefaultNamespaceLimit = 64 << 20

// ErrFull is returned by a write that would take a namespace past its
// limit even after its expired keys were dropped.
var ErrFull = errors.New("the namespace's shared state is full")

type shard struct {
	mu sync.Mutex
	m  map[string]entry
}

type entry struct {
	value   []byte
	expires int64 // unix nanos; 0 = never
}

func (e entry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }

// NewMemory returns a Memory store that sweeps expired keys every
// interval (a minute when 0).
func NewMemory(interval time.Duration) *Memory {
	if interval <= 0 {
		interval = time.Minute
	}
	m := &Memory{seed: maphash.MakeSeed(), now: time.Now, stop: make(chan struct{}), done: make(chan struct{})}
	m.limit.Store(DefaultNamespaceLimit)
	for i := range m.shards {
		m.shards[i].m = map[string]entry{}
	}
	go m.sweep(interval)
	return m
}

func (m *Memory) shard(key string) *shard {
	return &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
}

// expiresAt is when a key written at now with ttl expires (0: never).
func expiresAt(now int64, ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return now + int64(ttl)
}

// SetNamespaceLimit sets the bytes one namespace may hold (keys, values
// and 64 bytes of overhead an entry).
func (m *Memory) SetNamespaceLimit(n int64) { m.limit.Store(n) }

// live returns the entry at key of s (locked) unless it has expired (then
// it is dropped).
func (m *Memory) live(s *shard, key string, now int64) (entry, bool) {
	e, ok := s.m[key]
	if ok && e.expired(now) {
		m.drop(s, key, e)
		return entry{}, false
	}
	return e, ok
}

// drop deletes key from s (locked) and gives its bytes back.
func (m *Memory) drop(s *shard, key string, e entry) {
	delete(s.m, key)
	m.charge(key, -cost(key, e.value))
}

func cost(key string, value []byte) int64 { return int64(len(key) + len(value) + 64) }

// namespaceOf is the namespace of a key as Namespace prefixes it ("ns\x00").
func namespaceOf(key string) string {
	if i := strings.IndexByte(key, 0); i >= 0 {
		return key[:i]
	}
	return ""
}

// charge adds delta bytes to key's namespace, refusing (false) an increase
// past the limit.
func (m *Memory) charge(key string, delta int64) bool {
	ns := namespaceOf(key)
	c, ok := m.used.Load(ns)
	if !ok {
		c, _ = m.used.LoadOrStore(strings.Clone(ns), new(atomic.Int64))
	}
	used := c.(*atomic.Int64)
	if n := used.Add(delta); delta > 0 && n > m.limit.Load() {
		used.Add(-delta)
		return false
	}
	return true
}

// update runs fn on key's current entry under its shard's lock and stores
// what fn returns (store false: nothing), charged to key's namespace. A
// namespace at its limit first has its expired keys dropped (under
// pressure, not only by the periodic sweep) and fn runs again; then the
// write fails with ErrFull.
func (m *Memory) update(key string, fn func(cur entry, ok bool, now int64) (next entry, store bool, err error)) error {
	for attempt := 0; ; attempt++ {
		s := m.shard(key)
		s.mu.Lock()
		now := m.now().UnixNano()
		// An expired entry is absent to fn; one about to be replaced is
		// overwritten in place rather than deleted and inserted again.
		held, present := s.m[key]
		cur, ok := held, present && !held.expired(now)
		if !ok {
			// Absent to fn, which is not to read it, but may write over
			// an expired value's buffer (see GCRA).
			cur = entry{value: held.value}
		}
		next, store, err := fn(cur, ok, now)
		if err == nil && store {
			delta := cost(key, next.value)
			if present {
				delta -= cost(key, held.value)
			}
			if delta == 0 || m.charge(key, delta) { // a value of the same size costs nothing more
				s.m[key] = next
				s.mu.Unlock()
				return nil
			}
		}
		if present && !ok {
			m.drop(s, key, held) // expired, and not replaced
		}
		s.mu.Unlock()
		if err != nil || !store {
			return err
		}
		if attempt > 0 {
			return ErrFull
		}
		m.reclaim(namespaceOf(key))
	}
}

// reclaim drops the expired keys of one namespace, one shard at a time.
func (m *Memory) reclaim(ns string) {
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		now := m.now().UnixNano()
		for k, e := range s.m {
			if e.expired(now) && namespaceOf(k) == ns {
				m.drop(s, k, e)
			}
		}
		s.mu.Unlock()
	}
}

func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	s := m.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := m.live(s, key, m.now().UnixNano())
	if !ok {
		return nil, false, nil
	}
	return bytes.Clone(e.value), true, nil
}

func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	value = bytes.Clone(value)
	return m.update(key, func(_ entry, _ bool, now int64) (entry, bool, error) {
		return entry{value, expiresAt(now, ttl)}, true, nil
	})
}

func (m *Memory) CompareAndSwap(_ context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	var swapped bool
	err := m.update(key, func(e entry, ok bool, now int64) (entry, bool, error) {
		swapped = !(old == nil && ok || old != nil && (!ok || !bytes.Equal(e.value, old)))
		return entry{bytes.Clone(new), expiresAt(now, ttl)}, swapped, nil
	})
	return swapped && err == nil, err
}

func (m *Memory) Increment(_ context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	var n int64
	err := m.update(key, func(e entry, ok bool, now int64) (entry, bool, error) {
		n = 0
		if ok {
			var err error
			if n, err = strconv.ParseInt(string(e.value), 10, 64); err != nil {
				return entry{}, false, ErrNotInteger
			}
		} else {
			e.expires = expiresAt(now, ttl)
		}
		n += delta
		return entry{strconv.AppendInt(nil, n, 10), e.expires}, true, nil
	})
	return n, err
}

func (m *Memory) Delete(_ context.Context, key string) error {
	s := m.shard(key)
	s.mu.Lock()
	if e, ok := s.m[key]; ok {
		m.drop(s, key, e)
	}
	s.mu.Unlock()
	return nil
}

func (m *Memory) GCRA(_ context.Context, key string, interval time.Duration, burst int) (Decision, error) {
	var d Decision
	err := m.update(key, func(e entry, ok bool, now int64) (entry, bool, error) {
		var tat int64
		if ok {
			tat, _ = strconv.ParseInt(string(e.value), 10, 64)
		}
		var next int64
		d, next = gcra(tat, now, int64(interval), burst)
		// A TAT as long as the value before it (nanoseconds since 1970
		// have had 19 digits since 2001) is written over that value's
		// buffer: a value of the same size is always stored, Get returns
		// copies, and every reader holds the shard's lock.
		var buf [20]byte
		v := strconv.AppendInt(buf[:0], next, 10)
		if len(v) == len(e.value) {
			v = e.value[:copy(e.value, v)]
		} else {
			v = bytes.Clone(v)
		}
		return entry{v, next}, d.Allowed, nil
	})
	return d, err
}

// Used reports the bytes (keys and values) held for namespace ns, what
// state.namespace_limit bounds.
func (m *Memory) Used(ns string) int64 {
	if c, ok := m.used.Load(ns); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
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
			if e.expired(now) {
				m.drop(s, k, e)
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
