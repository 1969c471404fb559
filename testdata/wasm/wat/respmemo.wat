;; respmemo: a stateless, memoizable guest (flags 1|16) whose response
;; phase depends on the response header X-Up only: it copies X-Up's first
;; value into X-Seen, sets X-Call to the number of its response calls so
;; far (one digit), and memoizes keyed by X-Up. A replayed response shows
;; the X-Call of the call it replays.
(module $respmemo
  (import "lintel" "declare" (func $declare (param i32)))
  (import "lintel" "memoize" (func $memoize (param i32 i32 i32)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 0) "x-up\00")
  (data (i32.const 16) "X-Seen")
  (data (i32.const 32) "X-Call")
  (func (export "_initialize") (call $declare (i32.const 17)))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)
    (local $len i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 48) (i32.add (i32.const 48) (global.get $calls)))
    (call $set_header_value (i32.const 1) (i32.const 32) (i32.const 6) (i32.const 48) (i32.const 1))
    ;; X-Up's values, NUL-terminated, at 64; the first one into X-Seen
    (local.set $len (i32.wrap_i64 (call $get_header_values (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 200))))
    (if (i32.gt_u (local.get $len) (i32.const 0))
      (then (call $set_header_value (i32.const 1) (i32.const 16) (i32.const 6) (i32.const 64) (i32.sub (local.get $len) (i32.const 1)))))
    (call $memoize (i32.const 0) (i32.const 5) (i32.const 60000)))
)
