//! scrypt's BlockMix over Salsa20/8 (RFC 7914 §3, §4), in the "diagonal"
//! word layout that lets the four quarter-round lanes of Salsa20 run as four
//! 128-bit vectors (the trick of Percival's `crypto_scrypt-sse.c`).
//!
//! Layout: inside every 64-byte sub-block, position `i` holds the
//! little-endian word `PIVOT[i]` of the RFC layout.  With that layout the
//! Salsa20 column round is four vector operations on the rows
//! `a = (x0,x5,x10,x15)`, `b = (x4,x9,x14,x3)`, `c = (x8,x13,x2,x7)`,
//! `d = (x12,x1,x6,x11)`, and the row round is the same after rotating
//! `b`, `c`, `d` by 1, 2, 3 words.  All backends (SSE2, AVX-512VL, simd128,
//! scalar) use this one layout, so a lane's working state never changes
//! format between them; `shuffle_in` / `shuffle_out` convert a whole block
//! from / to the RFC layout at the start / end of ROMix.
//!
//! The words are stored little-endian in the byte buffers on every target
//! this module is built for (x86_64 and wasm32 are little-endian; the scalar
//! path converts explicitly, so it is correct on big-endian targets too).

/// Diagonal order: position `i` of a shuffled sub-block holds RFC word `PIVOT[i]`.
pub(super) const PIVOT: [usize; 16] = [0, 5, 10, 15, 4, 9, 14, 3, 8, 13, 2, 7, 12, 1, 6, 11];

/// Inverse of [`PIVOT`]: RFC word `k` sits at position `INV[k]`.
pub(super) const INV: [usize; 16] = {
    let mut inv = [0usize; 16];
    let mut i = 0;
    while i < 16 {
        inv[PIVOT[i]] = i;
        i += 1;
    }
    inv
};

/// Position (in 32-bit words) of RFC word 1 inside a shuffled sub-block:
/// Integerify needs words 0 and 1 of the last sub-block when N > 2^32.
pub(super) const WORD1_POS: usize = INV[1];

#[inline]
fn rd(b: &[u8], w: usize) -> u32 {
    u32::from_le_bytes([b[4 * w], b[4 * w + 1], b[4 * w + 2], b[4 * w + 3]])
}

#[inline]
fn wr(b: &mut [u8], w: usize, v: u32) {
    b[4 * w..4 * w + 4].copy_from_slice(&v.to_le_bytes());
}

/// RFC layout → diagonal layout, in place, for every 64-byte sub-block.
pub(super) fn shuffle_in(block: &mut [u8]) {
    for sub in block.chunks_exact_mut(64) {
        let mut t = [0u32; 16];
        for (k, t) in t.iter_mut().enumerate() {
            *t = rd(sub, k);
        }
        for (i, &k) in PIVOT.iter().enumerate() {
            wr(sub, i, t[k]);
        }
    }
}

/// Diagonal layout → RFC layout, in place.
pub(super) fn shuffle_out(block: &mut [u8]) {
    for sub in block.chunks_exact_mut(64) {
        let mut t = [0u32; 16];
        for (i, t) in t.iter_mut().enumerate() {
            *t = rd(sub, i);
        }
        for (i, &k) in PIVOT.iter().enumerate() {
            wr(sub, k, t[i]);
        }
    }
}

/// Integerify (RFC 7914 §5) on a shuffled block: the first 64 bits of the
/// last sub-block, little-endian (RFC words 0 and 1, at positions 0 and 13).
#[inline]
pub(super) fn integerify(x: &[u8]) -> u64 {
    let last = &x[x.len() - 64..];
    u64::from(rd(last, 0)) | (u64::from(rd(last, WORD1_POS)) << 32)
}

/// `out = BlockMix(input)`.  `input.len() == out.len()`, a non-zero multiple of 128.
#[inline]
pub(super) fn block_mix(input: &[u8], out: &mut [u8]) {
    check(input, input, out);
    imp::block_mix::<false>(input, input, out);
}

