package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/lintelhq/lintel/internal/ratelog"
)

// Redis is a Store in a Redis server, shared by every gatewayd of a fleet.
// Each operation is one round trip; compare-and-swap and increment-with-TTL
// run as server-side scripts, so they are atomic across the fleet. Keys
// are prefixed with the deployment's prefix.
//
// Every operation ends within the configured timeout, dial included: the
// client dials once (no retries with backoff) and honours the context's
// deadline. When the server cannot be reached, the store probes it every
// probeInterval and, once it answers, replaces the client, so operations
// work again at once instead of after the client's own one-second probe.
type Redis struct {
	c       atomic.Pointer[redis.Client]
	opt     *redis.Options
	prefix  string
	timeout time.Duration
	log     *slog.Logger

	down    atomic.Bool
	closing chan struct{}
	probing sync.WaitGroup
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	URL      string // redis://[:password@]host:port/db
	PoolSize int
	Timeout  time.Duration // of each operation, dial included; default 1s
	Prefix   string        // the deployment's namespace, e.g. "lintel:prod:"
	// Log receives the store's lines and the Redis client's own (which
	// would otherwise go to stderr as plain text), rate-limited.
	// Default: slog.Default().
	Log *slog.Logger
}

// probeInterval is how often an unreachable server is tried again.
const probeInterval = 50 * time.Millisecond

// NewRedis connects lazily: an unreachable server fails operations, not
// the gateway's start.
func NewRedis(o RedisOptions) (*Redis, error) {
	opt, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, err
	}
	if o.PoolSize > 0 {
		opt.PoolSize = o.PoolSize
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	opt.ContextTimeoutEnabled = true
	opt.DialerRetries = 1 // one attempt: 0 would mean five, 100ms apart
	opt.MaxRetries = -1   // a failed operation is reported, not silently repeated
	opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	routeClientLog(o.Log)
	r := &Redis{opt: opt, prefix: o.Prefix, timeout: o.Timeout, log: o.Log, closing: make(chan struct{})}
	r.c.Store(redis.NewClient(opt))
	return r, nil
}

// op returns the client and a context bounded by the store's timeout.
func (r *Redis) op(ctx context.Context) (*redis.Client, context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	return r.c.Load(), ctx, cancel
}

// done notes the outcome of an operation: a failed dial marks the server
// unreachable and starts probing it.
func (r *Redis) done(err error) error {
	var op *net.OpError
	if err != nil && errors.As(err, &op) && op.Op == "dial" && r.down.CompareAndSwap(false, true) {
		r.log.Warn("shared state store unreachable; probing it", "addr", r.opt.Addr, "error", err)
		r.probing.Add(1)
		go r.probe()
	}
	return err
}

// probe dials the server until it answers, then replaces the client (whose
// pool, after as many failed dials as connections, would wait a second
// between its own tries).
func (r *Redis) probe() {
	defer r.probing.Done()
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		select {
		case <-r.closing:
			return
		case <-t.C:
		}
		conn, err := net.DialTimeout("tcp", r.opt.Addr, r.timeout)
		if err != nil {
			continue
		}
		conn.Close()
		old := r.c.Swap(redis.NewClient(r.opt))
		old.Close()
		r.down.Store(false)
		r.log.Info("shared state store reachable again", "addr", r.opt.Addr)
		return
	}
}

func ms(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	v, err := c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, r.done(err)
	}
	return v, true, nil
}

func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	return r.done(c.Set(ctx, r.prefix+key, value, time.Duration(ms(ttl))*time.Millisecond).Err())
}

// casScript: ARGV[1] is "1" when the key must be absent, else the old
// value is ARGV[2]; ARGV[3] the new value; ARGV[4] the TTL in ms (0: none).
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur then return 0 end
elseif cur ~= ARGV[2] then
  return 0
end
if tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1`)

func (r *Redis) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	absent := "0"
	if old == nil {
		absent = "1"
	}
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	n, err := casScript.Run(ctx, c, []string{r.prefix + key}, absent, old, new, ms(ttl)).Int()
	return n == 1, r.done(err)
}

// incrScript adds ARGV[1] and sets the TTL ARGV[2] (ms) when the key was
// created by this increment.
var incrScript = redis.NewScript(`
local existed = redis.call('EXISTS', KEYS[1])
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if existed == 0 and tonumber(ARGV[2]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return n`)

func (r *Redis) Increment(ctx context.Context, key string, delta int64, ttl time.Duration) (int64, error) {
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	n, err := incrScript.Run(ctx, c, []string{r.prefix + key}, delta, ms(ttl)).Int64()
	if err != nil && strings.Contains(err.Error(), "not an integer") {
		return 0, ErrNotInteger
	}
	return n, r.done(err)
}

// gcraScript is gcra (state.go) in Lua, on the server's clock: KEYS[1]
// holds the theoretical arrival time in microseconds (Lua numbers are
// doubles: nanoseconds since 1970 would lose precision); ARGV[1] is the
// interval and ARGV[2] the burst. It returns allowed (1/0), remaining,
// retry-after and reset, the durations in microseconds.
var gcraScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
if tat - now > tau then
  return {0, 0, tat - now - tau, tat - now}
end
local nxt = tat + interval
redis.call('SET', KEYS[1], nxt, 'PX', math.ceil((nxt - now) / 1000))
return {1, math.floor((tau - (nxt - now) + interval) / interval), 0, nxt - now}
`)

func (r *Redis) GCRA(ctx context.Context, key string, interval time.Duration, burst int) (Decision, error) {
	us := max(interval.Microseconds(), 1)
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	v, err := gcraScript.Run(ctx, c, []string{r.prefix + key}, us, burst).Int64Slice()
	if err != nil {
		return Decision{}, r.done(err)
	}
	if len(v) != 4 {
		return Decision{}, fmt.Errorf("gcra script answered %d values, want 4", len(v))
	}
	return Decision{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond, Reset: time.Duration(v[3]) * time.Microsecond}, nil
}

func (r *Redis) Delete(ctx context.Context, key string) error {
	c, ctx, cancel := r.op(ctx)
	defer cancel()
	return r.done(c.Del(ctx, r.prefix+key).Err())
}

// Close stops probing and closes the connection pool.
func (r *Redis) Close() error {
	close(r.closing)
	r.probing.Wait()
	return r.c.Load().Close()
}

// clientLog is the Redis client's log, which is process-wide: every line
// goes to the log of the store made last, at most one line a kind every
// ten seconds.
var clientLog struct {
	once  sync.Once
	log   atomic.Pointer[slog.Logger]
	limit ratelog.Limiter
}

func routeClientLog(l *slog.Logger) {
	clientLog.log.Store(l)
	clientLog.once.Do(func() { redis.SetLogger(clientLogger{}) })
}

type clientLogger struct{}

func (clientLogger) Printf(_ context.Context, format string, args ...any) {
	ok, suppressed := clientLog.limit.Allow(format)
	if !ok {
		return
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, args...), "redis: ")
	l := clientLog.log.Load()
	if suppressed > 0 {
		l = l.With("suppressed", suppressed)
	}
	l.Warn("redis client: " + msg)
}
