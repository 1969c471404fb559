;; sleeper: hostile. Every request sleeps 3 seconds through WASI
;; poll_oneoff (one relative clock subscription), whatever its filter's
;; timeout.
(module $sleeper
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64)
    ;; subscription at 0 (48 bytes): userdata 0, tag 0 (clock),
    ;; clock id 1 (monotonic) at 16, timeout 3e9 ns at 24, precision 0,
    ;; flags 0 (relative)
    (i64.store (i32.const 0) (i64.const 0))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3000000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    ;; one event out at 64, count at 128
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
