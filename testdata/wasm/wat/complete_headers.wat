;; complete_headers: declares no response phase and a completion (flags
;; 2|4); its lintel_on_complete reads the response header X-Up and the
;; status, and emits "X-Up=<values> status=<code>" as one raw line. It pins
;; the completion that dereferenced a nil response writer when it read a
;; response header.
(module $complete_headers
  (import "lintel" "declare" (func $declare (param i32)))
  (import "lintel" "emit" (func $emit (param i32 i32) (result i32)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "get_status_code" (func $get_status_code (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-up")
  (data (i32.const 16) "X-Up=")
  (func (export "_initialize") (call $declare (i32.const 6)))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32))
  (func (export "lintel_on_complete")
    (local $len i32)
    (local $code i32)
    ;; the values, NUL-terminated, right after "X-Up=" at 21
    (local.set $len (i32.wrap_i64 (call $get_header_values (i32.const 1) (i32.const 0) (i32.const 4) (i32.const 21) (i32.const 200))))
    ;; " status=" and three digits after them
    (local.set $code (call $get_status_code))
    (i32.store8 (i32.add (i32.const 21) (local.get $len)) (i32.const 32))
    (i32.store8 (i32.add (i32.const 22) (local.get $len)) (i32.add (i32.const 48) (i32.div_u (local.get $code) (i32.const 100))))
    (i32.store8 (i32.add (i32.const 23) (local.get $len)) (i32.add (i32.const 48) (i32.rem_u (i32.div_u (local.get $code) (i32.const 10)) (i32.const 10))))
    (i32.store8 (i32.add (i32.const 24) (local.get $len)) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
    (drop (call $emit (i32.const 16) (i32.add (i32.const 9) (local.get $len)))))
)
