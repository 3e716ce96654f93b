//! ROMix (RFC 7914 §5) for one lane, with a segmented V table and an
//! automatic time–memory trade-off.
//!
//! V is a list of segments, each at most `seg_cap` bytes and holding a power
//! of two of entries, so that a 2 GiB V (N = 2^21, r = 8) is never one
//! allocation (wasm32 cannot hand out ≥ 2^31 bytes at once).  Every
//! allocation goes through `try_reserve_exact`; failure is an error.
//!
//! Trade-off: with stride k = 2^s only V_0, V_k, V_2k, … are stored
//! (N/k entries).  V_j is recomputed from V_{j − j mod k} with (j mod k)
//! BlockMix calls; that is exact, so the result is byte-identical to the
//! plain run.  Cost: N (fill) + N·(1 + (k−1)/2) on average (mix) BlockMix
//! calls instead of 2N, i.e. 1 + (k−1)/4 times the plain cost.

use super::salsa::{block_mix, block_mix_xor, integerify, shuffle_in, shuffle_out};
use super::{KdfError, Plan};

/// Largest single allocation for V: 1 GiB (wasm32 allocations must stay
/// below 2^31 bytes; 1 GiB leaves room for the allocator's own rounding).
pub(super) const SEGMENT_CAP: usize = 1 << 30;

/// Highest r accepted (r·p < 2^30 with p ≥ 1).
const R_MAX: u32 = (1 << 30) - 1;

fn check(log_n: u8, r: u32) -> Result<(), KdfError> {
    if !(1..=63).contains(&log_n) || r == 0 || r > R_MAX {
        return Err(KdfError::BadParams);
    }
    Ok(())
}

/// Compute the plan for one lane.  `budget` is clamped to the address space
/// (usize::MAX: 4 GiB on wasm32), so a huge budget still plans a V that can
/// exist and be indexed; V may exceed isize::MAX in total because it is
/// made of segments.
pub(super) fn plan(log_n: u8, r: u32, budget: u64) -> Result<Plan, KdfError> {
    check(log_n, r)?;
    let entry = 128 * u64::from(r); // < 2^37
    let eff = budget.min(usize::MAX as u64);
    if entry > eff {
        return Err(KdfError::OverBudget {
            need: entry,
            budget,
        });
    }
    // smallest s with (N >> s) · entry ≤ eff; s = log_n always fits since entry ≤ eff
    let mut s = 0u8;
    while u128::from(1u64 << (log_n - s)) * u128::from(entry) > u128::from(eff) {
        s += 1;
    }
    let stride = 1u64 << s;
    let stored = 1u64 << (log_n - s);
    Ok(Plan {
        stride,
        stored,
        memory: stored * entry,
        relative_cost: 1.0 + (stride as f64 - 1.0) / 4.0,
    })
}

/// The V table: `stored` entries of `entry` bytes in power-of-two segments.
struct Table {
    segs: Vec<Vec<u8>>,
    entry: usize,
    seg_shift: u32, // entries per segment = 1 << seg_shift
}

impl Table {
    fn alloc(stored: u64, entry: usize, seg_cap: usize) -> Result<Table, KdfError> {
        let oom = |bytes: u64| KdfError::OutOfMemory { bytes };
        // entries per segment: largest power of two with per·entry ≤ seg_cap,
        // at least 1 (so with r ≥ 2^23 one entry, 128·r bytes, exceeds the
        // cap: the lane itself is that big already)
        let per_max = (seg_cap / entry).max(1);
        let seg_shift = usize::BITS - 1 - per_max.leading_zeros();
        let per = 1u64 << seg_shift;
        let nseg = stored.div_ceil(per);
        let nseg_us = usize::try_from(nseg).map_err(|_| oom(stored * entry as u64))?;
        let mut segs: Vec<Vec<u8>> = Vec::new();
        segs.try_reserve_exact(nseg_us)
            .map_err(|_| oom(stored * entry as u64))?;
        let mut left = stored;
        while left > 0 {
            let n = left.min(per);
            let bytes = n * entry as u64;
            let b = usize::try_from(bytes).map_err(|_| oom(bytes))?;
            let mut v = Vec::new();
            v.try_reserve_exact(b).map_err(|_| oom(bytes))?;
            segs.push(v);
            left -= n;
        }
        Ok(Table {
            segs,
            entry,
            seg_shift,
        })
    }

    /// Empty every segment, keeping its memory.
    fn clear(&mut self) {
        for s in &mut self.segs {
            s.clear();
        }
    }

    /// Append the next entry (fill phase; entries arrive in index order).
    #[inline]
    fn push(&mut self, idx: usize, x: &[u8]) {
        let seg = &mut self.segs[idx >> self.seg_shift];
        seg.extend_from_slice(x); // capacity reserved: never reallocates
    }

