;; command: a command module, as TinyGo builds http-wasm guests: its _start
;; (main) runs once per instance and sets up what handle_request uses.
;; handle_request sets request header X-Started: 1 only if _start ran.
(module $command
  (import "http_handler" "set_header_value" (func $set_header_value (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Started")
  (global $started (mut i32) (i32.const 0))
  (func (export "_start") (global.set $started (i32.const 1)))
  (func (export "handle_request") (result i64)
    (if (global.get $started)
      (then (i32.store8 (i32.const 16) (i32.const 49)) ;; "1"
            (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 1))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
