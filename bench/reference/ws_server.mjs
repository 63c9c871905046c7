// The benchmark's raw WebSocket reference: Node and `ws`, with just enough of the Engine.IO v4
// and Socket.IO v5 protocols (what socket.io-client 4 speaks) for the load generator's
// clients, unchanged, to connect and receive events. It shows how far below the Python stack
// the same pushes can go on this machine, in the same run.
//
//   PORT=8000 PAYLOAD_BYTES=900 node bench/reference/ws_server.mjs    (bench/run.py starts it)
//
// What the generator needs, as the app serves it: `GET /` sets a session cookie and puts a
// CSRF token in the page; `POST /table/rows` (a, b and the token) sends one `table:row` event to
// every socket, its `html` padded so that the JSON payload is PAYLOAD_BYTES long (the size of
// the app's, measured by bench/run.py); `GET /table/rows` answers the newest rows; `GET
// /healthz` answers when it is up. Over the websocket (path /socket.io/, websocket transport
// only): the Engine.IO open packet, a ping every 25 s (a client that answers no pong within the
// ping timeout is dropped), the Socket.IO CONNECT acknowledgement for the default namespace,
// and EVENT packets encoded once per broadcast. No permessage-deflate: gevent-websocket, which
// the app runs on, does not negotiate it either.

import crypto from "node:crypto";
import http from "node:http";
import { WebSocketServer } from "ws";

const PORT = Number(process.env.PORT || 8000);
const PAYLOAD_BYTES = Number(process.env.PAYLOAD_BYTES || 0);
const PING_INTERVAL = 25000;
const PING_TIMEOUT = 20000;
const MAX_PAYLOAD = 1000000;
const PAGE_SIZE = 50;
// A session is a random id in a cookie; its CSRF token is an HMAC of it (nothing to store).
const SECRET = crypto.randomBytes(32);

const tokenOf = (sid) => crypto.createHmac("sha256", SECRET).update(sid).digest("base64url");
const cookieSid = (header = "") => /(?:^|;\s*)session=([\w-]+)/.exec(header)?.[1];

let nextId = 1;
const newest = []; // the newest rows, newest first
const sockets = new Set(); // websockets whose Socket.IO CONNECT was acknowledged

// ---------------------------------------------------------------- HTTP

function answer(res, status, body, headers = {}) {
  res.writeHead(status, {
    "Content-Length": Buffer.byteLength(body),
    "X-Worker": String(process.pid),
    ...headers,
  });
  res.end(body);
}

const rowHtml = (row) =>
  `<tr id="row-${row.id}" data-id="${row.id}"><td>${row.a}</td><td>${row.b}</td><td>${row.sum}</td>` +
  `<td><time datetime="${row.created_at}">${row.created_at}</time></td></tr>`;

function padded(payload) {
  const short = PAYLOAD_BYTES - Buffer.byteLength(JSON.stringify(payload)) - 7;
  if (short > 0) payload.html += `<!--${".".repeat(short)}-->`;
  return payload;
}

function page(req, res) {
  let sid = cookieSid(req.headers.cookie);
  const headers = { "Content-Type": "text/html; charset=utf-8" };
  if (!sid) {
    sid = crypto.randomBytes(18).toString("base64url");
    headers["Set-Cookie"] = `session=${sid}; HttpOnly; Path=/; SameSite=Lax`;
  }
  const body =
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="csrf-token" content="${tokenOf(sid)}"><title>ws reference</title></head>` +
    `<body><table><tbody id="rows">${newest.map(rowHtml).join("")}</tbody></table></body></html>`;
  answer(res, 200, body, headers);
}

function addRow(req, res, body) {
  const sid = cookieSid(req.headers.cookie);
  const sent = Buffer.from(req.headers["x-csrftoken"] || "");
  const expected = Buffer.from(sid ? tokenOf(sid) : "");
  if (!sid || sent.length !== expected.length || !crypto.timingSafeEqual(sent, expected)) {
    return answer(res, 400, "The CSRF token is missing or wrong.");
  }
  const form = new URLSearchParams(body);
  const a = Number(form.get("a"));
  const b = Number(form.get("b"));
  if (!Number.isInteger(a) || !Number.isInteger(b)) return answer(res, 422, "a and b must be whole numbers.");
  const row = { id: nextId++, a, b, sum: a + b, created_at: new Date().toISOString().slice(0, 19) + "+00:00", user: null };
  newest.unshift(row);
  newest.length = Math.min(newest.length, PAGE_SIZE);
  const html = `<tbody hx-swap-oob="afterbegin:#rows">${rowHtml(row)}</tbody>`;
  broadcast("table:row", padded({ ...row, html }));
  answer(res, 201, JSON.stringify({ ok: true, ...row }), { "Content-Type": "application/json" });
}

const server = http.createServer((req, res) => {
  const path = req.url.split("?")[0];
  if (req.method === "GET" && path === "/") return page(req, res);
  if (req.method === "GET" && path === "/healthz") return answer(res, 200, '{"ok":true}', { "Content-Type": "application/json" });
  if (req.method === "GET" && path === "/table/rows") return answer(res, 200, newest.map(rowHtml).join(""), { "Content-Type": "text/html; charset=utf-8" });
  if (req.method === "POST" && path === "/table/rows") {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => addRow(req, res, Buffer.concat(chunks).toString()));
    return;
  }
  answer(res, 404, "Not found");
});

// ---------------------------------------------------------------- Engine.IO and Socket.IO

const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: MAX_PAYLOAD });

/** One EVENT packet for every socket: encoded once, like python-socketio's broadcasts. */
function broadcast(event, data) {
  const frame = Buffer.from("42" + JSON.stringify([event, data]));
  for (const ws of sockets) ws.send(frame, { binary: false });
}

server.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  const sameOrigin = !req.headers.origin || req.headers.origin === `http://${req.headers.host}`;
  if (url.pathname !== "/socket.io/" || url.searchParams.get("transport") !== "websocket" || !sameOrigin) {
    socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.lastSeen = Date.now();
    const open = { sid: crypto.randomBytes(15).toString("base64url"), upgrades: [], pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT, maxPayload: MAX_PAYLOAD };
    ws.send("0" + JSON.stringify(open));
    ws.on("message", (message, isBinary) => {
      ws.lastSeen = Date.now();
      const text = isBinary ? "" : message.toString();
      if (text === "3") return; // pong
      if (text === "1") return ws.close(); // Engine.IO close
      if (text.startsWith("40")) {
        // Socket.IO CONNECT to the default namespace (an auth object may follow): acknowledged.
        sockets.add(ws);
        ws.send("40" + JSON.stringify({ sid: crypto.randomBytes(15).toString("base64url") }));
      } else if (text.startsWith("41")) {
        sockets.delete(ws);
      }
      // Events from clients (42...) are not part of what the benchmark sends to a reference.
    });
    ws.on("close", () => sockets.delete(ws));
  });
});

// One timer pings every socket, and drops those that answered nothing since the last round.
setInterval(() => {
  const stale = Date.now() - PING_INTERVAL - PING_TIMEOUT;
  for (const ws of wss.clients) {
    if (ws.lastSeen < stale) ws.terminate();
    else ws.send("2");
  }
}, PING_INTERVAL).unref();

for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => process.exit(0));
server.listen(PORT, "127.0.0.1", () => console.error(`[ws reference] listening on http://127.0.0.1:${PORT}`));
