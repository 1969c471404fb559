;; stamp: the smallest useful filter. It reads the request header
;; X-Stamp-In (up to 64 bytes) and sets request header X-Stamp to it, or to
;; "none"; in handle_response it sets response header X-Stamped: 1.
;; Imports only http_handler: an unmodified http-wasm guest.
(module $stamp
  (import "http_handler" "get_header_values" (func $get_header_values
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $buf i32) (param $buf_limit i32) (result i64)))
  (import "http_handler" "set_header_value" (func $set_header_value
    (param $kind i32) (param $name i32) (param $name_len i32)
    (param $value i32) (param $value_len i32)))

  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Stamp-In")   ;; 10 bytes
  (data (i32.const 16) "X-Stamp")     ;; 7 bytes
  (data (i32.const 32) "none")        ;; 4 bytes
  (data (i32.const 48) "X-Stamped")   ;; 9 bytes
  (data (i32.const 64) "1")           ;; 1 byte
  ;; value buffer at 128, 64 bytes

  (func (export "handle_request") (result i64)
    (local $count_len i64) (local $len i32)
    (local.set $count_len
      (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 10) (i32.const 128) (i32.const 64)))
    (local.set $len (i32.wrap_i64 (local.get $count_len)))
    ;; one value that fit: count == 1 and len <= 64 (len includes the NUL)
    (if (i32.and
          (i64.eq (i64.shr_u (local.get $count_len) (i64.const 32)) (i64.const 1))
          (i32.le_u (local.get $len) (i32.const 64)))
      (then
        (call $set_header_value (i32.const 0) (i32.const 16) (i32.const 7)
          (i32.const 128) (i32.sub (local.get $len) (i32.const 1))))
      (else
        (call $set_header_value (i32.const 0) (i32.const 16) (i32.const 7) (i32.const 32) (i32.const 4))))
    (i64.const 1))

  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $set_header_value (i32.const 1) (i32.const 48) (i32.const 9) (i32.const 64) (i32.const 1)))
)