/// `out = BlockMix(a XOR b)` without materialising `a XOR b` (ROMix step 3's
/// `X xor V_j` fused into the mix).
#[inline]
pub(super) fn block_mix_xor(a: &[u8], b: &[u8], out: &mut [u8]) {
    check(a, b, out);
    imp::block_mix::<true>(a, b, out);
}

/// The backends use raw pointers: these lengths are what makes that sound.
/// Cheap (once per BlockMix of 128·r bytes); a failure is a bug in romix.
#[inline]
fn check(a: &[u8], b: &[u8], out: &[u8]) {
    assert!(
        !a.is_empty() && a.len() % 128 == 0 && b.len() == a.len() && out.len() == a.len(),
        "BlockMix length invariant"
    );
}

/// Name of the compiled BlockMix backend (for reports and benches).
pub(super) fn backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    return imp::name();
    #[cfg(not(target_arch = "x86_64"))]
    imp::NAME
}

/// `out = BlockMix(a [XOR b])` by every backend variant this machine runs.
#[cfg(test)]
pub(super) fn variants<const XOR: bool>(a: &[u8], b: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    check(a, b, a);
    #[cfg(target_arch = "x86_64")]
    return imp::variants::<XOR>(a, b);
    #[cfg(not(target_arch = "x86_64"))]
    {
        let mut o = vec![0u8; a.len()];
        imp::block_mix::<XOR>(a, b, &mut o);
        vec![(imp::NAME, o)]
    }
}

// ---------------------------------------------------------------------------
// The SIMD BlockMix, written once over a 4 × u32 vector (`Simd`): SSE2 and
// AVX-512VL on x86_64, simd128 on wasm32. Each backend only says how to load,
// store, add, xor, rotate and turn a row.
// ---------------------------------------------------------------------------
#[cfg(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128")))]
mod simd {
    /// Four 32-bit words in one register.
    /// Safety: implementations may need CPU features (see each backend).
    pub(super) trait Simd {
        type V: Copy;
        unsafe fn load(p: *const u8) -> Self::V;
        unsafe fn store(p: *mut u8, v: Self::V);
        unsafe fn xor(a: Self::V, b: Self::V) -> Self::V;
        unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
        /// Rotate each word left by L (R = 32 − L).
        unsafe fn rol<const L: i32, const R: i32>(w: Self::V) -> Self::V;
        /// The row turns of the diagonal layout: words rotated by 1, 2, 3 positions.
        unsafe fn turn1(v: Self::V) -> Self::V;
        unsafe fn turn2(v: Self::V) -> Self::V;
        unsafe fn turn3(v: Self::V) -> Self::V;
        /// Ask for the cache line at `p` (a hint; may do nothing).
        unsafe fn prefetch(_p: *const u8) {}
    }

