;; metricbomb: hostile. Defines a counter with one label and, on every
;; request, updates it with 20,000 distinct label values (one label series
;; each), then once with a value that is not UTF-8.
(module $metricbomb
  (import "lintel" "metric_define" (func $metric_define (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "lintel" "metric_update" (func $metric_update (param i32 f64 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "bomb")
  (data (i32.const 8) "l\00")
  (data (i32.const 32) "\ff\00")
  (global $id (mut i32) (i32.const 0))
  (func (export "_initialize")
    (global.set $id (call $metric_define (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 2))))
  ;; the label value at 64: the number i in five decimal digits, then NUL
  (func $label (param $i i32)
    (local $k i32)
    (local.set $k (i32.const 4))
    (loop $digits
      (i32.store8 (i32.add (i32.const 64) (local.get $k)) (i32.add (i32.const 48) (i32.rem_u (local.get $i) (i32.const 10))))
      (local.set $i (i32.div_u (local.get $i) (i32.const 10)))
      (local.set $k (i32.sub (local.get $k) (i32.const 1)))
      (br_if $digits (i32.ge_s (local.get $k) (i32.const 0))))
    (i32.store8 (i32.const 69) (i32.const 0)))
  (func (export "handle_request") (result i64)
    (local $i i32)
    (loop $updates
      (call $label (local.get $i))
      (call $metric_update (global.get $id) (f64.const 1) (i32.const 64) (i32.const 6))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $updates (i32.lt_u (local.get $i) (i32.const 20000))))
    (call $metric_update (global.get $id) (f64.const 1) (i32.const 32) (i32.const 2))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32))
)
