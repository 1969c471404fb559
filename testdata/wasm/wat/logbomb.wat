;; logbomb: hostile. Every request writes log_kv lines whose key/value
;; list holds a 1 MiB value, and makes 20,000 outbound calls it is not
;; allowed to make, each of which the host warns about.
(module $logbomb
  (import "lintel" "log_kv" (func $log_kv (param i32 i32 i32 i32 i32)))
  (import "lintel" "http_call" (func $http_call (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 20 20)
  (data (i32.const 0) "bomb")
  (data (i32.const 8) "GET")
  (data (i32.const 16) "http://evil.example:1/")
  (data (i32.const 64) "k\00")
  (func (export "_initialize")
    ;; the value: 1 MiB of 'a' at 66, then its NUL
    (memory.fill (i32.const 66) (i32.const 97) (i32.const 1048576))
    (i32.store8 (i32.const 1048642) (i32.const 0)))
  (func (export "handle_request") (result i64)
    (local $i i32)
    (loop $logs
      (call $log_kv (i32.const 2) (i32.const 0) (i32.const 4) (i32.const 64) (i32.const 1048579))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $logs (i32.lt_u (local.get $i) (i32.const 10))))
    (local.set $i (i32.const 0))
    (loop $calls
      (drop (call $http_call (i32.const 8) (i32.const 3) (i32.const 16) (i32.const 22) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $calls (i32.lt_u (local.get $i) (i32.const 20000))))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
