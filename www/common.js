// Shared by the coordinator and chunk workers (prepended to each worker's source,
// after the wasm-bindgen `--target no-modules` glue that defines `wasm_bindgen`).
'use strict';

// Turns anything thrown (a core error object {class, message}, a JS Error, a wasm trap)
// into the {class, message} shape the page shows.
function toErr(e, context) {
  if (e && typeof e === 'object' && typeof e.class === 'string' && typeof e.message === 'string') {
    return { class: e.class, message: e.message };
  }
  if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
    return {
      class: 'io',
      message: 'the restorer stopped on an internal error (' + e.message + ')' + (context ? ' while ' + context : '') +
        '; the browser may have run out of memory: close other tabs and try again, or restore fewer qubes at once',
    };
  }
  if (e && e.name === 'QuotaExceededError') {
    return { class: 'io', message: 'the browser ran out of storage space' + (context ? ' while ' + context : '') +
      '; free disk space, or restore fewer qubes at once' };
  }
  if (e && e.name === 'NotReadableError') {
    return { class: 'io', message: 'the backup file could not be read (' + e.message + '); it may have been moved, ' +
      'changed or unplugged: pick it again' };
  }
  const msg = e && e.message ? e.message : String(e);
  return { class: 'io', message: (context ? context + ': ' : '') + msg };
}

let wasmReady = false;
function initWasm(module) {
  if (!wasmReady) {
    wasm_bindgen.initSync({ module: module });
    wasmReady = true;
  }
}
