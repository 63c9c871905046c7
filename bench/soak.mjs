// Soak load generator: many browser-like Socket.IO clients that stay connected for minutes while
// rows and chat messages are added at a steady rate, and that account for every delivery.
//
// Driven by bench/soak.py: one JSON command per line on stdin, one JSON reply per line on
// stdout (progress goes to stderr). Every client is a browser tab: it loads a page for its
// session cookie, CSRF token and the newest id the page shows, connects over websocket with that
// cookie (offering permessage-deflate and sending the page's Origin like a browser), and after
// every connect catches up from the database over HTTP as static/js/realtime.js does. Chat tabs
// belong to logged-in users (several tabs per user share its cookie, as tabs of one browser do),
// each showing one room. Some tabs reload now and then (a new page, a new socket), and the
// socket reconnects by itself with backoff and jitter when it drops.
//
// Each page lifetime records which row and message ids reached it over the socket (and how
// often) and which only through a catch-up; `verify` compares that with the database.
//
//   node bench/soak.mjs http://127.0.0.1:8000

import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";
import { httpClient, pool, serveCommands, sleep } from "./http.mjs";

const BASE = process.argv[2];
if (!BASE) {
  console.error("usage: node bench/soak.mjs BASE_URL");
  process.exit(2);
}
const { dropIdleConnections, Session } = httpClient(BASE);
const ROWS_LAST_ID = /<tbody id="rows"[^>]*data-last-id="(\d+)"/;
const MESSAGES_LAST_ID = /data-live-list data-order="asc"[^>]*data-last-id="(\d+)"/;
const ROW_ID = /<tr id="row-(\d+)"/g;
const log = (...args) => console.error("[soak]", new Date().toISOString(), ...args);
const pick = (items) => items[Math.floor(Math.random() * items.length)];

// ---------------------------------------------------------------- what a page has received

/** Ids a page received: how often over its socket, and whether a catch-up brought them. */
class IdLog {
  constructor() {
    this.socket = new Uint8Array(256);
    this.caught = new Uint8Array(256);
  }

  grow(id) {
    if (id < this.socket.length) return;
    let size = this.socket.length;
    while (size <= id) size *= 2;
    for (const name of ["socket", "caught"]) {
      const bigger = new Uint8Array(size);
      bigger.set(this[name]);
      this[name] = bigger;
    }
  }

  pushed(id) {
    this.grow(id);
    if (this.socket[id] < 255) this.socket[id]++;
  }

  fetched(id) {
    this.grow(id);
    this.caught[id] = 1;
  }

  has(id) {
    return id < this.socket.length && (this.socket[id] > 0 || this.caught[id] > 0);
  }

  duplicates() {
    let extra = 0;
    for (const count of this.socket) if (count > 1) extra += count - 1;
    return extra;
  }

  /** Every id the page has, for finding ids that do not exist. */
  *ids() {
    for (let id = 0; id < this.socket.length; id++) if (this.socket[id] || this.caught[id]) yield id;
  }
}

/** Latencies (ms, 1 ms buckets up to 2 minutes) from a request until a page had its id. */
class Histogram {
  constructor() {
    this.counts = new Uint32Array(120001);
    this.total = 0;
  }

  add(ms) {
    this.counts[Math.min(this.counts.length - 1, Math.max(0, Math.round(ms)))]++;
    this.total++;
  }

  summary() {
    if (!this.total) return { count: 0 };
    const at = (p) => {
      const want = Math.ceil((p / 100) * this.total);
      let seen = 0;
      for (let ms = 0; ms < this.counts.length; ms++) {
        seen += this.counts[ms];
        if (seen >= want) return ms;
      }
      return this.counts.length - 1;
    };
    return { count: this.total, p50: at(50), p95: at(95), p99: at(99), max: at(100) };
  }
}

// ---------------------------------------------------------------- clients (browser tabs)

