(module
  (import "env" "memory" (memory 0))
  ;; dst[i] -= src[i] * u for i < n (float32; byte offsets)
  (func (export "subScaled") (param $dst i32) (param $src i32) (param $n i32) (param $u f32)
    (local $end i32) (local $end4 i32) (local $uv v128)
    (local.set $uv (f32x4.splat (local.get $u)))
    (local.set $end (i32.add (local.get $dst) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end4 (i32.add (local.get $dst) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $done4
      (loop $l4
        (br_if $done4 (i32.ge_u (local.get $dst) (local.get $end4)))
        (v128.store (local.get $dst)
          (f32x4.sub (v128.load (local.get $dst)) (f32x4.mul (v128.load (local.get $src)) (local.get $uv))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
        (local.set $src (i32.add (local.get $src) (i32.const 16)))
        (br $l4)))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $dst) (local.get $end)))
        (f32.store (local.get $dst)
          (f32.sub (f32.load (local.get $dst)) (f32.mul (f32.load (local.get $src)) (local.get $u))))
        (local.set $dst (i32.add (local.get $dst) (i32.const 4)))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (br $l)))
  )
  ;; AWQ clipping errors: for each of `count` blocks of b (a multiple of 4) values w, with params
  ;; (clo, chi, inv, scale, zero) at params + 20·j: d = (clamp(floor(clamp(w, clo, chi)·inv + 0.5) + zero, 0, levels) − zero)·scale − w
  (func (export "clipErrors") (param $w i32) (param $d i32) (param $p i32) (param $count i32) (param $b i32) (param $levels f32)
    (local $pend i32) (local $bend i32)
    (local $clo v128) (local $chi v128) (local $inv v128) (local $scale v128) (local $zero v128)
    (local $half v128) (local $zerov v128) (local $lv v128) (local $x v128) (local $q v128)
    (local.set $half (f32x4.splat (f32.const 0.5)))
    (local.set $zerov (f32x4.splat (f32.const 0)))
    (local.set $lv (f32x4.splat (local.get $levels)))
    (local.set $pend (i32.add (local.get $p) (i32.mul (local.get $count) (i32.const 20))))
    (block $done
      (loop $blocks
        (br_if $done (i32.ge_u (local.get $p) (local.get $pend)))
        (local.set $clo (v128.load32_splat (local.get $p)))
        (local.set $chi (v128.load32_splat offset=4 (local.get $p)))
        (local.set $inv (v128.load32_splat offset=8 (local.get $p)))
        (local.set $scale (v128.load32_splat offset=12 (local.get $p)))
        (local.set $zero (v128.load32_splat offset=16 (local.get $p)))
        (local.set $bend (i32.add (local.get $w) (i32.shl (local.get $b) (i32.const 2))))
        (block $bdone
          (loop $vals
            (br_if $bdone (i32.ge_u (local.get $w) (local.get $bend)))
            (local.set $x (v128.load (local.get $w)))
            (local.set $q
              (f32x4.add
                (f32x4.floor (f32x4.add (f32x4.mul (f32x4.pmin (f32x4.pmax (local.get $x) (local.get $clo)) (local.get $chi)) (local.get $inv)) (local.get $half)))
                (local.get $zero)))
            (local.set $q (f32x4.pmin (f32x4.pmax (local.get $q) (local.get $zerov)) (local.get $lv)))
            (v128.store (local.get $d)
              (f32x4.sub (f32x4.mul (f32x4.sub (local.get $q) (local.get $zero)) (local.get $scale)) (local.get $x)))
            (local.set $w (i32.add (local.get $w) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (br $vals)))
        (local.set $p (i32.add (local.get $p) (i32.const 20)))
        (br $blocks)))
  )
  ;; GPTQ's range search, one candidate range for n outputs (n a multiple of 4) at once: rows values per output, row r
  ;; at w + r·stride bytes, outputs contiguous; per output its scale s[] and zero z[] (float32); into e[] the squared
  ;; error sum of (v − (clamp(floor(v/s + 0.5) + z, 0, levels) − z)·s)² over the rows.
  (func (export "blockSquaredErrors") (param $w i32) (param $stride i32) (param $rows i32) (param $n i32) (param $s i32) (param $z i32) (param $e i32) (param $levels f32)
    (local $nend i32) (local $r i32) (local $at i32)
    (local $sv v128) (local $zv v128) (local $acc v128) (local $x v128) (local $q v128) (local $d v128)
    (local $half v128) (local $zerov v128) (local $lv v128)
    (local.set $half (f32x4.splat (f32.const 0.5)))
    (local.set $zerov (f32x4.splat (f32.const 0)))
    (local.set $lv (f32x4.splat (local.get $levels)))
    (local.set $nend (i32.add (local.get $s) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $outs
        (br_if $done (i32.ge_u (local.get $s) (local.get $nend)))
        (local.set $sv (v128.load (local.get $s)))
        (local.set $zv (v128.load (local.get $z)))
        (local.set $acc (local.get $zerov))
        (local.set $at (local.get $w))
        (local.set $r (local.get $rows))
        (block $rdone
          (loop $rowsl
            (br_if $rdone (i32.eqz (local.get $r)))
            (local.set $x (v128.load (local.get $at)))
            (local.set $q
              (f32x4.pmin
                (f32x4.pmax
                  (f32x4.add (f32x4.floor (f32x4.add (f32x4.div (local.get $x) (local.get $sv)) (local.get $half))) (local.get $zv))
                  (local.get $zerov))
                (local.get $lv)))
            (local.set $d (f32x4.sub (local.get $x) (f32x4.mul (f32x4.sub (local.get $q) (local.get $zv)) (local.get $sv))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $d) (local.get $d))))
            (local.set $at (i32.add (local.get $at) (local.get $stride)))
            (local.set $r (i32.sub (local.get $r) (i32.const 1)))
            (br $rowsl)))
        (v128.store (local.get $e) (local.get $acc))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 16)))
        (local.set $z (i32.add (local.get $z) (i32.const 16)))
        (local.set $e (i32.add (local.get $e) (i32.const 16)))
        (br $outs)))
  )
)
