;; batch_complete: declares no response phase, a completion, and that its
;; completions may be batched (flags 2|4|32). lintel_on_complete emits
;; "n=<values of X-N>" as one raw line; when the request has X-Response,
;; it first reads the response header X-Up, which a batched completion
;; may not.
(module $batch_complete
  (import "lintel" "declare" (func $declare (param i32)))
  (import "lintel" "emit" (func $emit (param i32 i32) (result i32)))
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "x-n")
  (data (i32.const 8) "x-response")
  (data (i32.const 24) "x-up")
  (data (i32.const 32) "n=")
  (func (export "_initialize") (call $declare (i32.const 38)))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32))
  (func (export "lintel_on_complete")
    (local $len i32)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 8) (i32.const 10) (i32.const 256) (i32.const 64)) (i64.const 0))
      (then (drop (call $get_header_values (i32.const 1) (i32.const 24) (i32.const 4) (i32.const 256) (i32.const 64)))))
    ;; the values, NUL-terminated, right after "n=" at 34
    (local.set $len (i32.wrap_i64 (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 3) (i32.const 34) (i32.const 200))))
    (drop (call $emit (i32.const 32) (i32.add (i32.const 2) (local.get $len)))))
)