const stats = {
  connectFailures: 0,
  reloadFailures: 0,
  reconnects: 0,
  resyncs: 0,
  catchups: 0,
  catchupFailures: 0,
  catchupRowsFetched: 0,
  catchupMessagesFetched: 0,
  catchupRepeats: 0, // an id twice in one catch-up answer
  overflowReloads: 0,
  joinFailures: 0,
  wrongRoom: 0,
  errors: new Map(), // message -> count
};

function noteError(kind, error) {
  const key = `${kind}: ${String(error?.message || error).slice(0, 160)}`;
  stats.errors.set(key, (stats.errors.get(key) || 0) + 1);
}

const latency = { rows: new Histogram(), messages: new Histogram() };
// When each row (by its unique `a`) and message (by its unique body) was sent: deliveries can
// beat the answer that tells the id, so the latency is keyed by what the sender chose.
const sentAt = { rows: new Map(), messages: new Map() };
let rowTag = -1_000_000_000;

let clients = [];
let users = []; // { name, session, room }
const finished = []; // page lifetimes that ended with a reload

class Client {
  constructor(index, user) {
    this.index = index;
    this.user = user; // null: an anonymous tab of the table
    this.session = user ? user.session : new Session();
    this.room = user ? user.room : null;
    this.socket = null;
    this.page = null;
    this.busy = false; // reloading
    this.catchingUp = 0;
    this.joined = false;
  }

  get connected() {
    return Boolean(this.socket?.connected) && !this.busy && (!this.room || this.joined);
  }

