// Load generator for the fan-out benchmark: many browser-like Socket.IO clients in one process.
//
// Driven by bench/run.py: one JSON command per line on stdin, one JSON result per line on
// stdout (progress goes to stderr). Every client loads a page for its own session cookie and
// CSRF token, then connects over websocket with that cookie, offering permessage-deflate and
// sending the page's Origin like a browser. Each command reports the generator's own CPU use,
// so a saturated generator is visible next to the figures it produced.
//
//   node bench/loadgen.mjs http://127.0.0.1:8000

import http from "node:http";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { httpClient, pool, serveCommands, sleep } from "./http.mjs";

const BASE = process.argv[2];
if (!BASE) {
  console.error("usage: node bench/loadgen.mjs BASE_URL");
  process.exit(2);
}
const { request, Session } = httpClient(BASE);
const log = (...args) => console.error("[loadgen]", ...args);

// ---------------------------------------------------------------- clients and deliveries

let clients = []; // { session, socket, connected }
let sender = null; // the session that posts rows

function openSocket(session) {
  return new Promise((resolve, reject) => {
    const socket = io(BASE, {
      transports: ["websocket"],
      forceNew: true, // one connection per client: never multiplex clients on one socket
      reconnection: false,
      timeout: 60000,
      extraHeaders: { Cookie: session.cookieHeader },
      origin: BASE,
      perMessageDeflate: { threshold: 1024 }, // browsers always offer it
    });
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (error) => {
      socket.close();
      reject(error);
    });
  });
}

/** Expected deliveries of tagged messages: which client received which tag, and when. */
class Tracker {
  constructor() {
    this.open = new Map(); // tag -> { t0, seen: Uint8Array, latencies: [], count, done }
    this.duplicates = 0;
  }

  expect(tag, receivers) {
    let done;
    const promise = new Promise((resolve) => (done = resolve));
    const entry = { t0: 0, seen: new Uint8Array(clients.length), latencies: [], count: 0, receivers, done, promise };
    this.open.set(tag, entry);
    return entry;
  }

  deliver(index, tag) {
    const entry = this.open.get(tag);
    if (!entry) return;
    if (entry.seen[index]) {
      this.duplicates++;
      return;
    }
    entry.seen[index] = 1;
    entry.latencies.push(performance.now() - entry.t0);
    if (++entry.count >= entry.receivers) entry.done();
  }

  close(tag) {
    const entry = this.open.get(tag);
    this.open.delete(tag);
    return entry;
  }
}

const tracker = new Tracker();
let tagSeq = Math.floor(Math.random() * 1e8); // a unique `a` per row identifies its deliveries

function connectedCount() {
  return clients.filter((c) => c.socket.connected).length;
}

