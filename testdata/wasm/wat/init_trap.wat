;; init_trap: its _initialize traps, so no instance can be made.
(module
  (memory (export "memory") 1 1)
  (func (export "_initialize") unreachable)
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
