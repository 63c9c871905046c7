// The ordering and gap logic of static/js/streams.js, without a browser (run by
// tests/test_streams_js.py, or `node --test tests/js/`).
"use strict";

const assert = require("node:assert/strict");
const { test } = require("node:test");
const { createStreams } = require("../../static/js/streams.js");

// A server stream of `count` events, as GET /events answers them.
function serverEvents(stream, count) {
  return Array.from({ length: count }, (_, i) => ({
    event: "table:row", seq: i + 1, id: i + 1, stream, html: `<tr id="row-${i + 1}"></tr>`,
  }));
}

const socketEvent = (stream, seq) => ["table:row", { stream, seq, id: seq, html: "" }];

// Streams wired to a fake page and a fake server: what was applied, each fetch asked for, and
// timers that run only when the test says so. A gated server answers once release() is called.
function harness({ events = serverEvents("table", 10), answer = null, gated = false } = {}) {
  let release = () => {};
  const gate = gated ? new Promise((resolve) => { release = resolve; }) : null;
  const shown = [];
  const fetches = [];
  const reloads = [];
  const timers = new Map();
  let nextTimer = 1;
  const streams = createStreams({
    fetchEvents: async (stream, afterSeq) => {
      fetches.push([stream, afterSeq]);
      if (gate) await gate;
      if (answer) return answer(stream, afterSeq);
      const head = events.length ? events[events.length - 1].seq : 0;
      return { status: 200, events: events.filter((e) => e.seq > afterSeq), last_seq: head, head };
    },
    apply: (event, data) => shown.push([event, data.stream, data.seq]),
    reload: (stream) => reloads.push(stream),
    timers: {
      setTimeout: (fn, ms) => { timers.set(nextTimer, [fn, ms]); return nextTimer++; },
      clearTimeout: (id) => timers.delete(id),
    },
  });
  const runTimers = async () => {
    const due = Array.from(timers.values());
    timers.clear();
    for (const [fn] of due) fn();
    await settle();
  };
  return { streams, shown, fetches, reloads, timers, runTimers, release };
}

// Let every pending promise (fake fetches included) run to the end.
const settle = () => new Promise((resolve) => setImmediate(resolve));
const seqs = (shown) => shown.map(([, , seq]) => seq);

test("events that arrive in order are applied at once, without a fetch", async () => {
  const h = harness();
  h.streams.track("table", 3);
  for (const seq of [4, 5, 6]) assert.equal(h.streams.receive(...socketEvent("table", seq)), true);
  await settle();
  assert.deepEqual(seqs(h.shown), [4, 5, 6]);
  assert.deepEqual(h.fetches, []);
  assert.equal(h.streams.lastSeq("table"), 6);
});

test("a repeat of an applied event is dropped", async () => {
  const h = harness();
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 4));
  assert.equal(h.streams.receive(...socketEvent("table", 4)), true);
  assert.equal(h.streams.receive(...socketEvent("table", 2)), true);
  await settle();
  assert.deepEqual(seqs(h.shown), [4]);
  assert.deepEqual(h.fetches, []);
});

test("an early event is held, the gap fetched at once, and everything applied in order", async () => {
  const h = harness({ events: serverEvents("table", 6), gated: true });
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 6)); // 4 and 5 lost
  await settle();
  assert.deepEqual(h.shown, [], "6 must wait for 4 and 5");
  assert.deepEqual(h.fetches, [["table", 3]], "the gap is fetched without waiting");
  h.streams.receive(...socketEvent("table", 5)); // arrives late while the fetch is under way
  await settle();
  assert.deepEqual(h.shown, []);
  assert.equal(h.fetches.length, 1, "one fetch at a time");
  h.release();
  await settle();
  assert.deepEqual(seqs(h.shown), [4, 5, 6], "in seq order, each once");
  assert.equal(h.fetches.length, 1);
  assert.equal(h.timers.size, 0);
});

test("the gap is repaired when the socket brings the missing event before the fetch answers", async () => {
  const h = harness({ events: serverEvents("table", 5) });
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 5));
  h.streams.receive(...socketEvent("table", 4));
  assert.deepEqual(seqs(h.shown), [4, 5], "applied as soon as the hole is filled");
  await settle();
  assert.deepEqual(seqs(h.shown), [4, 5], "the fetched copies are repeats");
});

test("events of an untracked stream are left to the caller", () => {
  const h = harness();
  h.streams.track("table", 0);
  assert.equal(h.streams.receive("chat:message", { stream: "room:general", seq: 1 }), false);
  assert.equal(h.streams.receive("chat:presence", { user: "ann" }), false);
  assert.equal(h.streams.receive("table:row", { stream: "table" }), false, "no seq");
  assert.deepEqual(h.shown, []);
});

test("stream:head ahead of the page fetches what it lost; at or behind it does nothing", async () => {
  const h = harness({ events: serverEvents("table", 5) });
  h.streams.track("table", 4);
  assert.equal(h.streams.head({ stream: "table", seq: 4 }), true);
  await settle();
  assert.deepEqual(h.fetches, []);
  h.streams.head({ stream: "table", seq: 5 }); // the stream's last event never arrived
  await settle();
  assert.deepEqual(h.fetches, [["table", 4]]);
  assert.deepEqual(seqs(h.shown), [5]);
  assert.equal(h.streams.head({ stream: "room:x", seq: 9 }), false);
});

