;; security-headers: the byte-level view of a Lintel plugin, in the
;; WebAssembly text format. It stamps three security headers on every
;; response (unless the upstream set them) and tells the upstream which
;; gateway it came through:
;;
;;   request:   x-gateway: lintel
;;   response:  x-content-type-options: nosniff
;;              x-frame-options: DENY
;;              referrer-policy: strict-origin-when-cross-origin
;;
;; Build: wat2wasm security-headers.wat -o plugins/security-headers.wasm
;;
;; Everything a plugin exchanges with the host is bytes in its own linear
;; memory, passed as (pointer, length) pairs of i32: no allocator, no
;; strings, no runtime. This module uses only http_handler, so any
;; http-wasm host runs it.
(module $security_headers
  ;; Imports: module name, function name, and the exact signature of
  ;; sdk/ABI.md. A wrong signature refuses the plugin at load.
  ;; get_header_values(kind, name, name_len, buf, buf_limit) -> count<<32 | len
  (import "http_handler" "get_header_values"
    (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  ;; set_header_value(kind, name, name_len, value, value_len)
  (import "http_handler" "set_header_value"
    (func $set_header_value (param i32 i32 i32 i32 i32)))

  ;; One 64 KiB page, exported as "memory": the host reads and writes
  ;; the guest's bytes through it.
  (memory (export "memory") 1 1)

  ;; The header names and values, at fixed offsets.
  (data (i32.const 0)   "x-gateway")                       ;; 9 bytes
  (data (i32.const 16)  "lintel")                          ;; 6
  (data (i32.const 32)  "x-content-type-options")          ;; 22
  (data (i32.const 64)  "nosniff")                         ;; 7
  (data (i32.const 80)  "x-frame-options")                 ;; 15
  (data (i32.const 96)  "DENY")                            ;; 4
  (data (i32.const 112) "referrer-policy")                 ;; 15
  (data (i32.const 128) "strict-origin-when-cross-origin") ;; 31

  ;; Kinds: 0 request headers, 1 response headers.

  ;; handle_request() -> i64: the low 32 bits are `next` (1: go on to
  ;; the upstream), the high 32 bits a req_ctx handed back to
  ;; handle_response (0 here).
  (func (export "handle_request") (result i64)
    (call $set_header_value (i32.const 0) (i32.const 0) (i32.const 9) (i32.const 16) (i32.const 6))
    (i64.const 1))

  ;; $stamp sets a response header unless the upstream set it:
  ;; get_header_values with buf_limit 0 writes nothing and returns the
  ;; count of values in the high 32 bits, 0 when absent.
  (func $stamp (param $name i32) (param $name_len i32) (param $value i32) (param $value_len i32)
    (if (i64.eqz (i64.shr_u
          (call $get_header_values (i32.const 1) (local.get $name) (local.get $name_len) (i32.const 0) (i32.const 0))
          (i64.const 32)))
      (then (call $set_header_value (i32.const 1) (local.get $name) (local.get $name_len) (local.get $value) (local.get $value_len)))))

  ;; handle_response(req_ctx, is_error): runs when the response head is
  ;; about to be sent, so streamed responses get the headers too.
  (func (export "handle_response") (param $req_ctx i32) (param $is_error i32)
    (call $stamp (i32.const 32) (i32.const 22) (i32.const 64) (i32.const 7))
    (call $stamp (i32.const 80) (i32.const 15) (i32.const 96) (i32.const 4))
    (call $stamp (i32.const 112) (i32.const 15) (i32.const 128) (i32.const 31))))