function percentiles(values) {
  if (!values.length) return { count: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
  const sum = sorted.reduce((a, b) => a + b, 0);
  const round = (x) => Math.round(x * 100) / 100;
  return {
    count: sorted.length,
    p50: round(at(50)),
    p95: round(at(95)),
    p99: round(at(99)),
    max: round(sorted[sorted.length - 1]),
    mean: round(sum / sorted.length),
  };
}

/** Send one tagged message with ``send(tag)`` and wait until every client has it (or timeout). */
async function deliverOne(send, timeoutMs) {
  const tag = String(++tagSeq);
  const entry = tracker.expect(tag, connectedCount());
  if (entry.receivers === 0) entry.done();
  let failure = null;
  entry.t0 = performance.now();
  const sent = Promise.resolve(send(tag)).catch((error) => (failure = error));
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  await Promise.race([Promise.all([entry.promise, sent]), timeout]);
  clearTimeout(timer);
  tracker.close(tag);
  if (failure) throw failure;
  return { latencies: entry.latencies, missing: entry.receivers - entry.count };
}

// ---------------------------------------------------------------- scenarios

const scenarios = {
  table: {
    event: "table:row",
    tagOf: (data) => String(data.a),
    /** POST /table/rows like the form does; `a` carries the tag, so deliveries are matched early. */
    async send(tag) {
      const res = await sender.post("/table/rows", { a: tag, b: "1" }, { Accept: "application/json" });
      if (res.status !== 201) throw new Error(`POST /table/rows answered ${res.status}: ${res.body.slice(0, 200)}`);
    },
  },
  chat: {
    // The chat room scenario: members join a room, one sends, everyone receives chat:message.
    event: "chat:message",
    tagOf: (data) => data.body,
    room: null,
    senders: 1, // clients 0..senders-1 belong to different users: the chat limits each user's rate
    sent: 0,
    send(tag) {
      const socket = clients[this.sent++ % this.senders].socket;
      return new Promise((resolve, reject) => {
        socket.timeout(30000).emit("chat:send", { room: this.room, body: tag }, (err, ack) => {
          if (err || !ack?.ok) reject(new Error(`chat:send failed: ${err || JSON.stringify(ack)}`));
          else resolve();
        });
      });
    },
  },
};
// The members scenario: N people (one socket each) in one room, each a member of more rooms;
// sent and received as in the chat scenario, by the first `senders` of them in turn.
scenarios.members = { ...scenarios.chat, room: null, senders: 1, sent: 0 };
scenarios.members.send = scenarios.chat.send;

// The JSON size of the last event the first client received: the references pad theirs to it.
let payloadBytes = 0;

function listen(client, index, scenario) {
  client.socket.on(scenario.event, (data) => {
    if (index === 0) payloadBytes = Buffer.byteLength(JSON.stringify(data));
    tracker.deliver(index, scenario.tagOf(data));
  });
}

/** N clients, each a session that ``open(i)`` gives with its page loaded, and its socket. */
async function connectClients({ n, concurrency = 16, scenario = "table", sessions = null, page = "/", open = null }) {
  const started = performance.now();
  let failed = 0;
  const errors = new Set();
  const made = await pool(n, concurrency, async (i) => {
    try {
      let session;
      if (open) {
        session = await open(i);
      } else {
        session = sessions ? sessions[i % sessions.length] : new Session();
        await session.load(page);
      }
      const socket = await openSocket(session);
      return { session, socket };
    } catch (error) {
      failed++;
      errors.add(String(error.message || error));
      return null;
    }
  });
  clients = made.filter(Boolean);
  clients.forEach((client, index) => listen(client, index, scenarios[scenario]));
  sender = clients[0]?.session || new Session();
  if (!sender.token) await sender.load("/");
  return { connected: clients.length, failed, errors: [...errors].slice(0, 5), seconds: (performance.now() - started) / 1000 };
}

async function latency({ rounds, warmup = 1, scenario = "table", timeoutMs = 15000, pauseMs = 50 }) {
  const all = [];
  let missing = 0;
  for (let r = 0; r < warmup + rounds; r++) {
    const result = await deliverOne((tag) => scenarios[scenario].send(tag), timeoutMs);
    if (r >= warmup) {
      all.push(...result.latencies);
      missing += result.missing;
    }
    await sleep(pauseMs);
  }
  return { rounds, receivers: connectedCount(), missing, latency_ms: percentiles(all), payload_bytes: payloadBytes };
}

async function throughput({ messages, inflight, scenario = "table", timeoutMs = 30000 }) {
  const started = performance.now();
  let next = 0;
  let delivered = 0;
  let missing = 0;
  const all = [];
  async function runner() {
    while (next < messages) {
      next++;
      const result = await deliverOne((tag) => scenarios[scenario].send(tag), timeoutMs);
      delivered += result.latencies.length;
      missing += result.missing;
      for (const value of result.latencies) all.push(value);
    }
  }
  await Promise.all(Array.from({ length: inflight }, runner));
  const seconds = (performance.now() - started) / 1000;
  return {
    messages,
    inflight,
    receivers: connectedCount(),
    seconds,
    messages_per_s: messages / seconds,
    deliveries_per_s: delivered / seconds,
    delivered,
    missing,
    duplicates: tracker.duplicates,
    latency_ms: percentiles(all),
  };
}

/**
 * Warm-up: POST rows, each over a connection of its own so that the kernel spreads them over
 * the workers (one listening socket each), until every worker (told by the X-Worker header
 * of the answer) has added ``perWorker`` rows. A worker's first rows compile templates and
 * SQL statements; that is paid once per process, and must not fall into a measured phase.
 */
async function warmWorkers({ workers = 1, perWorker = 3, maxPosts = 200 }) {
  const session = sender || new Session();
  if (!session.token) await session.load("/");
  const seen = new Map();
  let posts = 0;
  const done = () => seen.size >= workers && [...seen.values()].every((n) => n >= perWorker);
  while (!done() && posts < maxPosts) {
    posts++;
    const fresh = new http.Agent({ keepAlive: false });
    const body = new URLSearchParams({ a: "1", b: "1" }).toString();
    const res = await request("POST", "/table/rows", {
      body,
      agentOverride: fresh,
      headers: session.formHeaders(body, { Accept: "application/json" }),
    });
    if (res.status !== 201) throw new Error(`warm-up POST /table/rows answered ${res.status}`);
    const worker = res.headers["x-worker"] || "?";
    seen.set(worker, (seen.get(worker) || 0) + 1);
  }
  return { posts, workers: Object.fromEntries(seen), complete: done() };
}

/** Built-in HTTP load when wrk is not installed: keep-alive connections, GET in a loop. */
async function httpLoad({ path, seconds = 5, connections = 8 }) {
  const session = sender || new Session();
  if (!session.token) await session.load("/");
  const loadAgent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const latencies = [];
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  async function runner() {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const res = await request("GET", path, { headers: { Cookie: session.cookieHeader }, agentOverride: loadAgent });
        if (res.status === 200) ok++;
        else errors++;
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  }
  await Promise.all(Array.from({ length: connections }, runner));
  const elapsed = (performance.now() - started) / 1000;
  loadAgent.destroy();
  return { path, connections, seconds: elapsed, requests: ok, errors, requests_per_s: ok / elapsed, latency_ms: percentiles(latencies) };
}

/** Chat scenario set-up: a few accounts (password hashing is slow), N members in one room. */
async function chatConnect({ n, users = 20, room, password = "bench-password-1" }) {
  const sessions = [];
  for (let u = 0; u < Math.min(users, n); u++) {
    const session = new Session();
    await session.load("/register");
    const username = `bench_${room}_${u}`.slice(0, 32);
    const res = await session.post("/register", { username, password });
    if (res.status >= 400) throw new Error(`POST /register answered ${res.status}`);
    sessions.push(session);
  }
  await sessions[0].load("/chat");
  const created = await sessions[0].post("/chat/rooms", { name: room });
  if (created.status >= 400) throw new Error(`POST /chat/rooms answered ${created.status}`);
  // Members post: the others join it (opening it joins nobody).
  for (const session of sessions.slice(1)) {
    await session.load("/chat");
    const joined = await session.post(`/chat/${room}/join`, {});
    if (joined.status >= 400) throw new Error(`POST /chat/${room}/join answered ${joined.status}`);
  }
  scenarios.chat.room = room;
  scenarios.chat.senders = sessions.length;
  const result = await connectClients({ n, scenario: "chat", sessions, page: `/chat/${room}` });
  return { ...result, joined: await joinAll(room) };
}

/** Every client's socket joins ``room``. Like chat.js: a join the server was too busy for
 * ({ok: false, retry: true}) is sent again. How many joined. */
async function joinAll(room) {
  const joins = await pool(clients.length, 32, async (i) => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const ack = await clients[i].socket.timeout(30000).emitWithAck("chat:join", { room })
        .catch(() => null);
      if (ack?.ok) return true;
      if (ack && !ack.retry) return false;
      await sleep(1000 + Math.random() * 2000);
    }
    return false;
  });
  return joins.filter(Boolean).length;
}

