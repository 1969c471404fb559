package state

import (
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
