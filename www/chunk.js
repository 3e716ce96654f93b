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
//   lane {name, logN, r, lane} → the lane run (ROMix), for any worker's KDF or the header's;
//   a failed job's or lane's error {class, message} carries dead: true when the wasm instance trapped.
// Chunk worker → coordinator: lanes {name, logN, r, lanes, early} → [lane run…]: a job's KDF is
//   split into its lanes (src/wasm/lanes.rs), which the coordinator spreads over idle workers
//   (this one included), so a p=4 chunk uses 4 workers when they are free.
'use strict';

let maxKdfMemory = 0;
let opener = null;             // wasm_bindgen.ChunkOpener of the backup being restored
let coordinator = null;        // Bridge to the coordinator
let useWebCrypto = !!(self.crypto && self.crypto.subtle);
const ZERO_COUNTER = new Uint8Array(16);
const page = new Bridge(self);

page.serve({
  init(m) {
    Reads.setup(page, m.workerReads);
    coordinator = new Bridge(m.port);
    coordinator.on('key', setKey);
    coordinator.serve({ job: (j) => runJob(j, opener, false), early: openEarly, lane: runLane });
    try {
      initWasm(m.module);
    } catch (e) {
      throw toErr(e, 'starting a chunk worker');
    }
    maxKdfMemory = m.maxKdfMemory;
    wasm_bindgen.kdf_warm_up(); // the optimized ROMix ready before the first real KDF (see lanes.rs)
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
    return await runJob(m, early, true);
  } finally {
    early.free();
  }
}

async function runJob(j, opener, early) {
  const t0 = performance.now();
  let keys = null;
  try {
    const bytes = new Uint8Array(await Reads.readSlice(j.blob, j.offset, j.offset + j.size));
    const t1 = performance.now();
    keys = await unlock(opener, j.name, bytes, j.size, early);
    const t2 = performance.now();
    const plain = await openBody(keys, bytes);
    const t3 = performance.now();
    return Bridge.transfer({ plain, readMs: t1 - t0, kdfMs: t2 - t1, cryptoMs: t3 - t2, webCrypto: useWebCrypto }, [plain]);
  } catch (e) {
    throw failure(e, 'opening ' + j.name);
  } finally {
    if (keys) { try { keys.free(); } catch (e) { /* instance gone */ } }
  }
}

// The core checks the chunk and gives out its KDF's lanes; the coordinator has them run by
// idle workers; the core joins them and checks the header MAC (`tampered` if it fails).
async function unlock(opener, name, bytes, size, early) {
  const kdf = opener.begin(name, bytes.subarray(0, Math.min(bytes.length, 128)), bytes.length, size);
  try {
    const work = kdf.lanes();
    const outs = await coordinator.call('lanes', { name, logN: work.logN, r: work.r, lanes: work.lanes, early });
    return kdf.unlock(outs);
  } finally {
    kdf.free();
  }
}

function runLane(m) {
  try {
    const out = wasm_bindgen.kdf_lane(m.name, m.lane, m.logN, m.r, maxKdfMemory);
    return Bridge.transfer(out, [out.buffer]);
  } catch (e) {
    throw failure(e, 'deriving the key of ' + m.name);
  }
}

// An error for the coordinator; dead: true when this wasm instance trapped (out of memory).
function failure(e, context) {
  const dead = typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError;
  if (dead) setTimeout(() => page.emit('dead')); // after the failure: this instance is unusable, ask for a new worker
  return Object.assign(toErr(e, context), { dead });
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
