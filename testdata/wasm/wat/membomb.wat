;; membomb: hostile. With header X-Hostile it grows memory by 64 KiB pages
;; until growth fails, then writes to the last byte it got, and traps.
(module $membomb
  (import "http_handler" "get_header_values" (func $get_header_values
    (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "X-Hostile")
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 0)) (i64.const 0))
      (then
        (loop $grow
          (br_if $grow (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
        (i32.store8 (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 1)) (i32.const 1))
        (unreachable)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
