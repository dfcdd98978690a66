;; One Adam step over a whole variable in a single pass (see adam.js for why).
;; It reads the variable, its gradient and both moments from tfjs-backend-wasm's memory
;; and writes three new buffers, so no tensor TF.js knows is changed in place.
;; The arithmetic is tf.train.adam's, op for op in float32 (no fused multiply-add):
;;   m' = m*b1 + g*(1-b1)         v' = v*b2 + g*g*(1-b2)
;;   w' = ((m'/c1) / (sqrt(v'/c2) + eps)) * -lr + w     with c1 = 1-b1^t, c2 = 1-b2^t
;; Byte offsets, element count n. Four lanes at a time; the tail lane by lane.
(module
  (import "env" "memory" (memory $mem 1 65536 shared))
  (func (export "adam")
    (param $w i32) (param $g i32) (param $m i32) (param $v i32)
    (param $wo i32) (param $mo i32) (param $vo i32) (param $n i32)
    (param $b1 f32) (param $omb1 f32) (param $b2 f32) (param $omb2 f32)
    (param $c1 f32) (param $c2 f32) (param $eps f32) (param $nlr f32)
    (local $i i32) (local $end4 i32) (local $end i32)
    (local $g4 v128) (local $m4 v128) (local $v4 v128)
    (local $B1 v128) (local $OMB1 v128) (local $B2 v128) (local $OMB2 v128)
    (local $C1 v128) (local $C2 v128) (local $EPS v128) (local $NLR v128)
    (local $gs f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $OMB1 (f32x4.splat (local.get $omb1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $OMB2 (f32x4.splat (local.get $omb2)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $NLR (f32x4.splat (local.get $nlr)))
    (local.set $end (i32.shl (local.get $n) (i32.const 2)))
    (local.set $end4 (i32.and (local.get $end) (i32.const -16)))
    (local.set $i (i32.const 0))
    (block $done4
      (loop $lanes4
        (br_if $done4 (i32.ge_u (local.get $i) (local.get $end4)))
        (local.set $g4 (v128.load (i32.add (local.get $g) (local.get $i))))
        (local.set $m4 (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $B1))
          (f32x4.mul (local.get $g4) (local.get $OMB1))))
        (local.set $v4 (f32x4.add
          (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $B2))
          (f32x4.mul (f32x4.mul (local.get $g4) (local.get $g4)) (local.get $OMB2))))
        (v128.store (i32.add (local.get $mo) (local.get $i)) (local.get $m4))
        (v128.store (i32.add (local.get $vo) (local.get $i)) (local.get $v4))
        (v128.store (i32.add (local.get $wo) (local.get $i))
          (f32x4.add
            (f32x4.mul
              (f32x4.div
                (f32x4.div (local.get $m4) (local.get $C1))
                (f32x4.add (f32x4.sqrt (f32x4.div (local.get $v4) (local.get $C2))) (local.get $EPS)))
              (local.get $NLR))
            (v128.load (i32.add (local.get $w) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $lanes4)))
    (block $done
      (loop $lanes
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (local.set $ms (f32.add
          (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
          (f32.mul (local.get $gs) (local.get $omb1))))
        (local.set $vs (f32.add
          (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
          (f32.mul (f32.mul (local.get $gs) (local.get $gs)) (local.get $omb2))))
        (f32.store (i32.add (local.get $mo) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $vo) (local.get $i)) (local.get $vs))
        (f32.store (i32.add (local.get $wo) (local.get $i))
          (f32.add
            (f32.mul
              (f32.div
                (f32.div (local.get $ms) (local.get $c1))
                (f32.add (f32.sqrt (f32.div (local.get $vs) (local.get $c2))) (local.get $eps)))
              (local.get $nlr))
            (f32.load (i32.add (local.get $w) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $lanes))))
)
