;; bodyreader: enables feature_buffer_request when it initialises and
;; reads each request's body to its end, 1 KiB a call, before passing the
;; request on.
(module $bodyreader
  (import "http_handler" "enable_features" (func $enable_features (param i32) (result i32)))
  (import "http_handler" "read_body" (func $read_body (param i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (func (export "_initialize") (drop (call $enable_features (i32.const 1))))
  (func (export "handle_request") (result i64)
    (loop $more
      ;; eof is the high 32 bits of the result
      (br_if $more (i64.eqz (i64.shr_u (call $read_body (i32.const 0) (i32.const 0) (i32.const 1024)) (i64.const 32)))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
