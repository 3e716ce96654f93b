// Chunk worker: one scrypt container at a time.
// read the member (File.slice) → KDF in wasm (+simd128) → header MAC (wasm) → file MAC (WebCrypto
// HMAC, wasm fallback) → AES-256-CTR (WebCrypto, wasm fallback) → transfer the plaintext to the
// coordinator. Plaintext exists only after the whole-file MAC matched.
'use strict';

let port = null;
let maxKdfMemory = 0;
let useWebCrypto = !!(self.crypto && self.crypto.subtle);
const ZERO_COUNTER = new Uint8Array(16);

self.onmessage = (ev) => {
  const m = ev.data;
  if (m.t === 'init') {
    try {
      initWasm(m.module);
      maxKdfMemory = m.maxKdfMemory;
      self.postMessage({ t: 'ready', webCrypto: useWebCrypto });
    } catch (e) {
      self.postMessage({ t: 'init-failed', err: toErr(e, 'starting a chunk worker') });
    }
  } else if (m.t === 'port') {
    port = m.port;
    port.onmessage = (e) => { if (e.data.t === 'job') runJob(e.data); };
  }
};

async function runJob(j) {
  const t0 = performance.now();
  try {
    const bytes = new Uint8Array(await j.blob.slice(j.offset, j.offset + j.size).arrayBuffer());
    if (bytes.length !== j.size) {
      throw { class: 'truncated', message: j.name + ' ends early (read ' + bytes.length + ' of ' + j.size +
        ' bytes); the backup file is incomplete, copy it again from its source' };
    }
    const t1 = performance.now();
    // Header::parse + parameter caps + KDF + header MAC (wrong passphrase / swapped chunk caught here).
    const keys = wasm_bindgen.derive_keys(j.name, j.pass, bytes.subarray(0, Math.min(bytes.length, 128)), maxKdfMemory);
    const t2 = performance.now();
    const plain = await openBody(j.name, keys, bytes);
    const t3 = performance.now();
    keys.fill(0);
    port.postMessage({ t: 'done', gen: j.gen, seq: j.seq, plain: plain,
      readMs: t1 - t0, kdfMs: t2 - t1, cryptoMs: t3 - t2, webCrypto: useWebCrypto }, [plain]);
  } catch (e) {
    const dead = typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError;
    port.postMessage({ t: 'fail', gen: j.gen, seq: j.seq, dead, err: toErr(e, 'opening ' + j.name) });
    if (dead) self.postMessage({ t: 'dead' }); // this wasm instance is unusable: ask for a new worker
  }
}

// Verifies the whole-file MAC, then decrypts; returns the plaintext ArrayBuffer.
async function openBody(name, keys, bytes) {
  if (useWebCrypto) {
    let verdict;
    try {
      verdict = await webCryptoOpen(keys, bytes);
    } catch (e) {
      useWebCrypto = false; // WebCrypto unusable here: the pure-Rust path from now on
    }
    if (verdict && verdict.ok) return verdict.plain;
    if (verdict && !verdict.ok) {
      wasm_bindgen.verify(name, keys, bytes); // throws the core's precise `tampered` error
      // WebCrypto and the core disagree: trust the core, and stop using WebCrypto.
      useWebCrypto = false;
    }
  }
  wasm_bindgen.verify(name, keys, bytes);
  const body = bytes.slice(96, bytes.length - 32);
  wasm_bindgen.apply_keystream(keys, body);
  return body.buffer;
}

async function webCryptoOpen(keys, bytes) {
  const subtle = self.crypto.subtle;
  const hk = await subtle.importKey('raw', keys.slice(32, 64), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  const ok = await subtle.verify('HMAC', hk, bytes.subarray(bytes.length - 32), bytes.subarray(0, bytes.length - 32));
  if (!ok) return { ok: false };
  const body = bytes.subarray(96, bytes.length - 32);
  if (body.length === 0) return { ok: true, plain: new ArrayBuffer(0) };
  const ak = await subtle.importKey('raw', keys.slice(0, 32), { name: 'AES-CTR' }, false, ['decrypt']);
  const plain = await subtle.decrypt({ name: 'AES-CTR', counter: ZERO_COUNTER, length: 128 }, ak, body);
  return { ok: true, plain: plain };
}