test("410: the server no longer keeps what the page misses, so the list is reloaded", async () => {
  const h = harness({ answer: async () => ({ status: 410 }) });
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 90));
  await settle();
  assert.deepEqual(h.reloads, ["table"]);
  assert.deepEqual(h.shown, []);
  h.streams.receive(...socketEvent("table", 91));
  h.streams.head({ stream: "table", seq: 95 });
  await settle();
  assert.equal(h.fetches.length, 1, "nothing more until the list is back");
  assert.deepEqual(h.reloads, ["table"]);
});

test("a failed fetch is tried again later, with the held events kept", async () => {
  let fail = true;
  const events = serverEvents("table", 6);
  const h = harness({
    answer: async (stream, after) => {
      if (fail) throw new Error("network down");
      return { status: 200, events: events.filter((e) => e.seq > after), last_seq: 6 };
    },
  });
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 6));
  await settle();
  assert.deepEqual(h.shown, []);
  assert.equal(h.timers.size, 1, "a retry is scheduled");
  await h.runTimers();
  assert.equal(h.fetches.length, 2);
  assert.deepEqual(h.shown, []);
  fail = false;
  await h.runTimers();
  assert.deepEqual(seqs(h.shown), [4, 5, 6]);
  assert.equal(h.timers.size, 0);
});

test("a long gap answered in pages is fetched page after page", async () => {
  const events = serverEvents("table", 9);
  const h = harness({
    answer: async (stream, after) => {
      const page = events.filter((e) => e.seq > after).slice(0, 2);
      return { status: 200, events: page, last_seq: page[page.length - 1].seq, head: 9, more: true };
    },
  });
  h.streams.track("table", 0);
  h.streams.head({ stream: "table", seq: 9 });
  await settle();
  assert.deepEqual(seqs(h.shown), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(h.fetches.map(([, after]) => after), [0, 2, 4, 6, 8]);
});

test("an answer without the announced events waits and asks again, not in a loop", async () => {
  let visible = 3;
  const events = serverEvents("table", 5);
  const h = harness({
    answer: async (stream, after) => ({
      status: 200, events: events.slice(0, visible).filter((e) => e.seq > after), last_seq: visible,
    }),
  });
  h.streams.track("table", 3);
  h.streams.receive(...socketEvent("table", 5));
  await settle();
  assert.equal(h.fetches.length, 1);
  assert.equal(h.timers.size, 1);
  visible = 5;
  await h.runTimers();
  assert.deepEqual(seqs(h.shown), [4, 5]);
});

test("catch-up after a reconnect replays what happened since, edits and deletions included", async () => {
  const events = [
    ...serverEvents("table", 2),
    { event: "table:row-edited", seq: 3, id: 1, html: "" },
    { event: "table:row-deleted", seq: 4, id: 2, html: "" },
  ];
  const h = harness({ events });
  h.streams.track("table", 2);
  await h.streams.catchUp("table");
  assert.deepEqual(h.shown, [["table:row-edited", "table", 3], ["table:row-deleted", "table", 4]]);
  assert.deepEqual(h.fetches, [["table", 2]]);
  await h.streams.catchUp("table"); // nothing new: one more small fetch, nothing applied
  assert.equal(h.shown.length, 2);
});

test("a catch-up during a fetch fetches once more after it", async () => {
  const events = serverEvents("table", 4);
  let visible = 2;
  const h = harness({
    answer: async (stream, after) => ({
      status: 200, events: events.slice(0, visible).filter((e) => e.seq > after), last_seq: visible,
    }),
  });
  h.streams.track("table", 0);
  const first = h.streams.catchUp("table");
  visible = 4; // committed after the first fetch read the stream
  const second = h.streams.catchUp("table");
  await Promise.all([first, second]);
  assert.deepEqual(seqs(h.shown), [1, 2, 3, 4]);
  assert.equal(h.fetches.length, 2);
});

test("a replaced list starts from its own seq, and an old fetch's answer is ignored", async () => {
  const h = harness({ events: serverEvents("room:a", 8), gated: true });
  h.streams.track("room:a", 1);
  h.streams.receive("chat:message", { stream: "room:a", seq: 5 });
  await settle();
  h.streams.track("room:a", 6); // the room shown again, rendered at seq 6
  h.release();
  await settle();
  assert.deepEqual(h.shown, [], "the first fetch was for a list that is gone");
  h.streams.receive("chat:message", { stream: "room:a", seq: 7 });
  assert.deepEqual(seqs(h.shown), [7]);
  h.streams.untrack("room:a");
  assert.equal(h.streams.receive("chat:message", { stream: "room:a", seq: 8 }), false);
});

test("streams are independent of each other", async () => {
  const h = harness({ answer: async () => ({ status: 200, events: [], last_seq: 0 }) });
  h.streams.track("room:a", 0);
  h.streams.track("room:b", 10);
  h.streams.receive("chat:message", { stream: "room:a", seq: 1 });
  h.streams.receive("chat:message", { stream: "room:b", seq: 11 });
  h.streams.receive("chat:message", { stream: "room:b", seq: 10 });
  assert.deepEqual(h.shown.map(([, s, n]) => `${s}#${n}`), ["room:a#1", "room:b#11"]);
  await settle();
  assert.deepEqual(h.fetches, []);
});
