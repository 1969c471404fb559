;; fillbomb: hostile. On a request with header X-Hostile, handle_request
;; fills its whole memory (16 pages) again and again, forever: a handful
;; of instructions a round, a mebibyte of work. Otherwise it passes the
;; request on.
(module $fillbomb
  (import "http_handler" "get_header_values" (func $get_header_values
    (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 16 16)
  (data (i32.const 0) "X-Hostile")
  (func (export "handle_request") (result i64)
    (if (i64.ne (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 0) (i32.const 0)) (i64.const 0))
      (then (loop $forever
        (memory.fill (i32.const 0) (i32.const 0) (i32.const 0x100000))
        (br $forever))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
