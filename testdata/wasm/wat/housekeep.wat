;; housekeep: counts its lintel_housekeep calls, and in handle_request
;; sets request header X-Housekept to that count (one digit) and
;; X-In-Request to "1" while it runs, so a test can see that
;; housekeeping runs, and never inside a request.
(module $housekeep
  (import "http_handler" "set_header_value" (func $set_header_value
    (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (global $count (mut i32) (i32.const 0))
  (global $in_request (mut i32) (i32.const 0))
  (data (i32.const 0) "X-Housekept")   ;; 11 bytes
  (data (i32.const 16) "0123456789")
  (func (export "lintel_housekeep")
    (if (global.get $in_request) (then (unreachable)))
    (global.set $count (i32.add (global.get $count) (i32.const 1))))
  (func (export "handle_request") (result i64)
    (global.set $in_request (i32.const 1))
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 11)
      (i32.add (i32.const 16) (i32.rem_u (global.get $count) (i32.const 10))) (i32.const 1))
    (global.set $in_request (i32.const 0))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
