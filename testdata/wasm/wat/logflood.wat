;; logflood: hostile. Every request logs one million lines at error level.
(module $logflood
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "flood")
  (func (export "handle_request") (result i64)
    (local $i i32)
    (loop $again
      (call $log (i32.const 2) (i32.const 0) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000000))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
