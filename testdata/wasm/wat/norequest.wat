;; norequest: declares no request phase and no response phase (8|2) and
;; a completion (4); its handle_request traps, so a host that calls it
;; fails the request. lintel_on_complete emits "done".
(module $norequest
  (import "lintel" "declare" (func $declare (param i32)))
  (import "lintel" "emit" (func $emit (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "done")
  (func (export "_initialize") (call $declare (i32.const 14)))
  (func (export "handle_request") (result i64) (unreachable))
  (func (export "handle_response") (param i32 i32) (unreachable))
  (func (export "lintel_on_complete") (drop (call $emit (i32.const 0) (i32.const 4))))
)