    /// `out = BlockMix(a [XOR b])` in the diagonal layout.
    /// Safety: `check` guaranteed a, b, out are all `len` bytes, len a non-zero
    /// multiple of 128; every access below is a 16-byte unaligned load/store at
    /// offset ≤ len − 16 of one of them; `S`'s CPU features are present.
    #[inline(always)]
    pub(super) unsafe fn block_mix<const XOR: bool, S: Simd>(a: &[u8], b: &[u8], out: &mut [u8]) {
        let len = a.len();
        let half = len / 2;
        let (pa, pb, po) = (a.as_ptr(), b.as_ptr(), out.as_mut_ptr());
        unsafe {
            let ld = |p: *const u8, o: usize| S::load(p.add(o));
            // ROMix hands BlockMix one random 128·r-byte V entry (`b` for the
            // xor form, `a` for the trade-off's recomputation): request all of
            // its cache lines at once instead of one after another as the
            // chain reaches them (measured: −19 % CPU time at N = 2^19, r = 8).
            let far = if XOR { pb } else { pa };
            let mut o = 0;
            while o < len {
                S::prefetch(far.add(o));
                o += 64;
            }
            let last = len - 64;
            let mut x = [ld(pa, last), ld(pa, last + 16), ld(pa, last + 32), ld(pa, last + 48)];
            if XOR {
                for (k, x) in x.iter_mut().enumerate() {
                    *x = S::xor(*x, ld(pb, last + 16 * k));
                }
            }
            for i in 0..len / 64 {
                let off = i * 64;
                for (k, x) in x.iter_mut().enumerate() {
                    *x = S::xor(*x, ld(pa, off + 16 * k));
                    if XOR {
                        *x = S::xor(*x, ld(pb, off + 16 * k));
                    }
                }
                let [mut a, mut b, mut c, mut d] = x;
                for _ in 0..8 {
                    b = S::xor(b, S::rol::<7, 25>(S::add(a, d)));
                    c = S::xor(c, S::rol::<9, 23>(S::add(b, a)));
                    d = S::xor(d, S::rol::<13, 19>(S::add(c, b)));
                    a = S::xor(a, S::rol::<18, 14>(S::add(d, c)));
                    let nb = S::turn1(d);
                    c = S::turn2(c);
                    d = S::turn3(b);
                    b = nb;
                }
                x = [S::add(a, x[0]), S::add(b, x[1]), S::add(c, x[2]), S::add(d, x[3])];
                let pos = (i / 2) * 64 + (i & 1) * half;
                for (k, x) in x.iter().enumerate() {
                    S::store(po.add(pos + 16 * k), *x);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// x86_64: SSE2 (baseline on every x86_64 CPU), and the same code with the
// AVX-512VL one-instruction rotate `vprold` where the CPU has it (runtime
// detection).  BlockMix is one serial chain of Salsa20/8 cores, so its speed
// is the latency of add → rotate → xor: a rotate of one instruction instead
// of shift, shift, or made one lane ~1/3 faster (measured: 500 × N=2^10 r=8,
// 1.07 s → 0.72 s CPU).  An AVX2 build of the same code (VEX encoding only)
// was measured too and brought nothing, so there is none: wider registers
// have nothing to work on within one lane, and lanes run separately on
// purpose (see mod.rs).  AVX-512 intrinsics need Rust ≥ 1.89.
// ---------------------------------------------------------------------------
#[cfg(target_arch = "x86_64")]
mod imp {
    use super::simd::{self, Simd};
    use core::arch::x86_64::*;

    pub(super) struct Sse2;
    impl Simd for Sse2 {
        type V = __m128i;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> __m128i {
            unsafe { _mm_loadu_si128(p.cast()) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut u8, v: __m128i) {
            unsafe { _mm_storeu_si128(p.cast(), v) }
        }
        #[inline(always)]
        unsafe fn xor(a: __m128i, b: __m128i) -> __m128i {
            unsafe { _mm_xor_si128(a, b) }
        }
        #[inline(always)]
        unsafe fn add(a: __m128i, b: __m128i) -> __m128i {
            unsafe { _mm_add_epi32(a, b) }
        }
        #[inline(always)]
        unsafe fn rol<const L: i32, const R: i32>(w: __m128i) -> __m128i {
            unsafe { _mm_or_si128(_mm_slli_epi32::<L>(w), _mm_srli_epi32::<R>(w)) }
        }
        #[inline(always)]
        unsafe fn turn1(v: __m128i) -> __m128i {
            unsafe { _mm_shuffle_epi32::<0b00_11_10_01>(v) }
        }
        #[inline(always)]
        unsafe fn turn2(v: __m128i) -> __m128i {
            unsafe { _mm_shuffle_epi32::<0b01_00_11_10>(v) }
        }
        #[inline(always)]
        unsafe fn turn3(v: __m128i) -> __m128i {
            unsafe { _mm_shuffle_epi32::<0b10_01_00_11>(v) }
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const u8) {
            unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) }
        }
    }

    /// SSE2 with the AVX-512VL rotate. Safety: only on CPUs with AVX-512F and AVX-512VL.
    pub(super) struct Avx512;
    impl Simd for Avx512 {
        type V = __m128i;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> __m128i {
            unsafe { Sse2::load(p) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut u8, v: __m128i) {
            unsafe { Sse2::store(p, v) }
        }
        #[inline(always)]
        unsafe fn xor(a: __m128i, b: __m128i) -> __m128i {
            unsafe { Sse2::xor(a, b) }
        }
        #[inline(always)]
        unsafe fn add(a: __m128i, b: __m128i) -> __m128i {
            unsafe { Sse2::add(a, b) }
        }
        // Stable since Rust 1.89 (the crate's rust-version).
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl")]
        unsafe fn rol<const L: i32, const R: i32>(w: __m128i) -> __m128i {
            _mm_rol_epi32::<L>(w)
        }
        #[inline(always)]
        unsafe fn turn1(v: __m128i) -> __m128i {
            unsafe { Sse2::turn1(v) }
        }
        #[inline(always)]
        unsafe fn turn2(v: __m128i) -> __m128i {
            unsafe { Sse2::turn2(v) }
        }
        #[inline(always)]
        unsafe fn turn3(v: __m128i) -> __m128i {
            unsafe { Sse2::turn3(v) }
        }
        #[inline(always)]
        unsafe fn prefetch(p: *const u8) {
            unsafe { Sse2::prefetch(p) }
        }
    }

    #[target_feature(enable = "avx512f,avx512vl")]
    unsafe fn bm_avx512<const XOR: bool>(a: &[u8], b: &[u8], out: &mut [u8]) {
        unsafe { simd::block_mix::<XOR, Avx512>(a, b, out) }
    }
    /// `is_x86_feature_detected!` caches its answer: one atomic load per call.
    #[inline(always)]
    fn has_avx512vl() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512vl")
    }

    pub(super) fn name() -> &'static str {
        if has_avx512vl() {
            "avx512vl"
        } else {
            "sse2"
        }
    }

    #[inline(always)]
    pub(super) fn block_mix<const XOR: bool>(a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: lengths checked by `check`; bm_avx512 only where the CPU has
        // the features it is compiled for; SSE2 is baseline on x86_64.
        unsafe {
            if has_avx512vl() {
                bm_avx512::<XOR>(a, b, out)
            } else {
                simd::block_mix::<XOR, Sse2>(a, b, out)
            }
        }
    }

    /// Every variant this CPU can run, for the tests.
    #[cfg(test)]
    pub(super) fn variants<const XOR: bool>(a: &[u8], b: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
        let mut v = Vec::new();
        let mut o = vec![0u8; a.len()];
        unsafe { simd::block_mix::<XOR, Sse2>(a, b, &mut o) };
        v.push(("sse2", o.clone()));
        if has_avx512vl() {
            unsafe { bm_avx512::<XOR>(a, b, &mut o) };
            v.push(("avx512vl", o));
        }
        v
    }
}

// ---------------------------------------------------------------------------
// wasm32 with the simd128 proposal (every current browser).
// ---------------------------------------------------------------------------
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod imp {
    use super::simd::{self, Simd};
    use core::arch::wasm32::*;

    pub(super) const NAME: &str = "simd128";

    struct Wasm;
    impl Simd for Wasm {
        type V = v128;
        #[inline(always)]
        unsafe fn load(p: *const u8) -> v128 {
            unsafe { v128_load(p.cast()) }
        }
        #[inline(always)]
        unsafe fn store(p: *mut u8, v: v128) {
            unsafe { v128_store(p.cast(), v) }
        }
        #[inline(always)]
        unsafe fn xor(a: v128, b: v128) -> v128 {
            v128_xor(a, b)
        }
        #[inline(always)]
        unsafe fn add(a: v128, b: v128) -> v128 {
            u32x4_add(a, b)
        }
        #[inline(always)]
        unsafe fn rol<const L: i32, const R: i32>(w: v128) -> v128 {
            v128_or(u32x4_shl(w, L as u32), u32x4_shr(w, R as u32))
        }
        #[inline(always)]
        unsafe fn turn1(v: v128) -> v128 {
            i32x4_shuffle::<1, 2, 3, 0>(v, v)
        }
        #[inline(always)]
        unsafe fn turn2(v: v128) -> v128 {
            i32x4_shuffle::<2, 3, 0, 1>(v, v)
        }
        #[inline(always)]
        unsafe fn turn3(v: v128) -> v128 {
            i32x4_shuffle::<3, 0, 1, 2>(v, v)
        }
    }

    #[inline(always)]
    pub(super) fn block_mix<const XOR: bool>(a: &[u8], b: &[u8], out: &mut [u8]) {
        // SAFETY: lengths checked by `check`; wasm loads and stores need no alignment.
        unsafe { simd::block_mix::<XOR, Wasm>(a, b, out) }
    }
}

// ---------------------------------------------------------------------------
// Portable scalar fallback (wasm32 without simd128, other architectures).
// It works on the same diagonal layout: it gathers the RFC words through the
// constant `INV` table, which the compiler resolves at compile time.
// ---------------------------------------------------------------------------
#[cfg(not(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
)))]
mod imp {
    pub(super) use super::scalar::block_mix;
    pub(super) const NAME: &str = "scalar";
}