/** Members scenario set-up: N seeded accounts (bench/seed.py) log in, open the room, join it. */
async function membersConnect({ n, room, senders = 20, password = "bench-password-1", concurrency = 16 }) {
  scenarios.members.room = room;
  const result = await connectClients({
    n,
    concurrency,
    scenario: "members",
    open: async (i) => {
      const session = new Session();
      await session.load("/login");
      const res = await session.post("/login", { username: `${room}_${i}`, password });
      if (res.status >= 400) throw new Error(`POST /login answered ${res.status}`);
      await session.load(`/chat/${room}`);
      return session;
    },
  });
  scenarios.members.senders = Math.max(1, Math.min(senders, clients.length));
  return { ...result, joined: await joinAll(room) };
}

async function disconnect() {
  for (const client of clients) client.socket.close();
  const closed = clients.length;
  clients = [];
  return { closed };
}

const commands = {
  connect: connectClients,
  latency,
  throughput,
  http: httpLoad,
  "chat-connect": chatConnect,
  "members-connect": membersConnect,
  "warm-workers": warmWorkers,
  disconnect,
  async quit() {
    setImmediate(() => process.exit(0));
    return {};
  },
};

// ---------------------------------------------------------------- command loop

serveCommands(commands, "loadgen_cpu_percent");
