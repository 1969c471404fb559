;; recurse: hostile. With header X-Hostile, handle_request recurses
;; without end through a function with locals of its own: a stack bomb
;; that only a bound on call depth stops, whatever its memory limit.
(module $recurse
  (import "http_handler" "get_header_values" (func $get_header_values
    (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Hostile")
  (func $down (param i64 i64 i64 i64) (result i64)
    (local i64 i64 i64 i64)
    (local.set 4 (i64.add (local.get 0) (i64.const 1)))
    (i64.add (local.get 4)
      (call $down (local.get 4) (local.get 1) (local.get 2) (local.get 3))))
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 0)) (i64.const 0))
      (then (drop (call $down (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0)))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
