// Uses: wasm_bindgen (glue).
// Shared by the coordinator, chunk and browse workers (prepended to each worker's source,
// after the wasm-bindgen `--target no-modules` glue that defines `wasm_bindgen`).
// Defines: toErr, initWasm. Every sentence comes from the core.
'use strict';

const { toErr, initWasm } = (() => {
  let trapSentence = null;       // the core's sentence for a wasm trap, taken while the core is well

  // Turns anything thrown (a core error object {class, message}, a JS exception, a wasm trap)
  // into the {class, message} shape the page shows.
  function toErr(e, context) {
    if (e && typeof e === 'object' && typeof e.class === 'string' && typeof e.message === 'string') {
      return { class: e.class, message: e.message };
    }
    if (typeof WebAssembly !== 'undefined' && e instanceof WebAssembly.RuntimeError) {
      // After a trap this instance may be unusable: no call into it, the sentence was taken at start.
      return { class: 'io', message: (trapSentence || '{context}: {detail}').replace('{detail}', e.message).replace('{context}', context || 'working') };
    }
    try {
      return wasm_bindgen.page_error(e && e.name || '', e && e.message ? e.message : String(e), context || '');
    } catch (inner) {
      return { class: 'io', message: (context ? context + ': ' : '') + (e && e.message ? e.message : String(e)) };
    }
  }

  let wasmReady = false;
  function initWasm(module) {
    if (!wasmReady) {
      wasm_bindgen.initSync({ module: module });
      trapSentence = wasm_bindgen.trap_sentence();
      wasmReady = true;
    }
  }

  return { toErr, initWasm };
})();
