;; Bilinear resize over tfjs-backend-wasm's memory (see resize.js for why and how it is
;; driven). The arithmetic is XNNPACK's f32 ibilinear kernel's, operation for operation, so
;; results are bit-exact with TF.js' wasm ResizeBilinear:
;;   top = tl + (tr - tl) * ax;  bottom = bl + (br - bl) * ax;  out = top + (bottom - top) * ay
;; split in two passes: hrow makes `top` (or `bottom`) for one source row, once per row
;; however many output rows use it; vrow blends two such rows, four lanes at a time.
;; vrowNormalise also does preprocess.js' normalisation after the blend, as its TF.js ops do
;; it: ((out - mean) * scale) + offset, one float32 operation at a time.
(module
  (import "env" "memory" (memory $mem 1 65536 shared))

  ;; dst[x*C + c] = l + (r - l) * ax[x], l and r the pixels the table names in row src.
  ;; table: per output x, 12 bytes: left byte offset (i32), right byte offset (i32), ax (f32).
  ;; isInt: src holds int32 (converted as Cast does). simd: one v128 per pixel (C is 3 or 4;
  ;; reads 16 bytes at each pixel, so the caller keeps it off a tensor's last row when C is 3;
  ;; writes 16 bytes, so dst has 4 floats of slack).
  (func (export "hrow")
    (param $src i32) (param $isInt i32) (param $simd i32) (param $dst i32)
    (param $width i32) (param $channels i32) (param $table i32)
    (local $x i32) (local $c i32) (local $end i32) (local $stride i32)
    (local $l v128) (local $r v128) (local $a f32) (local $ls f32) (local $rs f32)
    (local $lp i32) (local $rp i32)
    (local.set $end (i32.add (local.get $table) (i32.mul (local.get $width) (i32.const 12))))
    (local.set $stride (i32.shl (local.get $channels) (i32.const 2)))
    (if (local.get $simd)
      (then
        (block $done
          (loop $px
            (br_if $done (i32.ge_u (local.get $table) (local.get $end)))
            (local.set $l (v128.load (i32.add (local.get $src) (i32.load (local.get $table)))))
            (local.set $r (v128.load (i32.add (local.get $src) (i32.load offset=4 (local.get $table)))))
            (if (local.get $isInt)
              (then
                (local.set $l (f32x4.convert_i32x4_s (local.get $l)))
                (local.set $r (f32x4.convert_i32x4_s (local.get $r)))))
            (v128.store (local.get $dst)
              (f32x4.add (local.get $l)
                (f32x4.mul (f32x4.sub (local.get $r) (local.get $l))
                  (v128.load32_splat offset=8 (local.get $table)))))
            (local.set $table (i32.add (local.get $table) (i32.const 12)))
            (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
            (br $px))))
      (else
        (block $done
          (loop $px
            (br_if $done (i32.ge_u (local.get $table) (local.get $end)))
            (local.set $lp (i32.add (local.get $src) (i32.load (local.get $table))))
            (local.set $rp (i32.add (local.get $src) (i32.load offset=4 (local.get $table))))
            (local.set $a (f32.load offset=8 (local.get $table)))
            (local.set $c (i32.const 0))
            (block $cdone
              (loop $ch
                (br_if $cdone (i32.ge_u (local.get $c) (local.get $stride)))
                (if (local.get $isInt)
                  (then
                    (local.set $ls (f32.convert_i32_s (i32.load (i32.add (local.get $lp) (local.get $c)))))
                    (local.set $rs (f32.convert_i32_s (i32.load (i32.add (local.get $rp) (local.get $c))))))
                  (else
                    (local.set $ls (f32.load (i32.add (local.get $lp) (local.get $c))))
                    (local.set $rs (f32.load (i32.add (local.get $rp) (local.get $c))))))
                (f32.store (i32.add (local.get $dst) (local.get $c))
                  (f32.add (local.get $ls)
                    (f32.mul (f32.sub (local.get $rs) (local.get $ls)) (local.get $a))))
                (local.set $c (i32.add (local.get $c) (i32.const 4)))
                (br $ch)))
            (local.set $table (i32.add (local.get $table) (i32.const 12)))
            (local.set $dst (i32.add (local.get $dst) (local.get $stride)))
            (br $px))))))

  ;; dst[i] = t[i] + (b[i] - t[i]) * ay for i < n
  (func (export "vrow")
    (param $t i32) (param $b i32) (param $ay f32) (param $dst i32) (param $n i32)
    (local $end i32) (local $end4 i32) (local $a v128) (local $tv v128) (local $ts f32)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $a (f32x4.splat (local.get $ay)))
    (block $done
      (loop $v
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end4)))
        (local.set $tv (v128.load (local.get $t)))
        (v128.store (local.get $dst)
          (f32x4.add (local.get $tv)
            (f32x4.mul (f32x4.sub (v128.load (local.get $b)) (local.get $tv)) (local.get $a))))
        (local.set $t (i32.add (local.get $t) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $v)))
    (block $done
      (loop $s
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (local.set $ts (f32.load (local.get $t)))
        (f32.store (local.get $dst)
          (f32.add (local.get $ts)
            (f32.mul (f32.sub (f32.load (local.get $b)) (local.get $ts)) (local.get $ay))))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (br $s))))

  ;; dst[i] = ((t[i] + (b[i] - t[i]) * ay) - mean) * scale + offset for i < n
  (func (export "vrowNormalise")
    (param $t i32) (param $b i32) (param $ay f32) (param $dst i32) (param $n i32)
    (param $mean f32) (param $scale f32) (param $offset f32)
    (local $end i32) (local $end4 i32) (local $a v128) (local $tv v128) (local $ts f32)
    (local $m v128) (local $s v128) (local $o v128)
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (local.set $a (f32x4.splat (local.get $ay)))
    (local.set $m (f32x4.splat (local.get $mean)))
    (local.set $s (f32x4.splat (local.get $scale)))
    (local.set $o (f32x4.splat (local.get $offset)))
    (block $done
      (loop $v
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end4)))
        (local.set $tv (v128.load (local.get $t)))
        (v128.store (local.get $dst)
          (f32x4.add
            (f32x4.mul
              (f32x4.sub
                (f32x4.add (local.get $tv)
                  (f32x4.mul (f32x4.sub (v128.load (local.get $b)) (local.get $tv)) (local.get $a)))
                (local.get $m))
              (local.get $s))
            (local.get $o)))
        (local.set $t (i32.add (local.get $t) (i32.const 16)))
        (local.set $b (i32.add (local.get $b) (i32.const 16)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (br $v)))
    (block $done
      (loop $s1
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (local.set $ts (f32.load (local.get $t)))
        (f32.store (local.get $dst)
          (f32.add
            (f32.mul
              (f32.sub
                (f32.add (local.get $ts)
                  (f32.mul (f32.sub (f32.load (local.get $b)) (local.get $ts)) (local.get $ay)))
                (local.get $mean))
              (local.get $scale))
            (local.get $offset)))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (local.set $b (i32.add (local.get $b) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (br $s1)))))
