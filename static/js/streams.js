// Numbered streams: the server numbers each stream's events 1, 2, 3, ... (`stream`, `seq`), and
// a live list says which stream it shows and the last seq it reflects (data-stream, data-seq).
// Per stream this applies events in seq order, drops one already applied, holds one that came
// early while the missing ones are fetched at once (GET /events?stream=&after_seq=), fetches
// too when `stream:head` says the stream is further on than the page, and reloads when the
// server no longer keeps what the page misses (410).
//
// Pure logic: the fetch, the apply and the reload are passed in. realtime.js wires it to the
// page; tests/js/streams.test.js drives it in Node.
(function (root, factory) {
  const api = factory();
  if (typeof module === "object" && module.exports) module.exports = api;
  else root.streams = api;
})(typeof self !== "undefined" ? self : globalThis, () => {
  "use strict";

  const RETRY_MS = [500, 1000, 2000, 5000, 10000];

  // fetchEvents(stream, afterSeq) resolves to GET /events' answer, {status: 200, events:
  // [{event, seq, ...data}], last_seq, head} (a long gap comes in pages: last_seq is the page's
  // last, head the stream's), or {status: 410}; it rejects when there was no usable answer.
  // apply(event, data) shows one event; applied(stream, seq) is told the new last seq;
  // reload(stream) starts the list again from the server.
  function createStreams({ fetchEvents, apply, reload, applied = () => {}, timers = globalThis }) {
    const states = new Map(); // stream -> its state, replaced whenever its list is (track)

    function track(stream, seq) {
      const old = states.get(stream);
      if (old) timers.clearTimeout(old.timer);
      states.set(stream, {
        stream,
        seq: Number.isInteger(seq) && seq > 0 ? seq : 0, // the last event applied
        held: new Map(), // seq -> [event, data]: arrived before the ones between
        known: 0, // the highest seq known to exist (events held, stream:head, an answer's head)
        fetching: null, // the fetch under way, if any
        again: false, // fetch once more after it (a reconnect while it was under way)
        retries: 0,
        timer: null,
        gone: false, // answered 410: the list is being reloaded
      });
    }

    function untrack(stream) {
      const state = states.get(stream);
      if (state) timers.clearTimeout(state.timer);
      states.delete(stream);
    }

    // Apply what follows the last applied seq without a hole.
    function drain(state) {
      const from = state.seq;
      while (state.held.has(state.seq + 1)) {
        const [event, data] = state.held.get(state.seq + 1);
        state.held.delete(state.seq + 1);
        state.seq += 1;
        apply(event, data);
      }
      if (state.seq !== from) applied(state.stream, state.seq);
    }

    function hold(state, event, data) {
      if (data.seq > state.seq && !state.held.has(data.seq)) state.held.set(data.seq, [event, data]);
      state.known = Math.max(state.known, data.seq);
    }

    const behind = (state) => state.known > state.seq;
    const current = (state) => states.get(state.stream) === state && !state.gone;

    // Fetch what the page misses; resolves once the stream is caught up (or given up on for
    // now: a failed fetch is tried again later by a timer).
    function repair(state) {
      if (state.fetching) return state.fetching;
      timers.clearTimeout(state.timer);
      state.timer = null;
      const from = state.seq;
      let failed = false;
      state.fetching = Promise.resolve()
        .then(() => fetchEvents(state.stream, from))
        .then((answer) => {
          if (!current(state)) return;
          if (answer.status === 410) {
            state.gone = true;
            reload(state.stream);
            return;
          }
          for (const { event, ...data } of answer.events || []) {
            if (Number.isInteger(data.seq)) hold(state, event, { ...data, stream: state.stream });
          }
          for (const seq of [answer.last_seq, answer.head]) {
            if (Number.isInteger(seq)) state.known = Math.max(state.known, seq);
          }
          drain(state);
        })
        .catch(() => { failed = true; })
        .then(() => {
          state.fetching = null;
          if (!current(state)) return null;
          const progressed = state.seq > from;
          if (!failed && (state.again || (behind(state) && progressed))) {
            state.again = false;
            return repair(state); // more to fetch, and the server has it
          }
          if (failed || behind(state)) return retryLater(state);
          state.retries = 0;
          return null;
        });
      return state.fetching;
    }

    // No answer, or the server does not show yet what an event or a head announced.
    function retryLater(state) {
      const ms = RETRY_MS[Math.min(state.retries, RETRY_MS.length - 1)];
      state.retries += 1;
      state.timer = timers.setTimeout(() => {
        state.timer = null;
        if (current(state)) repair(state);
      }, ms);
    }

    // A numbered event from the socket: true when its stream is tracked (handled here: applied,
    // held or dropped), false when the caller applies it as before.
    function receive(event, data) {
      const state = data && states.get(data.stream);
      if (!state || !Number.isInteger(data.seq)) return false;
      if (state.gone || data.seq <= state.seq) return true; // already shown: a repeat
      hold(state, event, data);
      drain(state);
      if (behind(state)) repair(state);
      return true;
    }

    // stream:head {stream, seq}: the stream's last seq; a page behind it lost events.
    function head(data) {
      const state = data && states.get(data.stream);
      if (!state || !Number.isInteger(data.seq)) return false;
      state.known = Math.max(state.known, data.seq);
      if (behind(state) && !state.gone) repair(state);
      return true;
    }

    // After a (re)connect: fetch whatever happened since the last applied event. A fetch under
    // way may have started before what the page missed: one more follows it.
    function catchUp(stream) {
      const state = states.get(stream);
      if (!state || state.gone) return Promise.resolve();
      if (state.fetching) state.again = true;
      return repair(state);
    }

    return {
      track,
      untrack,
      receive,
      head,
      catchUp,
      tracks: (stream) => states.has(stream),
      lastSeq: (stream) => (states.has(stream) ? states.get(stream).seq : null),
    };
  }

  return { createStreams };
});
