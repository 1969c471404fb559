;; copybomb: hostile. Each request has the host copy out of its 1 MiB
;; memory again and again, by the first letter of its X-Attack header:
;; b: write_body of 1 MiB, 512 times (512 MiB)
;; h: add_header_value of a 60 KiB value, 10,000 times
;; p: set_property of a 60 KiB value under 10,000 names
;; s: state_set under a key of 60 KiB
(module $copybomb
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "add_header_value" (func $add_header_value (param i32 i32 i32 i32 i32)))
  (import "lintel" "set_property" (func $set_property (param i32 i32 i32 i32)))
  (import "lintel" "state_set" (func $state_set (param i32 i32 i32 i32 i64) (result i32)))
  (memory (export "memory") 17 17)
  (data (i32.const 0) "x-attack")
  (data (i32.const 16) "X-Bomb")
  (func (export "_initialize")
    (memory.fill (i32.const 1024) (i32.const 97) (i32.const 1048576)))
  (func (export "handle_request") (result i64)
    (local $i i32)
    (drop (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 32) (i32.const 16)))
    (block $done
      (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 98)) ;; b
        (then (loop $body
          (call $write_body (i32.const 1) (i32.const 1024) (i32.const 1048576))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $body (i32.lt_u (local.get $i) (i32.const 512))))
          (br $done)))
      (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 104)) ;; h
        (then (loop $headers
          (call $add_header_value (i32.const 0) (i32.const 16) (i32.const 6) (i32.const 1024) (i32.const 61440))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $headers (i32.lt_u (local.get $i) (i32.const 10000))))
          (br $done)))
      (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 112)) ;; p
        (then (loop $props
          ;; the name: 4 bytes of i at 24
          (i32.store (i32.const 24) (local.get $i))
          (call $set_property (i32.const 24) (i32.const 4) (i32.const 1024) (i32.const 61440))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $props (i32.lt_u (local.get $i) (i32.const 10000))))
          (br $done)))
      (if (i32.eq (i32.load8_u (i32.const 32)) (i32.const 115)) ;; s
        (then (drop (call $state_set (i32.const 1024) (i32.const 61440) (i32.const 0) (i32.const 1) (i64.const 0))))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
