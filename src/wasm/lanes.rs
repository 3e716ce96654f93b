//! A KDF's lanes for the page's workers (issue: a p=4 KDF uses 4 workers when it can).
//!
//! Whoever holds a KDF (the coordinator for `backup-header`, a chunk worker for its chunk) asks
//! the core for its lanes ([`LaneWork`]: the parameters are checked first, then B is expanded);
//! the page hands each lane to an idle worker, which runs [`kdf_lane`]; the holder gives the
//! results back to the core, which joins them and checks the header MAC. Only the lanes move
//! between workers: the passphrase never does (beyond the one hand-over per worker), and the
//! derived keys never leave the core that uses them. A lane is 128·r bytes (1 KiB at r=8).

use super::{limits, to_js};
use crate::error::Error;
use crate::format::container::{self, LaneWork, Limits};
use crate::restore::WorkerPlan;
use js_sys::{Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

/// `{logN, r, lanes: [Uint8Array…]}` for JS.
pub(crate) fn lanes_js(work: &LaneWork) -> JsValue {
    let p = work.params;
    let lanes = Array::new();
    for i in 0..p.p() {
        let lane = crate::kdf::lane(&work.lanes, &p, i).expect("p lanes of 128·r bytes");
        lanes.push(&Uint8Array::from(lane));
    }
    let o = Object::new();
    let _ = Reflect::set(&o, &"logN".into(), &JsValue::from(p.log_n()));
    let _ = Reflect::set(&o, &"r".into(), &JsValue::from(p.r()));
    let _ = Reflect::set(&o, &"lanes".into(), &lanes);
    o.into()
}

/// How many of `work`'s lanes may run at once within `memory_budget` on `pool` workers (the
/// same rule as a restore's worker plan), each lane's V within `limits`.
pub(crate) fn lane_workers(work: &LaneWork, pool: usize, memory_budget: f64, limits: &Limits) -> usize {
    let p = work.params;
    let lane_memory = crate::kdf::plan(p.log_n(), p.r(), limits.max_kdf_memory).map_or(p.lane_memory(), |pl| pl.memory);
    WorkerPlan::new(lane_memory, 0, pool, memory_budget as u64).workers
}

/// Puts the lanes the workers ran (in lane order) back into `work`.
pub(crate) fn join(work: &mut LaneWork, outs: &Array) -> Result<(), Error> {
    let p = work.params;
    if outs.length() != p.p() {
        return Err(Error::internal(format!("{} KDF lanes back for p={}", outs.length(), p.p())));
    }
    for i in 0..p.p() {
        let out = outs.get(i).dyn_into::<Uint8Array>().map_err(|_| Error::internal("a KDF lane that is not bytes"))?;
        let lane = crate::kdf::lane_mut(&mut work.lanes, &p, i).expect("p lanes of 128·r bytes");
        if out.length() as usize != lane.len() {
            return Err(Error::internal(format!("a KDF lane of {} bytes back, {} expected", out.length(), lane.len())));
        }
        out.copy_to(lane);
    }
    Ok(())
}

/// Runs one lane (ROMix) of the KDF of `member` within this worker's KDF memory.
#[wasm_bindgen]
pub fn kdf_lane(member: &str, mut lane: Vec<u8>, log_n: u8, r: u32, max_kdf_memory: f64) -> Result<Vec<u8>, JsValue> {
    container::run_lane(member, &mut lane, log_n, r, &limits(max_kdf_memory)).map_err(to_js)?;
    Ok(lane)
}

/// Runs a small ROMix a few times (~0.1 s), when a worker starts. Engines compile wasm in tiers
/// (V8: Liftoff first, TurboFan for the functions found hot; SpiderMonkey: baseline, then Ion),
/// and a call that is already running never changes tier: a worker's first real KDF lane, one
/// call of seconds, ran all the way in the baseline code (measured in Chromium: Open's two KDFs
/// side by side took 7.8 s each, not 3.7 s). Warmed up, the first real lane finds the optimized
/// ROMix ready.
#[wasm_bindgen]
pub fn kdf_warm_up() {
    let mut lane = vec![0u8; 128 * 8];
    for _ in 0..20 {
        let _ = container::run_lane("warm-up", &mut lane, 10, 8, &limits((1u64 << 26) as f64));
    }
}