  /** A page load and a new socket: a fresh page lifetime. */
  async open() {
    const home = await this.session.load("/");
    const rowBase = Number(ROWS_LAST_ID.exec(home.body)?.[1]);
    if (!Number.isFinite(rowBase)) throw new Error("GET / has no data-last-id on #rows");
    let messageBase = null;
    if (this.room) {
      const page = await this.session.load(`/chat/${this.room}`);
      messageBase = Number(MESSAGES_LAST_ID.exec(page.body)?.[1]);
      if (!Number.isFinite(messageBase)) throw new Error("the room page has no data-last-id");
    }
    const page = {
      client: this.index,
      room: this.room,
      rowBase,
      messageBase,
      rows: new IdLog(),
      messages: new IdLog(),
      start: Date.now(),
      end: null,
      connects: 0,
      // Since when the page may have missed events (socket down, or the server asked for a
      // resync) without a catch-up since: a page that closes then is judged up to that time.
      downSince: null,
      gaps: 0, // how many times it may have missed events (disconnects and resyncs)
    };
    this.page = page;
    this.joined = false;
    const socket = io(BASE, {
      transports: ["websocket"],
      forceNew: true, // one connection per tab
      reconnection: true, // socket.io-client's defaults: 1 s to 5 s with jitter, as in browsers
      timeout: 60000,
      extraHeaders: { Cookie: this.session.cookieHeader },
      origin: BASE,
      perMessageDeflate: { threshold: 1024 },
    });
    this.socket = socket;
    socket.on("table:row", (data) => {
      page.rows.pushed(data.id);
      const t0 = sentAt.rows.get(data.a);
      if (t0 !== undefined) latency.rows.add(performance.now() - t0);
    });
    if (this.room) {
      socket.on("chat:message", (data) => {
        if (String(data.room).toLowerCase() !== this.room) {
          stats.wrongRoom++;
          return;
        }
        page.messages.pushed(data.id);
        const t0 = sentAt.messages.get(data.body);
        if (t0 !== undefined) latency.messages.add(performance.now() - t0);
      });
    }
    socket.on("server:resync", () => {
      stats.resyncs++;
      page.gaps++;
      page.downSince ??= Date.now();
      this.catchUp(page);
    });
    socket.on("disconnect", () => {
      page.gaps++;
      page.downSince ??= Date.now();
      if (this.page === page) this.joined = false;
    });
    socket.on("connect", () => this.onConnect(socket, page));
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no connect within 60 s")), 60000);
      socket.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  async onConnect(socket, page) {
    page.connects++;
    if (page.connects > 1) stats.reconnects++;
    if (this.room) {
      try {
        const ack = await socket.timeout(30000).emitWithAck("chat:join", { room: this.room });
        if (!ack?.ok) throw new Error(`chat:join answered ${JSON.stringify(ack)}`);
        if (this.page === page) this.joined = true;
      } catch (error) {
        stats.joinFailures++;
        noteError("chat:join", error);
      }
    }
    await this.catchUp(page);
  }

  /** What realtime.js does after every connect: fetch what the page may have missed. */
  async catchUp(page) {
    this.catchingUp++;
    stats.catchups++;
    const gaps = page.gaps; // a catch-up closes the gaps opened before it started
    try {
      const rows = await this.session.get(`/table/rows?after=${page.rowBase}`, { "HX-Request": "true" });
      if (rows.status !== 200) throw new Error(`GET /table/rows?after= answered ${rows.status}`);
      if (rows.headers["hx-refresh"] === "true") return this.overflow(page);
      const seen = new Set();
      for (const match of rows.body.matchAll(ROW_ID)) {
        const id = Number(match[1]);
        if (seen.has(id)) stats.catchupRepeats++;
        seen.add(id);
        page.rows.fetched(id);
        stats.catchupRowsFetched++;
      }
      if (this.room) {
        const res = await this.session.get(`/chat/${this.room}/messages?after=${page.messageBase}`, {
          Accept: "application/json",
        });
        if (res.status !== 200) throw new Error(`GET /chat/.../messages?after= answered ${res.status}`);
        const found = JSON.parse(res.body).messages;
        if (found.length >= 1000) return this.overflow(page);
        const ids = new Set();
        for (const message of found) {
          if (ids.has(message.id)) stats.catchupRepeats++;
          ids.add(message.id);
          page.messages.fetched(message.id);
          stats.catchupMessagesFetched++;
        }
      }
      if (page.gaps === gaps && this.socket?.connected) page.downSince = null;
    } catch (error) {
      stats.catchupFailures++;
      noteError("catch-up", error);
    } finally {
      this.catchingUp--;
    }
  }

  /** Too far behind to patch up: the browser reloads the page. */
  overflow(page) {
    stats.overflowReloads++;
    if (this.page === page) setImmediate(() => this.reload());
  }

  /** A page reload: the old page's socket closes, a new page opens its own. */
  async reload() {
    if (this.busy) return;
    this.busy = true;
    try {
      this.close();
      await this.open();
    } catch (error) {
      stats.reloadFailures++;
      noteError("reload", error);
      // A browser would show the error page; this tab tries again a little later.
      setTimeout(() => {
        this.busy = false;
        this.reload();
      }, 2000);
      return;
    }
    this.busy = false;
  }

  close() {
    if (this.page) {
      this.page.end = Date.now();
      finished.push(this.page);
      this.page = null;
    }
    if (this.socket) {
      this.socket.removeAllListeners();
      this.socket.close();
      this.socket = null;
    }
    this.joined = false;
  }
}

// ---------------------------------------------------------------- the load

const load = {
  timers: [],
  inflight: new Set(),
  rows: { sent: 0, acked: 0, failed: 0 },
  messages: { sent: 0, acked: 0, failed: 0, resent: 0, bySocket: 0, byHttp: 0 },
  ackedRows: [],
  ackedMessages: [], // [id, room]
  reloads: 0,
  running: false,
  startedAt: 0,
  seconds: 0,
};

function track(promise) {
  load.inflight.add(promise);
  promise.finally(() => load.inflight.delete(promise));
}

async function sendRow() {
  const client = pick(clients);
  load.rows.sent++;
  const a = rowTag++;
  sentAt.rows.set(a, performance.now());
  try {
    const b = Math.floor(Math.random() * 1000);
    const res = await client.session.post("/table/rows", { a, b }, { Accept: "application/json" });
    if (res.status !== 201) throw new Error(`POST /table/rows answered ${res.status}: ${res.body.slice(0, 120)}`);
    const id = JSON.parse(res.body).id;
    load.rows.acked++;
    load.ackedRows.push(id);
  } catch (error) {
    load.rows.failed++;
    noteError("row", error);
  }
}

/** A chat message from a connected tab: over its socket (resent once with the same client
 * id when no acknowledgement came, as chat.js does), or now and then over HTTP. */
async function sendMessage() {
  const ready = clients.filter((c) => c.room && c.connected);
  if (!ready.length) return;
  const client = pick(ready);
  const body = `soak ${randomUUID()}`;
  const clientId = randomUUID();
  load.messages.sent++;
  sentAt.messages.set(body, performance.now());
  try {
    let id = null;
    if (Math.random() < 0.2) {
      load.messages.byHttp++;
      const res = await client.session.post(
        `/chat/${client.room}/messages`,
        { body, client_id: clientId },
        { Accept: "application/json" },
      );
      if (res.status !== 201) throw new Error(`POST /chat/.../messages answered ${res.status}: ${res.body.slice(0, 120)}`);
      id = JSON.parse(res.body).id;
    } else {
      load.messages.bySocket++;
      let ack = null;
      for (let attempt = 0; attempt < 3 && !ack; attempt++) {
        // A resend goes over the tab's socket as it is now: the tab may have reloaded or
        // reconnected since, which loses the acknowledgement of what was sent before.
        if (attempt) {
          load.messages.resent++;
          await waitUntil(() => client.connected, 15000);
        }
        const socket = client.socket;
        const sentOn = socket?.id;
        try {
          if (!socket) throw new Error("the tab has no socket");
          ack = await socket.timeout(15000).emitWithAck("chat:send", { room: client.room, body, client_id: clientId });
        } catch (error) {
          log(`chat:send attempt ${attempt + 1} of tab ${client.index} on socket ${sentOn}: ${error.message}` +
              ` (tab connected now: ${client.connected}, socket now ${client.socket?.id})`);
          if (attempt === 2) throw error;
        }
      }
      if (!ack?.ok) throw new Error(`chat:send answered ${JSON.stringify(ack)}`);
      id = ack.id;
    }
    load.messages.acked++;
    load.ackedMessages.push([id, client.room]);
  } catch (error) {
    load.messages.failed++;
    noteError("message", error);
  }
}

function churn() {
  const ready = clients.filter((c) => c.connected && !c.catchingUp);
  if (!ready.length) return;
  load.reloads++;
  track(pick(ready).reload());
}

/** Call ``fn`` ``perSecond`` times a second, evenly spaced. */
function every(perSecond, fn) {
  if (!(perSecond > 0)) return;
  const interval = 1000 / perSecond;
  let due = performance.now();
  const tick = () => {
    if (!load.running) return;
    const now = performance.now();
    while (due <= now) {
      due += interval;
      const result = fn();
      if (result) track(result);
    }
    load.timers.push(setTimeout(tick, Math.max(1, due - performance.now())));
  };
  tick();
}

function settled() {
  return clients.every((c) => c.connected && !c.catchingUp) && load.inflight.size === 0;
}

async function waitUntil(predicate, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  while (!predicate()) {
    if (performance.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

/** Alive pages that still lack an acknowledged row or message they should show. */
function incomplete() {
  let missing = 0;
  for (const client of clients) {
    const page = client.page;
    if (!page) {
      missing++;
      continue;
    }
    for (const id of load.ackedRows) if (id > page.rowBase && !page.rows.has(id)) missing++;
    if (client.room) {
      for (const [id, room] of load.ackedMessages) {
        if (room === client.room && id > page.messageBase && !page.messages.has(id)) missing++;
      }
    }
  }
  return missing;
}

// ---------------------------------------------------------------- commands

const commands = {
  /** Accounts, rooms, then every tab opens its page and socket. */
  async setup({ clients: n, chatShare = 0.5, users: userCount = 50, rooms = 4, password = "soak-password-1" }) {
    const started = performance.now();
    const chatTabs = Math.round(n * chatShare);
    const userTotal = Math.min(userCount, chatTabs);
    const roomNames = Array.from({ length: rooms }, (_, r) => `soak-${r}`);
    users = [];
    const stamp = Date.now().toString(36);
    await pool(userTotal, 4, async (u) => {
      const session = new Session();
      await session.load("/register");
      const name = `soak_${stamp}_${u}`.slice(0, 32);
      const res = await session.post("/register", { username: name, password });
      if (res.status !== 303) throw new Error(`POST /register answered ${res.status}: ${res.body.slice(0, 200)}`);
      users[u] = { name, session, room: roomNames[u % rooms] };
    });
    if (users.length) {
      await users[0].session.load("/chat");
      for (const room of roomNames) {
        const res = await users[0].session.post("/chat/rooms", { name: room }, { Accept: "application/json" });
        if (res.status !== 201) throw new Error(`POST /chat/rooms answered ${res.status}: ${res.body.slice(0, 200)}`);
      }
      // Members post: each user joins the room they talk in (opening it joins nobody).
      await pool(users.length, 4, async (u) => {
        await users[u].session.load("/chat");
        const res = await users[u].session.post(`/chat/${users[u].room}/join`, {}, { Accept: "application/json" });
        if (res.status !== 200) throw new Error(`POST /chat/.../join answered ${res.status}: ${res.body.slice(0, 200)}`);
      });
    }
    clients = Array.from({ length: n }, (_, i) => new Client(i, i < chatTabs ? users[i % userTotal] : null));
    const errors = new Set();
    let failed = 0;
    await pool(n, 16, async (i) => {
      try {
        await clients[i].open();
      } catch (error) {
        failed++;
        stats.connectFailures++;
        errors.add(String(error.message || error));
      }
    });
    const ready = await waitUntil(() => clients.every((c) => c.connected && !c.catchingUp), 60000);
    return {
      clients: n,
      chat_tabs: chatTabs,
      users: userTotal,
      rooms: roomNames,
      failed,
      ready,
      errors: [...errors].slice(0, 5),
      seconds: (performance.now() - started) / 1000,
    };
  },

  /** Start (or resume) the steady load. */
  async start({ rowsPerS, messagesPerS, reloadsPerS }) {
    if (load.running) return { running: true };
    load.running = true;
    load.startedAt = performance.now();
    every(rowsPerS, sendRow);
    every(messagesPerS, sendMessage);
    every(reloadsPerS, churn);
    return { running: true };
  },

  /** Stop sending and reloading; wait until every tab is connected and nothing is in flight. */
  async pause({ timeoutMs = 120000 }) {
    if (load.running) load.seconds += (performance.now() - load.startedAt) / 1000;
    load.running = false;
    for (const timer of load.timers) clearTimeout(timer);
    load.timers = [];
    const started = performance.now();
    const quiet = await waitUntil(settled, timeoutMs);
    // At a quiet point the server should hold exactly one connection per tab: its socket.
    if (quiet) dropIdleConnections();
    return {
      quiet,
      waited_s: (performance.now() - started) / 1000,
      connected: clients.filter((c) => c.connected).length,
      inflight: load.inflight.size,
    };
  },

  /** Wait until every open page has every acknowledged row and message it should show. */
  async drain({ timeoutMs = 60000 }) {
    const started = performance.now();
    let complete = false;
    const deadline = performance.now() + timeoutMs;
    while (!(complete = incomplete() === 0) && performance.now() < deadline) await sleep(500);
    return { complete, missing_now: complete ? 0 : incomplete(), waited_s: (performance.now() - started) / 1000 };
  },

  /** Compare what every page received with the database (``rows``: [[id, created ms]],
   * ``messages``: [[id, room, created ms]]). A page that was reloaded is judged on what was
   * created at least ``graceMs`` before it closed; an open page on everything. */
  async verify({ rows, messages, graceMs = 10000 }) {
    const rowIds = new Set(rows.map(([id]) => id));
    const messageRoom = new Map(messages.map(([id, room]) => [id, room]));
    const figures = {
      pages: 0,
      pages_reloaded: finished.length,
      pages_never_connected: 0,
      rows: { expected: 0, received: 0, by_socket: 0, by_catchup_only: 0, lost: 0, duplicated: 0, unknown: 0 },
      messages: { expected: 0, received: 0, by_socket: 0, by_catchup_only: 0, lost: 0, duplicated: 0, unknown: 0 },
      lost_examples: [],
    };
    const judge = (kind, page, items, log, baseId, open) => {
      const f = figures[kind];
      const until = Math.min(page.end ?? Infinity, page.downSince ?? Infinity) - graceMs;
      for (const [id, created] of items) {
        if (id <= baseId) continue;
        if (!open && created > until) continue;
        f.expected++;
        if (log.has(id)) {
          f.received++;
          if (log.socket[id]) f.by_socket++;
          else f.by_catchup_only++;
        } else {
          f.lost++;
          if (figures.lost_examples.length < 10) {
            figures.lost_examples.push({ kind, id, client: page.client, open, base: baseId, page_start: page.start, page_end: page.end, created });
          }
        }
      }
      f.duplicated += log.duplicates();
    };
    const pages = [...finished, ...clients.map((c) => c.page).filter(Boolean)];
    const roomItems = new Map();
    for (const [id, room, created] of messages) {
      if (!roomItems.has(room)) roomItems.set(room, []);
      roomItems.get(room).push([id, created]);
    }
    const rowItems = rows.map(([id, created]) => [id, created]);
    for (const page of pages) {
      figures.pages++;
      if (!page.connects) {
        figures.pages_never_connected++;
        continue;
      }
      const open = page.end === null;
      judge("rows", page, rowItems, page.rows, page.rowBase, open);
      for (const id of page.rows.ids()) if (!rowIds.has(id)) figures.rows.unknown++;
      if (page.room) {
        judge("messages", page, roomItems.get(page.room) || [], page.messages, page.messageBase, open);
        for (const id of page.messages.ids()) if (messageRoom.get(id) !== page.room) figures.messages.unknown++;
      }
    }
    figures.messages.unknown += stats.wrongRoom;
    figures.rows.duplicated += stats.catchupRepeats; // counted once for both kinds
    return figures;
  },

  /** Counters so far (cheap; polled during the run). */
  async status() {
    return {
      running: load.running,
      connected: clients.filter((c) => c.connected).length,
      rows: load.rows,
      messages: load.messages,
      reloads: load.reloads,
      stats: { ...stats, errors: Object.fromEntries(stats.errors) },
      acked_rows: load.ackedRows.length,
      acked_messages: load.ackedMessages.length,
    };
  },

  async report() {
    return {
      ...(await commands.status()),
      load_seconds: load.seconds,
      latency_ms: { rows: latency.rows.summary(), messages: latency.messages.summary() },
    };
  },

  /** Every tab closes at once, as when a proxy restarts or a network blips. */
  async closeAll() {
    let closed = 0;
    for (const client of clients) {
      if (client.socket) closed++;
      client.close();
    }
    dropIdleConnections();
    return { closed };
  },

  async quit() {
    for (const client of clients) client.close();
    setImmediate(() => process.exit(0));
    return {};
  },
};

// ---------------------------------------------------------------- command loop

serveCommands(commands, "generator_cpu_percent");
