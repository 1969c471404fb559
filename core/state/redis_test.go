package state

import (
	"net"
	"testing"
	"time"

	"github.com/lintelhq/lintel/core/state/statetest"
)

func newRedis(t *testing.T) *Redis {
	r, err := NewRedis(RedisOptions{URL: statetest.RedisServer(t), Timeout: time.Second, Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRedisStore(t *testing.T) {
	r := newRedis(t)
	t.Run("operations", func(t *testing.T) { testOperations(t, r) })
	t.Run("hammer", func(t *testing.T) { testHammer(t, r, 100) })
	t.Run("namespaces", func(t *testing.T) { testNamespaces(t, r) })
	t.Run("gcra", func(t *testing.T) { testGCRA(t, r) })
	t.Run("ttl", func(t *testing.T) {
		r.Set(ctx, "t", []byte("x"), 300*time.Millisecond)
		r.Increment(ctx, "ti", 1, 300*time.Millisecond)
		r.Increment(ctx, "ti", 1, 300*time.Millisecond)
		if v, ok, _ := r.Get(ctx, "ti"); !ok || string(v) != "2" {
			t.Fatalf("counter %q %v", v, ok)
		}
		time.Sleep(600 * time.Millisecond)
		if _, ok, _ := r.Get(ctx, "t"); ok {
			t.Error("t outlived its TTL")
		}
		if n, _ := r.Increment(ctx, "ti", 1, 0); n != 1 {
			t.Errorf("counter after expiry = %d", n)
		}
	})
	t.Run("prefix", func(t *testing.T) {
		r.Set(ctx, "p", []byte("v"), 0)
		raw, err := r.c.Get(ctx, "test:p").Result()
		if err != nil || raw != "v" {
			t.Errorf("key not stored under the deployment prefix: %q %v", raw, err)
		}
	})
}

func TestRedisUnreachableFailsOperations(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	r, err := NewRedis(RedisOptions{URL: "redis://" + addr, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Get(ctx, "k"); err == nil {
		t.Error("Get against no server succeeded")
	}
	if _, err := r.Increment(ctx, "k", 1, 0); err == nil {
		t.Error("Increment against no server succeeded")
	}
}
