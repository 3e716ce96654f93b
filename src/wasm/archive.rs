//! The page's "One archive": the core makes every byte of the tar around the restored files'
//! data (`output::archive`); the page only puts the parts in order.

use super::to_js;
use crate::error::Error;
use crate::output::archive;
use js_sys::{Float64Array, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;

/// The archive's folder, and its file name without `.tar`, for `qubes` (a JSON array of names).
#[wasm_bindgen]
pub fn archive_folder(qubes: &str) -> String {
    let names: Vec<String> = serde_json::from_str(qubes).unwrap_or_default();
    archive::folder(&names)
}

/// The member `<folder>/<download>`: `size` bytes whose data lies in `runs` (flat: offset, length,
/// offset, length, … in order; the file's data is their bytes one after another). Returns
/// `{header: Uint8Array, pieces: Float64Array, padding}`: the archive gets the header, then each
/// piece (flat triples: `0, n, 0` is n zeros, `1, from, to` bytes from..to of the data), then
/// `padding` zeros.
#[wasm_bindgen]
pub fn archive_member(folder: &str, download: &str, size: f64, runs: &[f64]) -> Result<JsValue, JsValue> {
    let size = whole(size)?;
    let runs = runs.chunks_exact(2).map(|r| Ok((whole(r[0])?, whole(r[1])?))).collect::<Result<Vec<_>, JsValue>>()?;
    let mtime = (js_sys::Date::now() / 1000.0) as u64;
    let m = archive::member(&format!("{folder}/{download}"), size, &runs, mtime).map_err(to_js)?;
    let pieces: Vec<f64> = m
        .pieces
        .iter()
        .flat_map(|p| match *p {
            archive::Piece::Zeros(n) => [0.0, n as f64, 0.0],
            archive::Piece::Data { from, to } => [1.0, from as f64, to as f64],
        })
        .collect();
    let o = Object::new();
    let _ = Reflect::set(&o, &"header".into(), &Uint8Array::from(&m.header[..]).into());
    let _ = Reflect::set(&o, &"pieces".into(), &Float64Array::from(&pieces[..]).into());
    let _ = Reflect::set(&o, &"padding".into(), &JsValue::from_f64(m.padding as f64));
    Ok(o.into())
}

/// The archive's end.
#[wasm_bindgen]
pub fn archive_end() -> Vec<u8> {
    archive::end()
}

/// Whether the page offers one archive rather than a download per file by default: more than a
/// few files are easy to lose among downloads, and a big volume is mostly holes, which only the
/// archive keeps out of the download.
#[wasm_bindgen]
pub fn archive_by_default(files: u32, data_bytes: f64, volume_bytes: f64) -> bool {
    crate::restore::plan::archive_by_default(files as usize, data_bytes.max(0.0) as u64, volume_bytes.max(0.0) as u64)
}

/// Whether the page warns before a restore of `data_bytes` that a private window may lose its
/// downloads (`restore::plan::private_window_risk`).
#[wasm_bindgen]
pub fn private_window_risk(data_bytes: f64) -> bool {
    crate::restore::plan::private_window_risk(data_bytes.max(0.0) as u64)
}

/// A byte count from JS: a whole number below 2^53.
fn whole(v: f64) -> Result<u64, JsValue> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < 9_007_199_254_740_992.0 {
        Ok(v as u64)
    } else {
        Err(to_js(Error::Internal(format!("archive: {v} is not a byte count"))))
    }
}
