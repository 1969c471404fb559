;; Functions that exercise every path the metering rewrite changes.
(module
  (type $pair (func (result i32 i64)))
  (global $calls (mut i32) (i32.const 0))
  (memory (export "memory") 1)

  ;; runs forever: only fuel stops it
  (func (export "spin") (loop $l (br $l)))

  ;; recurses forever: only the depth bound stops it
  (func $down (export "down") (param i32) (result i32)
    (call $down (i32.add (local.get 0) (i32.const 1))))

  ;; recurses n times through frames of 65 values: three frames each
  (func $wide (export "wide") (param i32) (result i32)
    (local i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64
           i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
    (if (i32.eqz (local.get 0)) (then (return (i32.const 0))))
    (call $wide (i32.sub (local.get 0) (i32.const 1))))

  ;; returns early from inside blocks, and by falling off the end
  (func $fib (export "fib") (param i32) (result i32)
    (if (i32.lt_u (local.get 0) (i32.const 2)) (then (return (local.get 0))))
    (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
             (call $fib (i32.sub (local.get 0) (i32.const 2)))))

  ;; several results, left by a branch to the function's own label
  (func $pair (export "pair") (param i32) (result i32 i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (if (local.get 0) (then (br 1 (i32.const 7) (i64.const 8))))
    (i32.const 1) (i64.const 2))
  (func (export "pair_sum") (param i32) (result i64)
    (local $a i32) (local $b i64)
    (call $pair (local.get 0))
    (local.set $b) (local.set $a)
    (i64.add (i64.extend_i32_u (local.get $a)) (local.get $b)))

  ;; loops n times; its body is five instructions and the loop's end
  (func (export "count") (param i32)
    (loop $l
      (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
      (br_if $l (local.get 0))))

  ;; neither loops nor calls: left as it is
  (func (export "leaf") (param i32) (result i32)
    (i32.mul (local.get 0) (local.get 0)))

  ;; fills the whole memory again and again, counting the rounds in
  ;; $calls: only fuel charged by size stops it soon
  (func (export "fill_forever")
    (loop $l
      (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
      (memory.fill (i32.const 0) (i32.const 7) (i32.mul (memory.size) (i32.const 65536)))
      (br $l)))
  (func (export "rounds") (result i32) (global.get $calls))

  ;; bulk memory, saturating conversion, sign extension, multi-value block
  (func (export "mixed") (result i32)
    (memory.fill (i32.const 0) (i32.const 1) (i32.const 16))
    (memory.copy (i32.const 16) (i32.const 0) (i32.const 16))
    (drop (i32.trunc_sat_f64_s (f64.const 1e30)))
    (block (result i32 i32) (i32.const 3) (i32.extend8_s (i32.const 0xff)))
    (i32.add)
    (i32.add (i32.load8_u (i32.const 31))))
)
