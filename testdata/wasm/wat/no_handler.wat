;; no_handler: lacks handle_response.
(module
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (i64.const 1))
)
