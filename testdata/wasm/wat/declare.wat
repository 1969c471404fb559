;; declare: like stamp's response phase, but declares through the lintel
;; module that it keeps no state between phases (flag 1), and with config
;; {"no_response": true} would declare it has no response phase (flag 2).
;; Its handle_response sets X-Declared: 1.
(module $declare
  (import "lintel" "declare" (func $declare (param i32)))
  (import "lintel" "abi_version" (func $abi_version (result i32)))
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Declared")
  (data (i32.const 16) "1")
  (func (export "_initialize")
    (local $len i32)
    (if (i32.lt_s (call $abi_version) (i32.const 2)) (then unreachable))
    ;; config is {} or {"no_response":true}: longer than 2 bytes means the latter
    (local.set $len (call $get_config (i32.const 1024) (i32.const 1024)))
    (if (i32.gt_u (local.get $len) (i32.const 2))
      (then (call $declare (i32.const 2)))
      (else (call $declare (i32.const 1)))))
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)
    (call $set_header_value (i32.const 1) (i32.const 0) (i32.const 10) (i32.const 16) (i32.const 1)))
)
