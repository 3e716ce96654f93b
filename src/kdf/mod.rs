//! scrypt (RFC 7914), split so that its `p` lanes can run apart.
//!
//! ```text
//! B  = PBKDF2-HMAC-SHA256(P, S, 1, p·128·r)   expand()
//! B_i = ROMix(B_i, N)  for each lane i         romix()  (any thread / worker)
//! DK = PBKDF2-HMAC-SHA256(P, B, 1, dkLen)      finish()
//! ```
//!
//! Why this module exists instead of calling the `scrypt` crate (which is
//! kept as the reference in the tests):
//! - the page runs lanes in separate web workers and joins them; the crate
//!   only offers one call that runs the lanes itself (serially, or on rayon,
//!   which wasm32 workers cannot use);
//! - the crate allocates V = 128·r·N bytes in one piece: N = 2^21, r = 8 is
//!   2 GiB, which a wasm32 instance can never allocate at once (nor a 32-bit
//!   `usize` express); here V is a list of segments of at most 1 GiB;
//! - the crate aborts the process when that allocation fails; here every
//!   allocation is fallible and failure is an error;
//! - when 128·r·N exceeds the memory the caller grants, ROMix here stores
//!   only every k-th V entry and recomputes the rest (time–memory trade-off),
//!   exact to the byte, so a backup made with parameters beyond the page's
//!   memory can still be opened, slower ([`plan`] tells how much slower).
//!
//! BlockMix is our own Salsa20/8 core in the SIMD-friendly diagonal layout
//! (SSE2 or AVX-512VL on x86_64, simd128 on wasm32, scalar elsewhere): see `salsa.rs`.
//!
//! The functions never panic on any parameters; they return [`KdfError`].
//! Choosing caps (largest N, budget) is the caller's job.

mod romix;
mod salsa;

#[cfg(test)]
mod tests;

use sha2::Sha256;

/// Errors of this module (the crate maps them onto its own error type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KdfError {
    /// Parameters outside RFC 7914 / Tarsnap's limits, or buffers of the
    /// wrong length.
    BadParams,
    /// Even one V entry (128·r bytes) does not fit in the budget.
    OverBudget { need: u64, budget: u64 },
    /// An allocation of `bytes` failed (or cannot exist on this target).
    OutOfMemory { bytes: u64 },
}

impl core::fmt::Display for KdfError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KdfError::BadParams => f.write_str("invalid scrypt parameters"),
            KdfError::OverBudget { need, budget } => write!(
                f,
                "scrypt needs at least {need} bytes per lane, the budget is {budget}"
            ),
            KdfError::OutOfMemory { bytes } => {
                write!(f, "could not allocate {bytes} bytes for scrypt")
            }
        }
    }
}

impl std::error::Error for KdfError {}

/// scrypt cost parameters, validated like Tarsnap's `checkparams`:
/// 1 ≤ logN ≤ 63, r ≥ 1, p ≥ 1, r·p < 2^30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    log_n: u8,
    r: u32,
    p: u32,
}

impl Params {
    pub fn new(log_n: u8, r: u32, p: u32) -> Result<Params, KdfError> {
        if !(1..=63).contains(&log_n) || r == 0 || p == 0 || u64::from(r) * u64::from(p) >= 1 << 30
        {
            return Err(KdfError::BadParams);
        }
        Ok(Params { log_n, r, p })
    }
    pub fn log_n(&self) -> u8 {
        self.log_n
    }
    pub fn r(&self) -> u32 {
        self.r
    }
    pub fn p(&self) -> u32 {
        self.p
    }
    /// N = 2^logN.
    pub fn n(&self) -> u64 {
        1 << self.log_n
    }
    /// Bytes of one lane's block B_i: 128·r.
    pub fn lane_len(&self) -> u64 {
        128 * u64::from(self.r)
    }
    /// Bytes of one lane's full V table: 128·r·N (saturating; up to 2^100 in theory).
    pub fn lane_memory(&self) -> u64 {
        self.lane_len().saturating_mul(self.n())
    }
    /// Work N·r·p (saturating), proportional to the plain running time.
    pub fn work(&self) -> u64 {
        self.n()
            .saturating_mul(u64::from(self.r))
            .saturating_mul(u64::from(self.p))
    }
}

/// How one lane's ROMix will run within a memory budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// k: every k-th V entry is stored (1 = plain scrypt).
    pub stride: u64,
    /// N / k entries stored.
    pub stored: u64,
    /// Bytes of V actually allocated (stored · 128·r).  ROMix also uses two
    /// (plain) or four (stride > 1) working blocks of 128·r bytes.
    pub memory: u64,
    /// Expected running time relative to plain scrypt: 1 + (k − 1)/4.
    pub relative_cost: f64,
}

/// Plan for one lane with `budget` bytes for V: the smallest power-of-two
/// stride k with 128·r·N/k ≤ budget.
pub fn plan(log_n: u8, r: u32, budget: u64) -> Result<Plan, KdfError> {
    romix::plan(log_n, r, budget)
}

/// Name of the BlockMix backend in use ("avx512vl", "sse2", "simd128" or "scalar").
pub fn backend() -> &'static str {
    salsa::backend()
}

