;; A MobileNet's convolutions with their bias and activation (see conv.js for why), as plain
;; SIMD loops with fused multiply-adds (relaxed SIMD). Each clamps to [lo, hi] (the activation).
;; Each output sums its products first and adds the bias after: a batch norm folded into the
;; weights leaves biases large beside the products, and a sum started from the bias keeps less
;; of them (the features came out 2-4x further from Keras's). Byte offsets; NHWC; out must not
;; overlap the inputs.
;;
;; pointwise: a 1x1 convolution as the product it is,
;;   out[m, n] = min(max(a[m, k] @ w[k, n] + bias[n], lo), hi),
;; a the input as m = batch x height x width rows of k channels, w the [1, 1, k, n] filter, n a
;; multiple of 8. Four rows by eight columns at a time, the eight v128 sums in registers across
;; k: each step broadcasts one value of each row into eight filter values; rows past the last
;; four, one at a time. ($w0, $w1 hold the bias at the store.)
;;
;; depthwise: a 3x3 depthwise convolution,
;;   out[b, oy, ox, c] = min(max(bias[c] + sum over ky, kx of
;;                                 in[b, oy*s - top + ky, ox*s - left + kx, c] * w[ky, kx, c], lo), hi),
;; taps outside the input counting as zeros; c a multiple of 4, the filter [3, 3, c, 1]. Four
;; channels at a time: their nine filter vectors stay in registers across a row of outputs; an
;; output whose nine taps are all inside the input takes them unrolled, one at the border takes
;; those inside ($edge), in the same order, the bias then added. Rows [r0, r1) of the batch x out-height output rows.
(module
  (import "env" "memory" (memory $mem 1 65536 shared))

  (func (export "pointwise")
    (param $a i32) (param $w i32) (param $bias i32) (param $out i32)
    (param $m i32) (param $k i32) (param $n i32) (param $lo f32) (param $hi f32)
    (local $i i32) (local $j i32) (local $kk i32) (local $k4 i32) (local $n4 i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $pw i32) (local $po i32)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local $w0 v128) (local $w1 v128) (local $x v128) (local $vlo v128) (local $vhi v128)
    (local.set $k4 (i32.shl (local.get $k) (i32.const 2)))
    (local.set $n4 (i32.shl (local.get $n) (i32.const 2)))
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    (if (i32.or (i32.eqz (local.get $k)) (i32.eqz (local.get $n))) (then (return)))
    ;; four rows at a time
    (block $rows4_done
      (loop $rows4
        (br_if $rows4_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $m)))
        (local.set $j (i32.const 0))
        (loop $cols
          (local.set $c00 (v128.const i32x4 0 0 0 0))
          (local.set $c01 (local.get $c00))
          (local.set $c10 (local.get $c00)) (local.set $c11 (local.get $c01))
          (local.set $c20 (local.get $c00)) (local.set $c21 (local.get $c01))
          (local.set $c30 (local.get $c00)) (local.set $c31 (local.get $c01))
          (local.set $p0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $k4))))
          (local.set $p1 (i32.add (local.get $p0) (local.get $k4)))
          (local.set $p2 (i32.add (local.get $p1) (local.get $k4)))
          (local.set $p3 (i32.add (local.get $p2) (local.get $k4)))
          (local.set $pw (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $kk (local.get $k))
          (loop $inner
            (local.set $w0 (v128.load (local.get $pw)))
            (local.set $w1 (v128.load offset=16 (local.get $pw)))
            (local.set $x (v128.load32_splat (local.get $p0)))
            (local.set $c00 (f32x4.relaxed_madd (local.get $x) (local.get $w0) (local.get $c00)))
            (local.set $c01 (f32x4.relaxed_madd (local.get $x) (local.get $w1) (local.get $c01)))
            (local.set $x (v128.load32_splat (local.get $p1)))
            (local.set $c10 (f32x4.relaxed_madd (local.get $x) (local.get $w0) (local.get $c10)))
            (local.set $c11 (f32x4.relaxed_madd (local.get $x) (local.get $w1) (local.get $c11)))
            (local.set $x (v128.load32_splat (local.get $p2)))
            (local.set $c20 (f32x4.relaxed_madd (local.get $x) (local.get $w0) (local.get $c20)))
            (local.set $c21 (f32x4.relaxed_madd (local.get $x) (local.get $w1) (local.get $c21)))
            (local.set $x (v128.load32_splat (local.get $p3)))
            (local.set $c30 (f32x4.relaxed_madd (local.get $x) (local.get $w0) (local.get $c30)))
            (local.set $c31 (f32x4.relaxed_madd (local.get $x) (local.get $w1) (local.get $c31)))
            (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
            (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
            (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
            (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
            (local.set $pw (i32.add (local.get $pw) (local.get $n4)))
            (br_if $inner (local.tee $kk (i32.sub (local.get $kk) (i32.const 1)))))
          (local.set $w0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $po (i32.add (local.get $out)
            (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
          (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c00) (local.get $w0)))))
          (v128.store offset=16 (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c01) (local.get $w1)))))
          (local.set $po (i32.add (local.get $po) (local.get $n4)))
          (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c10) (local.get $w0)))))
          (v128.store offset=16 (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c11) (local.get $w1)))))
          (local.set $po (i32.add (local.get $po) (local.get $n4)))
          (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c20) (local.get $w0)))))
          (v128.store offset=16 (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c21) (local.get $w1)))))
          (local.set $po (i32.add (local.get $po) (local.get $n4)))
          (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c30) (local.get $w0)))))
          (v128.store offset=16 (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c31) (local.get $w1)))))
          (br_if $cols (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $rows4)))
    ;; the last m % 4 rows, one at a time
    (block $rows_done
      (loop $rows
        (br_if $rows_done (i32.ge_u (local.get $i) (local.get $m)))
        (local.set $j (i32.const 0))
        (loop $cols1
          (local.set $c00 (v128.const i32x4 0 0 0 0))
          (local.set $c01 (local.get $c00))
          (local.set $p0 (i32.add (local.get $a) (i32.mul (local.get $i) (local.get $k4))))
          (local.set $pw (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 2))))
          (local.set $kk (local.get $k))
          (loop $inner1
            (local.set $x (v128.load32_splat (local.get $p0)))
            (local.set $c00 (f32x4.relaxed_madd (local.get $x) (v128.load (local.get $pw)) (local.get $c00)))
            (local.set $c01 (f32x4.relaxed_madd (local.get $x) (v128.load offset=16 (local.get $pw)) (local.get $c01)))
            (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
            (local.set $pw (i32.add (local.get $pw) (local.get $n4)))
            (br_if $inner1 (local.tee $kk (i32.sub (local.get $kk) (i32.const 1)))))
          (local.set $w0 (v128.load (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $w1 (v128.load offset=16 (i32.add (local.get $bias) (i32.shl (local.get $j) (i32.const 2)))))
          (local.set $po (i32.add (local.get $out)
            (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $j)) (i32.const 2))))
          (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c00) (local.get $w0)))))
          (v128.store offset=16 (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (f32x4.add (local.get $c01) (local.get $w1)))))
          (br_if $cols1 (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 8))) (local.get $n))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rows))))

  ;; acc + the taps of one output inside the input, in ky, kx order (filter vectors from memory)
  (func $edge (param $in i32) (param $wt i32) (param $iy0 i32) (param $ix0 i32) (param $h i32) (param $w i32)
    (param $c4 i32) (param $acc v128) (result v128)
    (local $ky i32) (local $kx i32) (local $iy i32) (local $ix i32)
    (loop $rows
      (local.set $iy (i32.add (local.get $iy0) (local.get $ky)))
      (if (i32.lt_u (local.get $iy) (local.get $h))
        (then
          (local.set $kx (i32.const 0))
          (loop $cols
            (local.set $ix (i32.add (local.get $ix0) (local.get $kx)))
            (if (i32.lt_u (local.get $ix) (local.get $w))
              (then
                (local.set $acc (f32x4.relaxed_madd
                  (v128.load (i32.add (local.get $in)
                    (i32.mul (i32.add (i32.mul (local.get $iy) (local.get $w)) (local.get $ix)) (local.get $c4))))
                  (v128.load (i32.add (local.get $wt)
                    (i32.mul (i32.add (i32.mul (local.get $ky) (i32.const 3)) (local.get $kx)) (local.get $c4))))
                  (local.get $acc)))))
            (br_if $cols (i32.lt_u (local.tee $kx (i32.add (local.get $kx) (i32.const 1))) (i32.const 3))))))
      (br_if $rows (i32.lt_u (local.tee $ky (i32.add (local.get $ky) (i32.const 1))) (i32.const 3))))
    (local.get $acc))

  (func (export "depthwise")
    (param $in i32) (param $wt i32) (param $bias i32) (param $out i32)
    (param $h i32) (param $w i32) (param $c i32) (param $oh i32) (param $ow i32)
    (param $s i32) (param $top i32) (param $left i32) (param $lo f32) (param $hi f32)
    (param $r0 i32) (param $r1 i32)
    (local $r i32) (local $b i32) (local $iy0 i32) (local $ox i32) (local $cc i32) (local $end i32)
    (local $c4 i32) (local $c8 i32) (local $row4 i32) (local $step i32) (local $oxa i32) (local $oxb i32)
    (local $img i32) (local $p i32) (local $po i32) (local $wc i32) (local $pb i32)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128) (local $w4 v128)
    (local $w5 v128) (local $w6 v128) (local $w7 v128) (local $w8 v128)
    (local $acc v128) (local $vlo v128) (local $vhi v128)
    (local.set $c4 (i32.shl (local.get $c) (i32.const 2)))
    (local.set $c8 (i32.shl (local.get $c) (i32.const 3)))
    (local.set $row4 (i32.mul (local.get $w) (local.get $c4)))
    (local.set $step (i32.mul (local.get $s) (local.get $c4)))
    (local.set $vlo (f32x4.splat (local.get $lo)))
    (local.set $vhi (f32x4.splat (local.get $hi)))
    ;; outputs whose three columns are inside the input: ox*s - left >= 0 and ox*s - left + 2 < w
    (local.set $oxa (i32.div_u (i32.add (local.get $left) (i32.sub (local.get $s) (i32.const 1))) (local.get $s)))
    (local.set $oxb (i32.const 0))
    (if (i32.ge_s (i32.add (i32.sub (local.get $w) (i32.const 3)) (local.get $left)) (i32.const 0))
      (then (local.set $oxb (i32.add (i32.div_u (i32.add (i32.sub (local.get $w) (i32.const 3)) (local.get $left))
        (local.get $s)) (i32.const 1)))))
    (if (i32.gt_u (local.get $oxb) (local.get $ow)) (then (local.set $oxb (local.get $ow))))
    (if (i32.gt_u (local.get $oxa) (local.get $oxb)) (then (local.set $oxa (local.get $oxb))))
    (local.set $r (local.get $r0))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $r) (local.get $r1)))
        (local.set $b (i32.div_u (local.get $r) (local.get $oh)))
        (local.set $iy0 (i32.sub (i32.mul (i32.rem_u (local.get $r) (local.get $oh)) (local.get $s)) (local.get $top)))
        (local.set $img (i32.add (local.get $in) (i32.mul (i32.mul (local.get $b) (local.get $h)) (local.get $row4))))
        (local.set $cc (i32.const 0))
        (loop $groups
          (local.set $wc (i32.add (local.get $wt) (local.get $cc)))
          (local.set $w0 (v128.load (local.get $wc)))
          (local.set $w1 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w2 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w3 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w4 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w5 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w6 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w7 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $w8 (v128.load (local.tee $wc (i32.add (local.get $wc) (local.get $c4)))))
          (local.set $pb (i32.add (local.get $bias) (local.get $cc)))
          (local.set $po (i32.add (i32.add (local.get $out)
            (i32.mul (i32.mul (local.get $r) (local.get $ow)) (local.get $c4))) (local.get $cc)))
          ;; a row whose three input rows are all inside: border outputs, then the inner ones unrolled
          (local.set $ox (i32.const 0))
          (local.set $end (local.get $ow))
          (if (i32.and (i32.ge_s (local.get $iy0) (i32.const 0)) (i32.lt_s (i32.add (local.get $iy0) (i32.const 2)) (local.get $h)))
            (then (local.set $end (local.get $oxa))))
          (block $left_done
            (loop $left_edge
              (br_if $left_done (i32.ge_u (local.get $ox) (local.get $end)))
              (local.set $acc (call $edge (i32.add (local.get $img) (local.get $cc)) (i32.add (local.get $wt) (local.get $cc))
                (local.get $iy0) (i32.sub (i32.mul (local.get $ox) (local.get $s)) (local.get $left))
                (local.get $h) (local.get $w) (local.get $c4) (v128.const i32x4 0 0 0 0)))
              (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $pb))))
              (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (local.get $acc))))
              (local.set $po (i32.add (local.get $po) (local.get $c4)))
              (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
              (br $left_edge)))
          (if (i32.lt_u (local.get $ox) (local.get $oxb))
            (then
              (local.set $p (i32.add (i32.add (local.get $img) (local.get $cc))
                (i32.add (i32.mul (local.get $iy0) (local.get $row4))
                  (i32.mul (i32.sub (i32.mul (local.get $ox) (local.get $s)) (local.get $left)) (local.get $c4)))))
              (loop $inner
                (local.set $acc (f32x4.mul (v128.load (local.get $p)) (local.get $w0)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $p) (local.get $c4))) (local.get $w1) (local.get $acc)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $p) (local.get $c8))) (local.get $w2) (local.get $acc)))
                (local.set $wc (i32.add (local.get $p) (local.get $row4)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (local.get $wc)) (local.get $w3) (local.get $acc)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $wc) (local.get $c4))) (local.get $w4) (local.get $acc)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $wc) (local.get $c8))) (local.get $w5) (local.get $acc)))
                (local.set $wc (i32.add (local.get $wc) (local.get $row4)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (local.get $wc)) (local.get $w6) (local.get $acc)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $wc) (local.get $c4))) (local.get $w7) (local.get $acc)))
                (local.set $acc (f32x4.relaxed_madd (v128.load (i32.add (local.get $wc) (local.get $c8))) (local.get $w8) (local.get $acc)))
                (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $pb))))
                (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (local.get $acc))))
                (local.set $po (i32.add (local.get $po) (local.get $c4)))
                (local.set $p (i32.add (local.get $p) (local.get $step)))
                (br_if $inner (i32.lt_u (local.tee $ox (i32.add (local.get $ox) (i32.const 1))) (local.get $oxb))))))
          (block $right_done
            (loop $right_edge
              (br_if $right_done (i32.ge_u (local.get $ox) (local.get $ow)))
              (local.set $acc (call $edge (i32.add (local.get $img) (local.get $cc)) (i32.add (local.get $wt) (local.get $cc))
                (local.get $iy0) (i32.sub (i32.mul (local.get $ox) (local.get $s)) (local.get $left))
                (local.get $h) (local.get $w) (local.get $c4) (v128.const i32x4 0 0 0 0)))
              (local.set $acc (f32x4.add (local.get $acc) (v128.load (local.get $pb))))
              (v128.store (local.get $po) (f32x4.pmin (local.get $vhi) (f32x4.pmax (local.get $vlo) (local.get $acc))))
              (local.set $po (i32.add (local.get $po) (local.get $c4)))
              (local.set $ox (i32.add (local.get $ox) (i32.const 1)))
              (br $right_edge)))
          (br_if $groups (i32.lt_u (local.tee $cc (i32.add (local.get $cc) (i32.const 16))) (local.get $c4))))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rows)))))