    #[inline]
    fn get(&self, idx: usize) -> &[u8] {
        let seg = &self.segs[idx >> self.seg_shift];
        let off = (idx & ((1usize << self.seg_shift) - 1)) * self.entry;
        &seg[off..off + self.entry]
    }
}

fn zeroed(len: usize) -> Result<Vec<u8>, KdfError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)
        .map_err(|_| KdfError::OutOfMemory { bytes: len as u64 })?;
    v.resize(len, 0);
    Ok(v)
}

/// Memory for running lanes: the V table and working blocks, kept between
/// lanes so that a thread running several lanes allocates (and, natively,
/// page-faults) V once, as Tarsnap does.
pub(super) struct Work {
    table: Table,
    key: (u64, usize), // (stored, entry) the table was allocated for
    x: Vec<u8>,
    y: Vec<u8>,
    t: Vec<u8>,
    u: Vec<u8>,
}

impl Work {
    pub(super) fn new(plan: &Plan, r: u32, seg_cap: usize) -> Result<Work, KdfError> {
        let entry = usize::try_from(128 * u64::from(r)).map_err(|_| KdfError::BadParams)?;
        let table = Table::alloc(plan.stored, entry, seg_cap)?;
        let tu = if plan.stride > 1 { entry } else { 0 };
        Ok(Work {
            table,
            key: (plan.stored, entry),
            x: zeroed(entry)?,
            y: zeroed(entry)?,
            t: zeroed(tu)?,
            u: zeroed(tu)?,
        })
    }
}

/// Run ROMix on `lane` (128·r bytes, RFC layout) in place.
pub(super) fn romix(
    lane: &mut [u8],
    log_n: u8,
    r: u32,
    budget: u64,
    seg_cap: usize,
) -> Result<Plan, KdfError> {
    let plan = plan(log_n, r, budget)?;
    if u64::try_from(lane.len()) != Ok(128 * u64::from(r)) {
        return Err(KdfError::BadParams);
    }
    let mut work = Work::new(&plan, r, seg_cap)?;
    romix_in(lane, log_n, &plan, &mut work)?;
    Ok(plan)
}

/// ROMix with a given plan in a given workspace (allocated by `Work::new`
/// for the same plan and r).
pub(super) fn romix_in(
    lane: &mut [u8],
    log_n: u8,
    plan: &Plan,
    work: &mut Work,
) -> Result<(), KdfError> {
    let entry = lane.len();
    if work.key != (plan.stored, entry)
        || work.x.len() != entry
        || (plan.stride > 1 && work.t.len() != entry)
        || !(1..=63).contains(&log_n)
        || plan.stored << plan.stride.trailing_zeros() != 1 << log_n
    {
        return Err(KdfError::BadParams);
    }
    let Work {
        table,
        x: buf_x,
        y: buf_y,
        t: buf_t,
        u: buf_u,
        ..
    } = work;
    table.clear();
    let n: u64 = 1 << log_n;
    let mask = n - 1;
    let s = plan.stride.trailing_zeros();
    let kmask = plan.stride - 1;

    buf_x.copy_from_slice(lane);
    shuffle_in(buf_x);
    let mut x: &mut [u8] = buf_x;
    let mut y: &mut [u8] = buf_y;

    // Steps 1–2: V_i = X; X = BlockMix(X), storing every k-th V_i.
    if plan.stride == 1 {
        for i in 0..plan.stored as usize {
            table.push(i, x);
            block_mix(table.get(i), x);
        }
    } else {
        for i in 0..n {
            if i & kmask == 0 {
                let idx = (i >> s) as usize;
                table.push(idx, x);
                block_mix(table.get(idx), x);
            } else {
                block_mix(x, y);
                core::mem::swap(&mut x, &mut y);
            }
        }
    }

    // Steps 3–4: j = Integerify(X) mod N; X = BlockMix(X xor V_j).
    if plan.stride == 1 {
        for _ in 0..n {
            let j = (integerify(x) & mask) as usize;
            block_mix_xor(x, table.get(j), y);
            core::mem::swap(&mut x, &mut y);
        }
    } else {
        let mut t: &mut [u8] = buf_t;
        let mut u: &mut [u8] = buf_u;
        for _ in 0..n {
            let j = integerify(x) & mask;
            let base = table.get((j >> s) as usize);
            let m = j & kmask;
            if m == 0 {
                block_mix_xor(x, base, y);
            } else {
                // recompute V_j = BlockMix^m(V_{j - m})
                block_mix(base, t);
                for _ in 1..m {
                    block_mix(t, u);
                    core::mem::swap(&mut t, &mut u);
                }
                block_mix_xor(x, t, y);
            }
            core::mem::swap(&mut x, &mut y);
        }
    }

    shuffle_out(x);
    lane.copy_from_slice(x);
    Ok(())
}