/// Step 1: B = PBKDF2-HMAC-SHA256(P, S, 1, p·128·r), all lanes' initial
/// blocks, lane i at bytes `i·128·r ..`.
pub fn expand(passphrase: &[u8], salt: &[u8], params: &Params) -> Result<Vec<u8>, KdfError> {
    let len = params.lane_len() * u64::from(params.p);
    let ulen = usize::try_from(len).map_err(|_| KdfError::OutOfMemory { bytes: len })?;
    let mut b = Vec::new();
    b.try_reserve_exact(ulen)
        .map_err(|_| KdfError::OutOfMemory { bytes: len })?;
    b.resize(ulen, 0);
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase, salt, 1, &mut b);
    Ok(b)
}

fn lane_range(len: usize, params: &Params, i: u32) -> Option<core::ops::Range<usize>> {
    let l = usize::try_from(params.lane_len()).ok()?;
    if i >= params.p || len != l.checked_mul(params.p as usize)? {
        return None;
    }
    let start = l * i as usize;
    Some(start..start + l)
}

/// Lane `i` of an expanded (or joined) buffer; `None` if `i ≥ p` or the
/// buffer is not p·128·r bytes.
pub fn lane<'a>(expanded: &'a [u8], params: &Params, i: u32) -> Option<&'a [u8]> {
    lane_range(expanded.len(), params, i).map(|r| &expanded[r])
}

/// Mutable lane `i` (to run [`romix`] on it in place).
pub fn lane_mut<'a>(expanded: &'a mut [u8], params: &Params, i: u32) -> Option<&'a mut [u8]> {
    lane_range(expanded.len(), params, i).map(move |r| &mut expanded[r])
}

/// Step 2 for one lane: B_i = ROMix_r(B_i, 2^log_n), in place.  `lane` must
/// be 128·r bytes.  V takes at most `budget` bytes (see [`plan`]); when the
/// full table does not fit, the time–memory trade-off is used.  Returns the
/// plan it ran with.  Besides V it allocates two (four with the trade-off)
/// working blocks of 128·r bytes; all allocations are fallible.
pub fn romix(lane: &mut [u8], log_n: u8, r: u32, budget: u64) -> Result<Plan, KdfError> {
    romix::romix(lane, log_n, r, budget, romix::SEGMENT_CAP)
}

/// Step 3: DK = PBKDF2-HMAC-SHA256(P, B, 1, out.len()) over the joined lanes.
/// `out.len()` must be 1 ..= (2^32 − 1)·32.
pub fn finish(passphrase: &[u8], lanes_joined: &[u8], out: &mut [u8]) -> Result<(), KdfError> {
    if out.is_empty() || (out.len() as u64 - 1) / 32 >= 0xffff_ffff {
        return Err(KdfError::BadParams);
    }
    pbkdf2::pbkdf2_hmac::<Sha256>(passphrase, lanes_joined, 1, out);
    Ok(())
}

/// The whole KDF.  Each lane gets `budget_per_lane` bytes for V; natively
/// the lanes run on up to `threads` threads (so up to `threads` V tables at
/// once, each allocated once and reused for that thread's lanes), on wasm32
/// one after the other.
pub fn scrypt(
    passphrase: &[u8],
    salt: &[u8],
    params: &Params,
    budget_per_lane: u64,
    threads: usize,
    out: &mut [u8],
) -> Result<(), KdfError> {
    if out.is_empty() || (out.len() as u64 - 1) / 32 >= 0xffff_ffff {
        return Err(KdfError::BadParams);
    }
    let plan = plan(params.log_n, params.r, budget_per_lane)?; // fail before any work
    let mut b = expand(passphrase, salt, params)?;
    run_lanes(&mut b, params, &plan, threads)?;
    finish(passphrase, &b, out)
}

/// Run `lanes` one after the other in one workspace (V allocated once).
fn run_group<'a>(
    lanes: impl Iterator<Item = &'a mut [u8]>,
    log_n: u8,
    r: u32,
    plan: &Plan,
) -> Result<(), KdfError> {
    let mut work = romix::Work::new(plan, r, romix::SEGMENT_CAP)?;
    for lane in lanes {
        romix::romix_in(lane, log_n, plan, &mut work)?;
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
fn run_lanes(b: &mut [u8], params: &Params, plan: &Plan, threads: usize) -> Result<(), KdfError> {
    let l = usize::try_from(params.lane_len()).map_err(|_| KdfError::BadParams)?;
    let threads = threads.clamp(1, params.p as usize);
    let (log_n, r) = (params.log_n, params.r);
    if threads == 1 {
        return run_group(b.chunks_exact_mut(l), log_n, r, plan);
    }
    // lane i goes to thread i mod threads
    let mut groups: Vec<Vec<&mut [u8]>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, lane) in b.chunks_exact_mut(l).enumerate() {
        groups[i % threads].push(lane);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .into_iter()
            .map(|group| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || run_group(group.into_iter(), log_n, r, plan))
            })
            .collect();
        // a thread that cannot be created (or died) reports as out of memory
        let mut res = Ok(());
        for h in handles {
            let r = match h {
                Ok(h) => h.join().unwrap_or(Err(KdfError::OutOfMemory { bytes: 0 })),
                Err(_) => Err(KdfError::OutOfMemory { bytes: 0 }),
            };
            if res.is_ok() {
                res = r;
            }
        }
        res
    })
}

#[cfg(target_arch = "wasm32")]
fn run_lanes(b: &mut [u8], params: &Params, plan: &Plan, _threads: usize) -> Result<(), KdfError> {
    let l = usize::try_from(params.lane_len()).map_err(|_| KdfError::BadParams)?;
    run_group(b.chunks_exact_mut(l), params.log_n, params.r, plan)
}