/// The scalar BlockMix, compiled everywhere so tests can check the SIMD
/// backend against it.
#[cfg_attr(
    any(
        target_arch = "x86_64",
        all(target_arch = "wasm32", target_feature = "simd128")
    ),
    allow(dead_code)
)]
pub(super) mod scalar {
    use super::{rd, wr, INV};

    #[inline(always)]
    fn salsa20_8(x: &mut [u32; 16]) {
        let orig = *x;
        macro_rules! qr {
            ($a:expr, $b:expr, $c:expr, $d:expr) => {
                x[$b] ^= x[$a].wrapping_add(x[$d]).rotate_left(7);
                x[$c] ^= x[$b].wrapping_add(x[$a]).rotate_left(9);
                x[$d] ^= x[$c].wrapping_add(x[$b]).rotate_left(13);
                x[$a] ^= x[$d].wrapping_add(x[$c]).rotate_left(18);
            };
        }
        for _ in 0..4 {
            qr!(0, 4, 8, 12);
            qr!(5, 9, 13, 1);
            qr!(10, 14, 2, 6);
            qr!(15, 3, 7, 11);
            qr!(0, 1, 2, 3);
            qr!(5, 6, 7, 4);
            qr!(10, 11, 8, 9);
            qr!(15, 12, 13, 14);
        }
        for (x, o) in x.iter_mut().zip(orig.iter()) {
            *x = x.wrapping_add(*o);
        }
    }

    /// `out = BlockMix(a XOR b)` (or of `a` alone when `!XOR`), diagonal layout.
    #[inline(always)]
    pub(in super::super) fn block_mix<const XOR: bool>(a: &[u8], b: &[u8], out: &mut [u8]) {
        let len = a.len();
        let half = len / 2;
        // x in RFC word order
        let mut x = [0u32; 16];
        let last = len - 64;
        for (k, x) in x.iter_mut().enumerate() {
            *x = rd(&a[last..], INV[k]);
            if XOR {
                *x ^= rd(&b[last..], INV[k]);
            }
        }
        for i in 0..len / 64 {
            let off = i * 64;
            for (k, x) in x.iter_mut().enumerate() {
                *x ^= rd(&a[off..], INV[k]);
                if XOR {
                    *x ^= rd(&b[off..], INV[k]);
                }
            }
            salsa20_8(&mut x);
            let pos = (i / 2) * 64 + (i & 1) * half;
            let o = &mut out[pos..pos + 64];
            for (k, x) in x.iter().enumerate() {
                wr(o, INV[k], *x);
            }
        }
    }
}
