/**
 * The control API's hold on connections (runtime/api/http.ts), with a running ticker
 * guest served in this process and short limits: a connection without a request in
 * flight is closed after the idle timeout (one that sends nothing, one that trickles half
 * its headers, one kept alive after an answer), while a request in flight (an event
 * stream with nothing to say) holds its connection however long; past the limit of
 * connections open at once, one more is answered 503 `too_many_connections` (the answer
 * held to the OpenAPI document) and closed (one that sends nothing, after a second), and a
 * place freed is taken again. The server's
 * side of every closed connection is released (the process's fds).
 */
import { equal, match, ok } from "node:assert/strict";
import { buildGuests } from "../../examples/guests/build.ts";
import { compileFile } from "../../mod.ts";
import { createMachine } from "../../runtime/mod.ts";
import { serveApi } from "../../runtime/api/mod.ts";
import { skipReason } from "../skip.ts";
import { checkAnswer } from "./openapi.ts";
import { sleep, TICKER, until } from "./helpers.ts";

const kvm = skipReason("control API connection tests", { kvm: true }) === null;
if (!kvm) console.log("skip connection tests: /dev/kvm is absent");

const enc = new TextEncoder();
const dec = new TextDecoder();
const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;

/** Reads until the server closes the connection (or `ms` pass: then null). */
async function readToEnd(c: Deno.UnixConn, ms: number): Promise<string | null> {
  const buf = new Uint8Array(8192);
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((r) => timer = setTimeout(() => r("late"), ms));
  try {
    for (;;) {
      const n = await Promise.race([c.read(buf).catch(() => null), late]);
      if (n === "late") return null;
      if (n === null) return text;
      text += dec.decode(buf.subarray(0, n));
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Everything a connection receives, as it comes; `ended` once the server closes it. */
function collect(c: Deno.UnixConn) {
  const got = { text: "", closed: false, ended: Promise.resolve() };
  got.ended = (async () => {
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await c.read(buf).catch(() => null);
      if (n === null) break;
      got.text += dec.decode(buf.subarray(0, n));
    }
    got.closed = true;
  })();
  return got;
}

/** An answer read off a raw connection, as status, headers and body. */
function parse(text: string) {
  const [head, ...rest] = text.split("\r\n\r\n");
  return {
    status: Number(head.split(" ")[1]),
    contentType: /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? null,
    connection: /\r\nconnection: ([^\r\n]+)/i.exec(head)?.[1] ?? null,
    body: rest.join("\r\n\r\n"),
  };
}

const IDLE_MS = 400;

Deno.test({
  name:
    "connections: idle ones close after the timeout, a request in flight holds; at most N at once (503)",
  ignore: !kvm,
  async fn() {
    await buildGuests(["ticker"]);
    const dir = await Deno.makeTempDir({ prefix: "vmdesc-conn-" });
    const { plans } = await compileFile(TICKER);
    const m = await createMachine(plans.get("ticker")!, { serial: () => {}, warn: () => {} });
    const idle = await serveApi(m, { path: `${dir}/idle.sock`, idleTimeoutMs: IDLE_MS });
    const few = await serveApi(m, {
      path: `${dir}/few.sock`,
      maxConnections: 3,
      idleTimeoutMs: 30_000,
    });
    const running = m.run({ timeout: 120 });
    try {
      const connect = (path: string) => Deno.connect({ transport: "unix", path });
      const base = fds();

      // Silent, half-headed (trickling a byte every 100 ms) and kept alive after an
      // answer: each is closed about IDLE_MS after it last had a request in flight.
      const t0 = performance.now();
      const silent = await connect(idle.path);
      const half = await connect(idle.path);
      await half.write(enc.encode("GET /v1/machine HTTP/1.1\r\nHost: x\r\n"));
      let trickling = true;
      const trickle = (async () => {
        while (trickling) {
          await sleep(100);
          if (!trickling) break;
          await half.write(enc.encode("X")).catch(() => trickling = false);
        }
      })();
      const kept = await connect(idle.path);
      await kept.write(enc.encode("GET /v1/machine HTTP/1.1\r\nHost: x\r\n\r\n"));
      const [s, h, k] = await Promise.all([
        readToEnd(silent, 10 * IDLE_MS),
        readToEnd(half, 10 * IDLE_MS),
        readToEnd(kept, 10 * IDLE_MS),
      ]);
      const took = performance.now() - t0;
      trickling = false;
      await trickle;
      equal(s, "", "the silent connection was closed without an answer");
      equal(h, "", "the trickling one too: bytes are not requests");
      ok(k !== null, "the kept-alive connection was closed");
      equal(parse(k!).status, 200, "after its answer");
      ok(took >= IDLE_MS - 50, `closed after the idle timeout (${took.toFixed(0)} ms)`);
      for (const c of [silent, half, kept]) c.close();

      // An event stream with nothing to say for 3 idle timeouts keeps its connection.
      const stream = await connect(idle.path);
      await stream.write(enc.encode("GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n"));
      const streamed = collect(stream);
      await sleep(3 * IDLE_MS);
      ok(!streamed.closed, "the stream is still open after 3 idle timeouts");
      match(streamed.text, /"type":"open"/);
      ok(m.state === "running");

      // The limit: three open, a fourth answered 503 and closed.
      const held = [await connect(few.path), await connect(few.path), await connect(few.path)];
      await sleep(50);
      const fourth = await connect(few.path);
      await fourth.write(enc.encode("GET /v1/machine HTTP/1.1\r\nHost: x\r\n\r\n"));
      const refused = await readToEnd(fourth, 5000);
      ok(refused !== null, "the fourth connection was closed");
      const r = parse(refused!);
      equal(r.status, 503, refused!);
      equal(r.connection, "close");
      match(r.body, /"code":"too_many_connections"/);
      checkAnswer({
        method: "GET",
        path: "/v1/machine",
        status: r.status,
        contentType: r.contentType,
        text: r.body,
      });
      fourth.close();
      // One over the limit that sends nothing is closed after a second, not the idle time.
      const silentFourth = await connect(few.path);
      const t1 = performance.now();
      equal(await readToEnd(silentFourth, 10_000), "", "closed without an answer");
      const waited = performance.now() - t1;
      ok(waited < 5000, `closed after ${waited.toFixed(0)} ms, not the 30 s idle time`);
      silentFourth.close();
      // One place freed: a new connection is served.
      held.pop()!.close();
      let answered = false;
      for (let i = 0; i < 50 && !answered; i++) {
        const c = await connect(few.path);
        await c.write(
          enc.encode("GET /v1/machine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        const text = await readToEnd(c, 5000);
        c.close();
        answered = text !== null && parse(text).status === 200;
        if (!answered) await sleep(20);
      }
      ok(answered, "a freed place is taken again");
      for (const c of held) c.close();

      // The stream ends with the machine; the server's sides of every connection go.
      m.stop();
      await streamed.ended;
      match(streamed.text, /"type":"exit"/, "the stream saw the exit");
      stream.close();
      await until(() => fds() <= base, 5000, "the server's connections released");
    } finally {
      if (m.state === "running" || m.state === "paused") m.stop();
      await running;
      await idle.close();
      await few.close();
      m.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
