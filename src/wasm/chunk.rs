//! The chunk workers' half of the core: a worker receives the passphrase once
//! ([`ChunkOpener::new`]) and every chunk's own passphrase is derived here from its name.
//! Opening a chunk is KDF → header MAC → whole-file MAC → decryption, and the core holds the
//! keys: the AES key leaves it only once the MAC is proven, so no plaintext can exist before.
//! The page may still let WebCrypto do the bulk work (HMAC-SHA256 and AES-CTR run natively
//! there), but the core says which bytes are covered, compares the MACs and maps every failure.

use super::{limits, to_js};
use crate::error::{Cut, Error};
use crate::format::chunks::{chunk_error, chunk_passphrase};
use crate::format::container::{self, Header, Keys, Limits, HEADER_LEN, MAC_LEN, OVERHEAD};
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct ChunkOpener {
    backup_id: String,
    passphrase: Vec<u8>,
    limits: Limits,
}

#[wasm_bindgen]
impl ChunkOpener {
    /// `backup_id` comes from the authenticated header; `passphrase` is the one the user typed.
    #[wasm_bindgen(constructor)]
    pub fn new(backup_id: &str, passphrase: &[u8], max_kdf_memory: f64) -> ChunkOpener {
        ChunkOpener { backup_id: backup_id.to_string(), passphrase: passphrase.to_vec(), limits: limits(max_kdf_memory) }
    }

    /// Checks the parameters of the chunk `name` (a member of `size` bytes, of which `read`
    /// could be read, whose first bytes are `head`), runs the KDF and checks the header MAC. The
    /// passphrase was proven by `backup-header`, so a header MAC that fails means the chunk was
    /// altered, renamed or comes from another file or backup: `tampered`, never `wrong-passphrase`.
    pub fn unlock(&self, name: &str, head: &[u8], read: f64, size: f64) -> Result<ChunkKeys, JsValue> {
        let mut kdf = self.begin(name, head, read, size)?;
        let p = kdf.work.params;
        for i in 0..p.p() {
            let lane = crate::kdf::lane_mut(&mut kdf.work.lanes, &p, i).expect("p lanes of 128·r bytes");
            container::run_lane(name, lane, p.log_n(), p.r(), &self.limits).map_err(to_js)?;
        }
        kdf.keys()
    }

    /// [`ChunkOpener::unlock`] in halves, so that the KDF's lanes can run on other workers:
    /// the same checks, then the lanes ([`ChunkKdf::lanes`]) to hand back to [`ChunkKdf::unlock`].
    pub fn begin(&self, name: &str, head: &[u8], read: f64, size: f64) -> Result<ChunkKdf, JsValue> {
        let (read, size) = (read as u64, size as u64);
        if read != size {
            return Err(to_js(Error::truncated(name, Cut::ShortRead { read, size })));
        }
        if (size as usize) < OVERHEAD {
            return Err(to_js(Error::truncated(name, Cut::Container { len: size, min: OVERHEAD as u64 })));
        }
        let header = Header::parse(name, head).map_err(to_js)?;
        let passphrase = chunk_passphrase(&self.backup_id, name, &self.passphrase);
        let work = container::begin_kdf(name, &passphrase, &header, &self.limits).map_err(to_js)?;
        Ok(ChunkKdf { name: name.to_string(), header, passphrase, work, size })
    }
}

/// A chunk's KDF under way: its lanes are out on the page's workers.
#[wasm_bindgen]
pub struct ChunkKdf {
    name: String,
    header: Header,
    passphrase: Vec<u8>,
    work: container::LaneWork,
    size: u64,
}

#[wasm_bindgen]
impl ChunkKdf {
    /// `{logN, r, lanes: [Uint8Array…]}` (see `wasm::lanes`).
    pub fn lanes(&self) -> JsValue {
        super::lanes::lanes_js(&self.work)
    }

    /// Joins the lanes the workers ran (in lane order) and checks the header MAC, with the
    /// verdicts of [`ChunkOpener::unlock`].
    pub fn unlock(&mut self, outs: js_sys::Array) -> Result<ChunkKeys, JsValue> {
        super::lanes::join(&mut self.work, &outs).map_err(to_js)?;
        self.keys()
    }

    fn keys(&mut self) -> Result<ChunkKeys, JsValue> {
        let keys = container::keys_from_lanes(&self.name, &self.passphrase, &self.header, &self.work)
            .map_err(|e| to_js(chunk_error(e)))?;
        Ok(ChunkKeys { name: self.name.clone(), keys, size: self.size })
    }
}

impl Drop for ChunkKdf {
    fn drop(&mut self) {
        self.passphrase.fill(0);
        self.work.lanes.fill(0);
    }
}

impl Drop for ChunkOpener {
    fn drop(&mut self) {
        self.passphrase.fill(0);
    }
}

/// The keys of one chunk, held by the core.
#[wasm_bindgen]
pub struct ChunkKeys {
    name: String,
    keys: Keys,
    size: u64,
}

#[wasm_bindgen]
impl ChunkKeys {
    /// The HMAC-SHA256 key of the whole-file MAC.
    pub fn mac_key(&self) -> Vec<u8> {
        self.keys.hmac.to_vec()
    }

    /// The MAC covers bytes `[0, mac_end)`; the stored MAC is `[mac_end, size)`.
    pub fn mac_end(&self) -> f64 {
        (self.size - MAC_LEN as u64) as f64
    }

    /// The ciphertext is `[96, mac_end)`, AES-256-CTR from counter 0.
    pub fn body_start(&self) -> f64 {
        HEADER_LEN as f64
    }

    /// Compares the MAC the page computed over `[0, mac_end)` with the one stored, and only
    /// when they match hands out the AES-256 key.
    pub fn release_key(&self, computed: &[u8], stored: &[u8]) -> Result<Vec<u8>, JsValue> {
        container::check_mac(&self.name, computed, stored).map_err(to_js)?;
        Ok(self.keys.enc.to_vec())
    }

    /// Everything here, without WebCrypto: verifies the whole-file MAC of `bytes` (the complete
    /// member), then decrypts; returns the plaintext.
    pub fn open(&self, bytes: &[u8]) -> Result<Vec<u8>, JsValue> {
        if bytes.len() as u64 != self.size {
            return Err(to_js(Error::truncated(&self.name, Cut::ShortRead { read: bytes.len() as u64, size: self.size as u64 })));
        }
        container::verify(&self.name, &self.keys, bytes).map_err(to_js)?;
        let mut body = bytes[HEADER_LEN..bytes.len() - MAC_LEN].to_vec();
        container::apply_keystream(&self.keys, &mut body);
        Ok(body)
    }
}

impl Drop for ChunkKeys {
    fn drop(&mut self) {
        self.keys.enc.fill(0);
        self.keys.hmac.fill(0);
    }
}
