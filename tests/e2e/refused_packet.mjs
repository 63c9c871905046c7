// The official Node client sends one packet the server refuses, raw on its own websocket, and
// reports what it saw: how it was disconnected, whether it came back by itself, the answer to
// its next event and a row broadcast after that. Driven by test_packets_live.py:
//
//   node tests/e2e/refused_packet.mjs BASE_URL FRAME      (FRAME "binary event": an event
//                                                          with a Buffer, as an app would send)
// prints one JSON object on stdout.

import { io } from "socket.io-client";
import { httpClient } from "../../bench/http.mjs";

const [BASE, FRAME] = process.argv.slice(2);
const { Session } = httpClient(BASE);

function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const session = new Session();
await session.load("/");
const socket = io(BASE, {
  transports: ["websocket"],
  reconnectionDelay: 200,
  reconnectionDelayMax: 1000,
  extraHeaders: { Cookie: session.cookieHeader },
});
await within(10000, "the first connect", new Promise((resolve) => socket.once("connect", resolve)));

const disconnected = new Promise((resolve) => socket.once("disconnect", resolve));
const reconnected = new Promise((resolve) => socket.io.once("reconnect", () => resolve(true)));
if (FRAME === "binary event") {
  socket.emit("chat:typing", { room: "general", blob: Buffer.from([0, 1]) });
} else {
  // The engine's websocket itself: what goes out is exactly FRAME.
  socket.io.engine.transport.ws.send(FRAME);
}
const reason = await within(10000, "the disconnect", disconnected);
const back = await within(15000, "the reconnect", reconnected);
const ack = await within(10000, "an ack", socket.timeout(10000).emitWithAck("chat:join", { room: "general" }));

const sum = 1000 + Math.floor(Math.random() * 1000);
const row = new Promise((resolve) =>
  socket.on("table:row", (data) => {
    if (data.sum === sum) resolve(data);
  }),
);
const posted = await session.post("/table/rows", { a: String(sum - 1), b: "1" }, { "HX-Request": "true" });
if (posted.status !== 201) throw new Error(`POST /table/rows answered ${posted.status}`);
const received = await within(10000, "the row", row);
socket.close();
process.stdout.write(
  JSON.stringify({ disconnect: reason, reconnected: back, ack, row: { id: received.id, sum: received.sum }, expected_sum: sum }) + "\n",
);
process.exit(0);
