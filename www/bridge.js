// Bridge: requests, replies and events between two threads over one Worker, MessagePort or a
// worker's own global scope. Used by the page and by every worker (inlined in the page, and
// prepended to each worker's source). Defines: Bridge.
//
//   const b = new Bridge(target)          // target: a Worker, a MessagePort, or `self` in a worker
//   const c = b.call(method, args, transfer, events)
//       → a Promise of the handler's result; it rejects with the handler's error {class, message}.
//         c.cancel() asks the handler to stop; a handler that stops returns Bridge.CANCELLED and
//         the promise then resolves to Bridge.CANCELLED. `events` ({name: fn(data)}) receive the
//         events the handler sends while it runs, in order, before the reply.
//   b.serve({method(args, call) {…}})      // call: {cancelled, onCancel(fn), emit(name, data, transfer)}
//       A handler returns its result (or a promise), Bridge.transfer(result, list) to transfer
//       buffers, or Bridge.CANCELLED; it throws {class, message}.
//   b.emit(name, data, transfer) / b.on(name, fn)   one-way events, either way
//
// On the wire: {t: 'call', id, method, args} · {t: 'cancel', id} · {t: 'reply', id, result | err |
// cancelled} · {t: 'event', id?, name, data}.
'use strict';

const Bridge = (() => {
  const CANCELLED = Object.freeze({ cancelled: true });
  class Transfer { constructor(value, list) { this.value = value; this.list = list; } }

  // Anything thrown, as {class, message}: handlers throw the core's errors, already in that shape.
  function errorOf(e) {
    if (e && typeof e === 'object' && typeof e.class === 'string' && typeof e.message === 'string') return e;
    return { class: 'io', message: String(e && e.message || e) };
  }

  class Bridge {
    constructor(target) {
      this.target = target;
      this.nextId = 0;
      this.pending = new Map();  // id → {resolve, reject, events}: my calls awaiting a reply
      this.running = new Map();  // id → stop(): the other side's calls my handlers are running
      this.handlers = {};
      this.listeners = {};
      target.onmessage = (ev) => this.receive(ev.data);
    }

    call(method, args, transfer, events) {
      const id = ++this.nextId;
      const p = new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject, events: events || {} });
      });
      this.target.postMessage({ t: 'call', id, method, args }, transfer || []);
      p.cancel = () => { if (this.pending.has(id)) this.target.postMessage({ t: 'cancel', id }); };
      return p;
    }

    serve(handlers) { Object.assign(this.handlers, handlers); }
    on(name, fn) { this.listeners[name] = fn; }
    emit(name, data, transfer) { this.target.postMessage({ t: 'event', name, data }, transfer || []); }

    receive(m) {
      if (m.t === 'event') {
        const to = m.id ? this.pending.get(m.id) : null;
        const fn = m.id ? to && to.events[m.name] : this.listeners[m.name];
        if (fn) fn(m.data);
      } else if (m.t === 'reply') {
        const to = this.pending.get(m.id);
        if (!to) return;
        this.pending.delete(m.id);
        if (m.cancelled) to.resolve(CANCELLED);
        else if ('err' in m) to.reject(m.err);
        else to.resolve(m.result);
      } else if (m.t === 'cancel') {
        const stop = this.running.get(m.id);
        if (stop) stop();
      } else if (m.t === 'call') {
        this.run(m);
      }
    }

    async run(m) {
      const target = this.target;
      const hooks = [];
      const call = {
        cancelled: false,
        onCancel: (fn) => { hooks.push(fn); },
        emit: (name, data, transfer) => { target.postMessage({ t: 'event', id: m.id, name, data }, transfer || []); },
      };
      this.running.set(m.id, () => {
        if (call.cancelled) return;
        call.cancelled = true;
        for (const fn of hooks) fn();
      });
      let reply, transfer = [];
      try {
        const handler = this.handlers[m.method];
        if (!handler) throw { class: 'io', message: 'no such request: ' + m.method };
        let result = await handler(m.args, call);
        if (result instanceof Transfer) { transfer = result.list; result = result.value; }
        reply = result === CANCELLED ? { t: 'reply', id: m.id, cancelled: true } : { t: 'reply', id: m.id, result };
      } catch (e) {
        reply = { t: 'reply', id: m.id, err: errorOf(e) };
      }
      this.running.delete(m.id);
      target.postMessage(reply, transfer);
    }
  }

  Bridge.CANCELLED = CANCELLED;
  Bridge.transfer = (value, list) => new Transfer(value, list);
  return Bridge;
})();
