;; Products whose left operand is mostly zeros (see sparse.js for why): each nonzero a value
;; adds value x one row of the other operand to one output row, four lanes at a time (the
;; n % 4 tail lane by lane); zeros add nothing and are skipped. Each output value is the sum
;; of its terms in increasing k, float32, no fused multiply-add. Byte offsets; a is [m, k]
;; row-major; out must not overlap the inputs.
(module
  (import "env" "memory" (memory $mem 1 65536 shared))

  ;; dst[0..n) += s * src[0..n)
  (func $axpy (param $dst i32) (param $src i32) (param $s f32) (param $n i32)
    (local $j i32) (local $end4 i32) (local $end i32) (local $S v128)
    (local.set $S (f32x4.splat (local.get $s)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (block $done4
      (loop $lanes4
        (br_if $done4 (i32.ge_u (local.get $j) (local.get $end4)))
        (v128.store (i32.add (local.get $dst) (local.get $j))
          (f32x4.add (v128.load (i32.add (local.get $dst) (local.get $j)))
            (f32x4.mul (v128.load (i32.add (local.get $src) (local.get $j))) (local.get $S))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $lanes4)))
    (block $done
      (loop $lanes
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $dst) (local.get $j))
          (f32.add (f32.load (i32.add (local.get $dst) (local.get $j)))
            (f32.mul (f32.load (i32.add (local.get $src) (local.get $j))) (local.get $s))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $lanes))))

  ;; dst[0..n) = s * src[0..n): a row's first term, stored rather than added to a zeroed row
  (func $scale (param $dst i32) (param $src i32) (param $s f32) (param $n i32)
    (local $j i32) (local $end4 i32) (local $end i32) (local $S v128)
    (local.set $S (f32x4.splat (local.get $s)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (block $done4
      (loop $lanes4
        (br_if $done4 (i32.ge_u (local.get $j) (local.get $end4)))
        (v128.store (i32.add (local.get $dst) (local.get $j))
          (f32x4.mul (v128.load (i32.add (local.get $src) (local.get $j))) (local.get $S)))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $lanes4)))
    (block $done
      (loop $lanes
        (br_if $done (i32.ge_u (local.get $j) (local.get $end)))
        (f32.store (i32.add (local.get $dst) (local.get $j))
          (f32.mul (f32.load (i32.add (local.get $src) (local.get $j))) (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $lanes))))

  ;; how many of the n float32 values at a are not zero: four lanes at a time (each lane's
  ;; count goes down by a true compare's -1), then the tail lane by lane
  (func (export "nonzeros") (param $a i32) (param $n i32) (result i32)
    (local $i i32) (local $end i32) (local $end4 i32) (local $count i32) (local $minus v128)
    (local.set $end (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $a) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $i (local.get $a))
    (block $done4
      (loop $values4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $minus (i32x4.add (local.get $minus)
          (f32x4.ne (v128.load (local.get $i)) (v128.const f32x4 0 0 0 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $values4)))
    (local.set $count (i32.sub (i32.const 0) (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $minus)) (i32x4.extract_lane 1 (local.get $minus)))
      (i32.add (i32x4.extract_lane 2 (local.get $minus)) (i32x4.extract_lane 3 (local.get $minus))))))
    (block $done
      (loop $values
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $count (i32.add (local.get $count)
          (f32.ne (f32.load (local.get $i)) (f32.const 0))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $values)))
    (local.get $count))

  ;; out[m, n] = a[m, k] @ b[k, n]: column kk of a scales row kk of b into the output rows
  ;; (b is read once, the m output rows stay in cache)
  (func (export "matmul")
    (param $a i32) (param $b i32) (param $out i32) (param $m i32) (param $k i32) (param $n i32)
    (call $matmulStrided (local.get $a) (local.get $b) (local.get $out) (local.get $m) (local.get $k)
      (local.get $n) (local.get $n)))

  ;; the same over n of the ldn columns of b and out (rows ldn values apart): pool.js gives
  ;; each thread its own columns or rows of one product
  (func $matmulStrided (export "matmulStrided")
    (param $a i32) (param $b i32) (param $out i32) (param $m i32) (param $k i32) (param $n i32) (param $ldn i32)
    (local $i i32) (local $kk i32) (local $rowA i32) (local $rowN i32) (local $v f32)
    (local.set $rowA (i32.shl (local.get $k) (i32.const 2)))
    (local.set $rowN (i32.shl (local.get $ldn) (i32.const 2)))
    (block $zeroed
      (loop $rows
        (br_if $zeroed (i32.ge_u (local.get $i) (local.get $m)))
        (memory.fill (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $rowN)))
          (i32.const 0) (i32.shl (local.get $n) (i32.const 2)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows)))
    (block $kDone
      (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
        (local.set $i (i32.const 0))
        (block $iDone
          (loop $iLoop
            (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
            (local.set $v (f32.load (i32.add (local.get $a)
              (i32.add (i32.mul (local.get $i) (local.get $rowA)) (i32.shl (local.get $kk) (i32.const 2))))))
            (if (f32.ne (local.get $v) (f32.const 0))
              (then (call $axpy
                (i32.add (local.get $out) (i32.mul (local.get $i) (local.get $rowN)))
                (i32.add (local.get $b) (i32.mul (local.get $kk) (local.get $rowN)))
                (local.get $v) (local.get $n))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $iLoop)))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kLoop))))

  ;; out[k, n] = a[m, k]^T @ b[m, n]: output row kk sums a[i, kk] x row i of b over i
  ;; (the m rows of b stay in cache). Each output row is written once, in one go: its first
  ;; term is stored, the next added, a row with none zeroed, so the (large) output is never
  ;; zeroed beforehand and read back. The sums equal 0 + terms except for the sign of a zero.
  (func (export "matmulTransposeA")
    (param $a i32) (param $b i32) (param $out i32) (param $m i32) (param $k i32) (param $n i32)
    (call $matmulTransposeAStrided (local.get $a) (local.get $b) (local.get $out) (local.get $m)
      (local.get $k) (local.get $n) (local.get $k)))

  ;; the same for k of the lda columns of a (rows lda values apart): output rows [k0, k0 + k)
  ;; of a wider product, given a and out advanced to its column / row k0 (pool.js)
  (func $matmulTransposeAStrided (export "matmulTransposeAStrided")
    (param $a i32) (param $b i32) (param $out i32) (param $m i32) (param $k i32) (param $n i32) (param $lda i32)
    (local $i i32) (local $kk i32) (local $rowA i32) (local $rowN i32) (local $v f32)
    (local $dst i32) (local $started i32)
    (local.set $rowA (i32.shl (local.get $lda) (i32.const 2)))
    (local.set $rowN (i32.shl (local.get $n) (i32.const 2)))
    (block $kDone
      (loop $kLoop
        (br_if $kDone (i32.ge_u (local.get $kk) (local.get $k)))
        (local.set $dst (i32.add (local.get $out) (i32.mul (local.get $kk) (local.get $rowN))))
        (local.set $started (i32.const 0))
        (local.set $i (i32.const 0))
        (block $iDone
          (loop $iLoop
            (br_if $iDone (i32.ge_u (local.get $i) (local.get $m)))
            (local.set $v (f32.load (i32.add (local.get $a)
              (i32.add (i32.mul (local.get $i) (local.get $rowA)) (i32.shl (local.get $kk) (i32.const 2))))))
            (if (f32.ne (local.get $v) (f32.const 0))
              (then
                (if (local.get $started)
                  (then (call $axpy (local.get $dst)
                    (i32.add (local.get $b) (i32.mul (local.get $i) (local.get $rowN)))
                    (local.get $v) (local.get $n)))
                  (else (call $scale (local.get $dst)
                    (i32.add (local.get $b) (i32.mul (local.get $i) (local.get $rowN)))
                    (local.get $v) (local.get $n))))
                (local.set $started (i32.const 1))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $iLoop)))
        (if (i32.eqz (local.get $started))
          (then (memory.fill (local.get $dst) (i32.const 0) (local.get $rowN))))
        (local.set $kk (i32.add (local.get $kk) (i32.const 1)))
        (br $kLoop))))
)
