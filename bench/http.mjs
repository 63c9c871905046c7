// What the load generators (bench/loadgen.mjs, bench/soak.mjs) share: HTTP with a cookie jar
// like a browser's, a bounded pool of tasks, and the loop that reads one JSON command per line
// on stdin and writes one JSON reply per line on stdout.

import http from "node:http";
import { performance } from "node:perf_hooks";
import readline from "node:readline";

export const CSRF_META = /<meta name="csrf-token" content="([^"]+)"/;
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- HTTP with a cookie jar

/** ``request`` and ``Session`` for the app at ``BASE``, over one keep-alive agent. */
export function httpClient(BASE) {
  const base = new URL(BASE);
  const newAgent = () => new http.Agent({ keepAlive: true, maxSockets: 64 });
  let agent = newAgent();

  // A keep-alive connection the server closed as idle (CONNECTION_IDLE_TIMEOUT) just as a
  // request went out on it fails with ECONNRESET before the server read anything: sent again
  // on a new connection, as browsers do (Node's http docs recommend the same).
  async function request(method, path, options = {}) {
    try {
      return await requestOnce(method, path, options);
    } catch (error) {
      if (!error.reusedSocket || error.code !== "ECONNRESET") throw error;
      return requestOnce(method, path, options);
    }
  }

  function requestOnce(method, path, { headers = {}, body, agentOverride } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: base.hostname, port: base.port, method, path, headers, agent: agentOverride || agent },
        (res) => {
          const chunks = [];
          res.on("data", (chunk) => chunks.push(chunk));
          res.on("end", () =>
            resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }),
          );
          res.on("error", reject);
        },
      );
      req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.on("error", (error) => {
        error.reusedSocket = req.reusedSocket;
        reject(error);
      });
      if (body) req.write(body);
      req.end();
    });
  }

  /** Close the idle keep-alive connections (nothing is in flight when this is called). */
  function dropIdleConnections() {
    agent.destroy();
    agent = newAgent();
  }

  class Session {
    constructor() {
      this.cookies = new Map();
      this.token = null;
    }

    get cookieHeader() {
      return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
    }

    remember(res) {
      for (const line of res.headers["set-cookie"] || []) {
        const [pair] = line.split(";");
        const at = pair.indexOf("=");
        this.cookies.set(pair.slice(0, at).trim(), pair.slice(at + 1).trim());
      }
    }

    async get(path, headers = {}) {
      const res = await request("GET", path, { headers: { Cookie: this.cookieHeader, ...headers } });
      this.remember(res);
      return res;
    }

    /** Load a page like a browser: the session cookie and the CSRF token come from it. */
    async load(path = "/") {
      const res = await this.get(path, { Accept: "text/html" });
      if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}`);
      const match = CSRF_META.exec(res.body);
      if (!match) throw new Error(`GET ${path} has no csrf-token meta tag`);
      this.token = match[1];
      return res;
    }

    /** The headers of a form POST as a browser's page sends it. */
    formHeaders(body, headers = {}) {
      return {
        Cookie: this.cookieHeader,
        "X-CSRFToken": this.token,
        "Content-Type": "application/x-www-form-urlencoded",
        "Content-Length": Buffer.byteLength(body),
        Origin: BASE,
        ...headers,
      };
    }

    async post(path, fields, headers = {}) {
      const body = new URLSearchParams(fields).toString();
      const res = await request("POST", path, { body, headers: this.formHeaders(body, headers) });
      this.remember(res);
      return res;
    }
  }

  return { request, dropIdleConnections, Session };
}

// ---------------------------------------------------------------- tasks and commands

/** Run ``task(i)`` for i in 0..n-1 with at most ``limit`` running at once. */
export async function pool(n, limit, task) {
  let next = 0;
  const results = new Array(n);
  async function runner() {
    while (next < n) {
      const i = next++;
      results[i] = await task(i);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, runner));
  return results;
}

/**
 * Answer the commands on stdin one at a time: ``{"cmd": name, ...args}`` runs
 * ``commands[name](command)``; the reply is ``{"ok": true, ...result}`` or ``{"ok": false,
 * "error"}``, with the command's wall time and the generator's own CPU share under ``cpuField``
 * (near 100% means the generator, not the server, was the bottleneck).
 */
export function serveCommands(commands, cpuField) {
  const lines = readline.createInterface({ input: process.stdin });
  let queue = Promise.resolve();
  lines.on("line", (line) => {
    queue = queue.then(async () => {
      const command = JSON.parse(line);
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      let reply;
      try {
        reply = { ok: true, ...(await commands[command.cmd](command)) };
      } catch (error) {
        reply = { ok: false, error: String(error.stack || error) };
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      reply.wall_seconds = Math.round(wall * 1000) / 1000;
      reply[cpuField] = wall > 0 ? Math.round(((cpu.user + cpu.system) / 1e6 / wall) * 1000) / 10 : 0;
      process.stdout.write(JSON.stringify(reply) + "\n");
    });
  });
  lines.on("close", () => queue.then(() => process.exit(0)));
  process.stdout.write(JSON.stringify({ ok: true, ready: true }) + "\n");
}
