;; loop: hostile. handle_request never returns when the request has header
;; X-Hostile; otherwise it passes the request on.
(module $loop
  (import "http_handler" "get_header_values" (func $get_header_values
    (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Hostile")
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 0)) (i64.const 0))
      (then (loop $forever (br $forever))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
