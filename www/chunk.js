// Uses: wasm_bindgen (glue), toErr, initWasm (common.js), Bridge (bridge.js), Reads (reads.js).
// Chunk worker: opens one scrypt container at a time, through the core's ChunkOpener.
// The coordinator hands over the passphrase once per opened backup ('key'); each chunk's own
// passphrase, the KDF, the header MAC and the meaning of every failure are the core's. The
// core holds the keys and gives out the AES key only once the whole-file MAC is proven, so
// no plaintext exists before; WebCrypto only does the bulk HMAC and AES-CTR work, fast.
//
// Page → chunk worker (a Bridge over the worker): init {module, maxKdfMemory, port, workerReads} → {webCrypto};
//   chunk worker → page: read (see reads.js), when this browser cannot read Blobs in workers;
//   event dead (chunk worker → page) when its wasm instance trapped: the page replaces it.
// Coordinator → chunk worker (a Bridge over `port`): event key {backupId, pass} ·
//   job {blob, offset, size, name} → {plain (transferred), readMs, kdfMs, cryptoMs, webCrypto};
//   early {backupId, pass, blob, offset, size, name} → the same, for Open's qubes.xml chunk;
//   a failed job's error {class, message} carries dead: true when the wasm instance trapped.
'use strict';

let maxKdfMemory = 0;
let opener = null;             // wasm_bindgen.ChunkOpener of the backup being restored
let useWebCrypto = !!(self.crypto && self.crypto.subtle);
const ZERO_COUNTER = new Uint8Array(16);
const page = new Bridge(self);

page.serve({
  init(m) {
    Reads.setup(page, m.workerReads);
    const coordinator = new Bridge(m.port);
    coordinator.on('key', setKey);
    coordinator.serve({ job: (j) => runJob(j, opener), early: openEarly });
    try {
      initWasm(m.module);
    } catch (e) {
      throw toErr(e, 'starting a chunk worker');
    }
    maxKdfMemory = m.maxKdfMemory;
    return { webCrypto: useWebCrypto };
  },
});

function setKey(m) {
  if (opener) opener.free();
  opener = new wasm_bindgen.ChunkOpener(m.backupId, m.pass, maxKdfMemory);
  m.pass.fill(0);
}

// Open's head start: qubes.xml's first chunk, under the backup id the coordinator read from
// the not yet authenticated header, with an opener of its own (the core decides what the
// plaintext may be used for).
async function openEarly(m) {
  const early = new wasm_bindgen.ChunkOpener(m.backupId, m.pass, maxKdfMemory);
  m.pass.fill(0);
  try {
    return await runJob(m, early);
  } finally {
    early.free();
  }
}

async function runJob(j, opener) {
  const t0 = performance.now();
  let keys = null;
  try {
    const bytes = new Uint8Array(await Reads.readSlice(j.blob, j.offset, j.offset + j.size));
    const t1 = performance.now();
    keys = opener.unlock(j.name, bytes.subarray(0, Math.min(bytes.length, 128)), bytes.length, j.size);
    const t2 = performance.now();
    const plain = await openBody(keys, bytes);
    const t3 = performance.now();
    return Bridge.transfer({ plain, readMs: t1 - t0, kdfMs: t2 - t1, cryptoMs: t3 - t2, webCrypto: useWebCrypto }, [plain]);
  } catch (e) {
    const dead = typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError;
    if (dead) setTimeout(() => page.emit('dead')); // after the failure: this instance is unusable, ask for a new worker
    throw Object.assign(toErr(e, 'opening ' + j.name), { dead });
  } finally {
    if (keys) { try { keys.free(); } catch (e) { /* instance gone */ } }
  }
}

// The whole-file MAC, then decryption; returns the plaintext ArrayBuffer.
async function openBody(keys, bytes) {
  if (useWebCrypto) {
    let mac = null;
    try {
      const subtle = self.crypto.subtle;
      const hk = await subtle.importKey('raw', keys.mac_key(), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      mac = new Uint8Array(await subtle.sign('HMAC', hk, bytes.subarray(0, keys.mac_end())));
    } catch (e) {
      useWebCrypto = false; // WebCrypto unusable here: the core does it all from now on
    }
    if (mac) {
      const end = keys.mac_end();
      const aesKey = keys.release_key(mac, bytes.subarray(end)); // throws the core's `tampered`
      const body = bytes.subarray(keys.body_start(), end);
      try {
        if (body.length === 0) return new ArrayBuffer(0);
        const ak = await self.crypto.subtle.importKey('raw', aesKey, { name: 'AES-CTR' }, false, ['decrypt']);
        return await self.crypto.subtle.decrypt({ name: 'AES-CTR', counter: ZERO_COUNTER, length: 128 }, ak, body);
      } catch (e) {
        useWebCrypto = false;
      } finally {
        aesKey.fill(0);
      }
    }
  }
  return keys.open(bytes).buffer;
}
