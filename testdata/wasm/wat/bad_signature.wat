;; bad_signature: imports a host function with the wrong signature.
(module
  (import "http_handler" "get_uri" (func (param i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
