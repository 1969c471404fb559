package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var ctx = context.Background()

func TestMemoryOperations(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	testOperations(t, m)
}

// testOperations is the contract every Store keeps.
func testOperations(t *testing.T, m Store) {
	if _, ok, _ := m.Get(ctx, "k"); ok {
		t.Fatal("empty store has k")
	}
	m.Set(ctx, "k", []byte("v1"), 0)
	if v, ok, _ := m.Get(ctx, "k"); !ok || string(v) != "v1" {
		t.Fatalf("Get = %q %v", v, ok)
	}
	if ok, _ := m.CompareAndSwap(ctx, "k", []byte("nope"), []byte("v2"), 0); ok {
		t.Error("CAS with the wrong old value swapped")
	}
	if ok, _ := m.CompareAndSwap(ctx, "k", nil, []byte("v2"), 0); ok {
		t.Error("CAS 'only if absent' swapped a present key")
	}
	if ok, _ := m.CompareAndSwap(ctx, "k", []byte("v1"), []byte("v2"), 0); !ok {
		t.Error("CAS with the right old value did not swap")
	}
	if ok, _ := m.CompareAndSwap(ctx, "new", nil, []byte("x"), 0); !ok {
		t.Error("CAS 'only if absent' on an absent key did not swap")
	}
	if n, _ := m.Increment(ctx, "c", 5, 0); n != 5 {
		t.Errorf("Increment from absent = %d", n)
	}
	if n, _ := m.Increment(ctx, "c", -2, 0); n != 3 {
		t.Errorf("Increment = %d", n)
	}
	if v, _, _ := m.Get(ctx, "c"); string(v) != "3" {
		t.Errorf("counter reads %q", v)
	}
	if _, err := m.Increment(ctx, "k", 1, 0); !errors.Is(err, ErrNotInteger) {
		t.Errorf("Increment on text: %v", err)
	}
	m.Delete(ctx, "k")
	if _, ok, _ := m.Get(ctx, "k"); ok {
		t.Error("deleted key still there")
	}
}

func TestMemoryTTL(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	now := time.Unix(1000, 0)
	m.now = func() time.Time { return now }
	m.Set(ctx, "a", []byte("x"), time.Second)
	m.Increment(ctx, "n", 1, time.Second)
	now = now.Add(500 * time.Millisecond)
	// The TTL of a counter is set when it is created, not on every hit.
	m.Increment(ctx, "n", 1, time.Second)
	if _, ok, _ := m.Get(ctx, "a"); !ok {
		t.Fatal("expired too early")
	}
	now = now.Add(600 * time.Millisecond)
	if _, ok, _ := m.Get(ctx, "a"); ok {
		t.Error("a outlived its TTL")
	}
	if n, _ := m.Increment(ctx, "n", 1, time.Second); n != 1 {
		t.Errorf("counter after expiry = %d, want a fresh 1", n)
	}
	// Expired keys nobody touches are reclaimed by the sweep.
	for i := range 100 {
		m.Set(ctx, fmt.Sprint("idle", i), []byte("x"), time.Second)
	}
	now = now.Add(2 * time.Second)
	m.Sweep()
	if n := m.Len(); n != 0 {
		t.Errorf("%d keys left after the sweep", n)
	}
}

// TestMemoryHammer: many goroutines racing increments and CAS loops lose
// no update.
func TestMemoryHammer(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	testHammer(t, m, 500)
}

func testHammer(t *testing.T, m Store, each int) {
	const workers = 16
	var wg sync.WaitGroup
	var casRetries atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				m.Increment(ctx, "inc", 1, 0)
				for {
					old, ok, _ := m.Get(ctx, "cas")
					var n int
					if ok {
						n, _ = strconv.Atoi(string(old))
					} else {
						old = nil
					}
					if swapped, _ := m.CompareAndSwap(ctx, "cas", old, []byte(strconv.Itoa(n+1)), 0); swapped {
						break
					}
					casRetries.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	for _, k := range []string{"inc", "cas"} {
		if v, _, _ := m.Get(ctx, k); string(v) != strconv.Itoa(workers*each) {
			t.Errorf("%s = %s, want %d", k, v, workers*each)
		}
	}
	t.Logf("CAS retries under contention: %d", casRetries.Load())
}

func TestNamespacesAreIsolated(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	testNamespaces(t, m)
}

func testNamespaces(t *testing.T, m Store) {
	a, b := Namespace(m, "a"), Namespace(m, "b")
	a.Set(ctx, "k", []byte("from a"), 0)
	if _, ok, _ := b.Get(ctx, "k"); ok {
		t.Error("namespace b sees a's key")
	}
	b.Delete(ctx, "k")
	if v, _, _ := a.Get(ctx, "k"); string(v) != "from a" {
		t.Error("b deleted a's key")
	}
}

func BenchmarkMemory(b *testing.B) {
	m := NewMemory(time.Hour)
	defer m.Close()
	b.Run("increment", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Increment(ctx, "hot", 1, time.Minute)
			}
		})
	})
	b.Run("get", func(b *testing.B) {
		m.Set(ctx, "g", []byte("value"), 0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Get(ctx, "g")
			}
		})
	})
}

func TestMemoryGCRA(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	testGCRA(t, m)
}

