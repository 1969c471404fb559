;; trap: hostile. With header X-Hostile it executes unreachable in
;; handle_request; with X-Hostile-Response, in handle_response.
(module $trap
  (import "http_handler" "get_header_values" (func $get_header_values
    (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Hostile")
  (data (i32.const 16) "X-Hostile-Response")
  (global $trap_response (mut i32) (i32.const 0))
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 0)) (i64.const 0))
      (then unreachable))
    (global.set $trap_response
      (i64.ne (call $get_header_values (i32.const 0) (i32.const 16) (i32.const 18) (i32.const 0) (i32.const 0)) (i64.const 0)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)
    (if (global.get $trap_response) (then unreachable)))
)
