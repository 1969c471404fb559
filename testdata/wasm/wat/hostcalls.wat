;; hostcalls: for benchmarks. handle_request reads the digit in request
;; header X-Fn and calls one lintel host function 100 times:
;; 0 none, 1 now, 2 get_property, 3 set_property, 4 state_get,
;; 5 state_set, 6 state_incr, 7 state_cas, 8 metric_update, 9 log_kv
;; (debug level), and for comparison a http_handler call: 10 (digit ':')
;; get_header_values.
(module $hostcalls
  (import "http_handler" "get_header_values" (func $get_header_values (param i32 i32 i32 i32 i32) (result i64)))
  (import "lintel" "now" (func $now (result i64)))
  (import "lintel" "get_property" (func $get_property (param i32 i32 i32 i32) (result i64)))
  (import "lintel" "set_property" (func $set_property (param i32 i32 i32 i32)))
  (import "lintel" "state_get" (func $state_get (param i32 i32 i32 i32) (result i64)))
  (import "lintel" "state_set" (func $state_set (param i32 i32 i32 i32 i64) (result i32)))
  (import "lintel" "state_incr" (func $state_incr (param i32 i32 i64 i64 i32) (result i32)))
  (import "lintel" "state_cas" (func $state_cas (param i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "lintel" "metric_define" (func $metric_define (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "lintel" "metric_update" (func $metric_update (param i32 f64 i32 i32)))
  (import "lintel" "log_kv" (func $log_kv (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Fn")            ;; 4
  (data (i32.const 16) "route")          ;; 5
  (data (i32.const 32) "user")           ;; 4
  (data (i32.const 48) "key")            ;; 3
  (data (i32.const 64) "bench_total")    ;; 11
  (data (i32.const 80) "k\00v\00")       ;; 4
  (global $metric (mut i32) (i32.const 0))
  ;; 128: header value buffer; 256: scratch; 512: i64 result

  (func (export "_initialize")
    (global.set $metric (call $metric_define (i32.const 0) (i32.const 64) (i32.const 11) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0))))

  (func (export "handle_request") (result i64)
    (local $fn i32) (local $i i32)
    (drop (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 128) (i32.const 8)))
    (local.set $fn (i32.sub (i32.load8_u (i32.const 128)) (i32.const 48)))
    (block $done
      (loop $again
        (br_if $done (i32.ge_u (local.get $i) (i32.const 100)))
        (block $switch
          (br_if $switch (i32.eqz (local.get $fn)))
          (if (i32.eq (local.get $fn) (i32.const 1)) (then (drop (call $now))))
          (if (i32.eq (local.get $fn) (i32.const 2)) (then (drop (call $get_property (i32.const 16) (i32.const 5) (i32.const 256) (i32.const 64)))))
          (if (i32.eq (local.get $fn) (i32.const 3)) (then (call $set_property (i32.const 32) (i32.const 4) (i32.const 16) (i32.const 5))))
          (if (i32.eq (local.get $fn) (i32.const 4)) (then (drop (call $state_get (i32.const 48) (i32.const 3) (i32.const 256) (i32.const 64)))))
          (if (i32.eq (local.get $fn) (i32.const 5)) (then (drop (call $state_set (i32.const 48) (i32.const 3) (i32.const 16) (i32.const 5) (i64.const 60000)))))
          (if (i32.eq (local.get $fn) (i32.const 6)) (then (drop (call $state_incr (i32.const 64) (i32.const 11) (i64.const 1) (i64.const 60000) (i32.const 512)))))
          (if (i32.eq (local.get $fn) (i32.const 7)) (then (drop (call $state_cas (i32.const 48) (i32.const 3) (i32.const 16) (i32.const 5) (i32.const 16) (i32.const 5) (i64.const 0)))))
          (if (i32.eq (local.get $fn) (i32.const 8)) (then (call $metric_update (global.get $metric) (f64.const 1) (i32.const 0) (i32.const 0))))
          (if (i32.eq (local.get $fn) (i32.const 9)) (then (call $log_kv (i32.const -1) (i32.const 48) (i32.const 3) (i32.const 80) (i32.const 4))))
          (if (i32.eq (local.get $fn) (i32.const 10)) (then (drop (call $get_header_values (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 128) (i32.const 8))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $again)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