// testGCRA: from idle, exactly burst requests are admitted however many
// race, each told a different remaining count; refusals say how long to
// wait; the limit refills at its rate; and the key goes away once full.
func testGCRA(t *testing.T, s Store) {
	const burst, racers = 5, 40
	var wg sync.WaitGroup
	decisions := make(chan Decision, racers)
	for range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := s.GCRA(ctx, "slow", time.Hour, burst)
			if err != nil {
				t.Error(err)
			}
			decisions <- d
		}()
	}
	wg.Wait()
	close(decisions)
	remaining := map[int]bool{}
	for d := range decisions {
		switch {
		case d.Allowed:
			if remaining[d.Remaining] || d.RetryAfter != 0 {
				t.Errorf("allowed decision %+v: remaining counts must differ, no retry", d)
			}
			remaining[d.Remaining] = true
		case d.RetryAfter <= 0 || d.RetryAfter > time.Hour || d.Reset < 4*time.Hour:
			t.Errorf("refused decision %+v: want retry in (0, 1h] and reset near 5h", d)
		}
	}
	if len(remaining) != burst || !remaining[0] || !remaining[burst-1] {
		t.Errorf("admitted with remaining %v, want exactly %d (0..%d)", remaining, burst, burst-1)
	}

	const interval = 100 * time.Millisecond
	if d, _ := s.GCRA(ctx, "fast", interval, 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("first request %+v", d)
	}
	d, _ := s.GCRA(ctx, "fast", interval, 1)
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > interval {
		t.Fatalf("second request at once %+v, want refused with retry <= %v", d, interval)
	}
	time.Sleep(d.RetryAfter + 20*time.Millisecond)
	if d, _ := s.GCRA(ctx, "fast", interval, 1); !d.Allowed {
		t.Errorf("after the retry time: %+v, want allowed", d)
	}
	time.Sleep(interval + 50*time.Millisecond)
	if _, ok, _ := s.Get(ctx, "fast"); ok {
		t.Error("the key outlived its full limit")
	}
}

// TestMemoryNamespaceIsBounded: attacker-chosen keys (5,000 of 60 KiB with a
// 100 ms TTL) were all still held 300 ms later, until the minute's sweep.
// A namespace holds at most its limit; expired keys are dropped when it is
// reached; then writes fail with ErrFull; other namespaces are untouched.
func TestMemoryNamespaceIsBounded(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	m.SetNamespaceLimit(100 << 10)
	a, b := Namespace(m, "a"), Namespace(m, "b")
	value := bytes.Repeat([]byte("v"), 10<<10)
	n := 0
	for ; n < 20; n++ {
		if err := a.Set(ctx, fmt.Sprint("k", n), value, 100*time.Millisecond); err != nil {
			if !errors.Is(err, ErrFull) {
				t.Fatal(err)
			}
			break
		}
	}
	if n < 8 || n > 10 {
		t.Errorf("%d values of 10 KiB fit in 100 KiB", n)
	}
	if err := b.Set(ctx, "k", value, 0); err != nil {
		t.Errorf("another namespace: %v", err)
	}
	if _, err := a.CompareAndSwap(ctx, "cas", nil, value, 0); !errors.Is(err, ErrFull) {
		t.Errorf("a full namespace took a compare-and-swap: %v", err)
	}
	// Once they expire, the pressure of the next write drops them.
	now = now.Add(300 * time.Millisecond)
	if err := a.Set(ctx, "fresh", value, 0); err != nil {
		t.Errorf("a write after the keys expired: %v", err)
	}
	if l := m.Len(); l != 2 {
		t.Errorf("%d keys held, want 2 (fresh and b's; the expired ones dropped)", l)
	}
	// Deleting gives bytes back.
	a.Delete(ctx, "fresh")
	for i := range 8 {
		if err := a.Set(ctx, fmt.Sprint("again", i), value, 0); err != nil {
			t.Fatalf("after a delete, write %d: %v", i, err)
		}
	}
}

// TestExpiredKeyReplacedInPlaceKeepsItsAccount: a write over an expired
// key replaces it where it is instead of dropping and inserting it; the
// namespace's account holds that one key all along, and an expired key
// a write could not replace is still dropped.
func TestExpiredKeyReplacedInPlaceKeepsItsAccount(t *testing.T) {
	m := NewMemory(time.Hour)
	defer m.Close()
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	a := Namespace(m, "a")
	if _, err := a.GCRA(ctx, "k", time.Millisecond, 1); err != nil {
		t.Fatal(err)
	}
	one := m.Used("a")
	for range 5 {
		now = now.Add(time.Second) // the key's TAT has passed: it is expired
		d, err := a.GCRA(ctx, "k", time.Millisecond, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
		if used, n := m.Used("a"), m.Len(); used != one || n != 1 {
			t.Fatalf("%d bytes in %d keys after replacing an expired key, want %d in 1", used, n, one)
		}
	}
	// A compare-and-swap that does not swap leaves the expired key dropped.
	now = now.Add(time.Second)
	if swapped, err := a.CompareAndSwap(ctx, "k", []byte("other"), []byte("x"), 0); err != nil || swapped {
		t.Fatalf("swapped %v, %v", swapped, err)
	}
	if used, n := m.Used("a"), m.Len(); used != 0 || n != 0 {
		t.Errorf("%d bytes in %d keys after an expired key was read, want none", used, n)
	}
}
