package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a Store in a Redis server, shared by every gatewayd of a fleet.
// Each operation is one round trip; compare-and-swap and increment-with-TTL
// run as server-side scripts, so they are atomic across the fleet. Keys
// are prefixed with the deployment's prefix.
type Redis struct {
	c      *redis.Client
	prefix string
}

// RedisOptions configure a Redis store.
type RedisOptions struct {
	URL      string // redis://[:password@]host:port/db
	PoolSize int
	Timeout  time.Duration // dial, read and write
	Prefix   string        // the deployment's namespace, e.g. "lintel:prod:"
}

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
	if o.Timeout > 0 {
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = o.Timeout, o.Timeout, o.Timeout
	}
	opt.MaxRetries = -1 // a failed operation is reported, not silently repeated
	return &Redis{c: redis.NewClient(opt), prefix: o.Prefix}, nil
}

func ms(ttl time.Duration) int64 {
	if ttl <= 0 {
		return 0
	}
	return max(ttl.Milliseconds(), 1)
}

func (r *Redis) Get(ctx context.Context, key string) ([]byte, bool, error) {
	v, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (r *Redis) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return r.c.Set(ctx, r.prefix+key, value, time.Duration(ms(ttl))*time.Millisecond).Err()
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
	n, err := casScript.Run(ctx, r.c, []string{r.prefix + key}, absent, old, new, ms(ttl)).Int()
	return n == 1, err
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
	n, err := incrScript.Run(ctx, r.c, []string{r.prefix + key}, delta, ms(ttl)).Int64()
	if err != nil && strings.Contains(err.Error(), "not an integer") {
		return 0, ErrNotInteger
	}
	return n, err
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
	v, err := gcraScript.Run(ctx, r.c, []string{r.prefix + key}, us, burst).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(v) != 4 {
		return Decision{}, fmt.Errorf("gcra script answered %d values, want 4", len(v))
	}
	return Decision{Allowed: v[0] == 1, Remaining: int(v[1]), RetryAfter: time.Duration(v[2]) * time.Microsecond, Reset: time.Duration(v[3]) * time.Microsecond}, nil
}

func (r *Redis) Delete(ctx context.Context, key string) error {
	return r.c.Del(ctx, r.prefix+key).Err()
}

// Close closes the connection pool.
func (r *Redis) Close() error { return r.c.Close() }
