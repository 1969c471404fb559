package state

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisServer starts a real redis-server on a free loopback port for the
// test, or skips (fails under CI) when it is not installed.
func redisServer(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("redis-server is required under CI (apt-get install redis-server)")
		}
		t.Skip("redis-server not installed: apt-get install redis-server")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan struct{})
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if strings.Contains(s.Text(), "Ready to accept connections") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server did not start")
	}
	return fmt.Sprintf("redis://127.0.0.1:%d/0", port)
}

func newRedis(t *testing.T) *Redis {
	r, err := NewRedis(RedisOptions{URL: redisServer(t), Timeout: time.Second, Prefix: "test:"})
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
