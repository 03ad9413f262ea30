import { deepEqual, equal } from "node:assert/strict";
import { EventHub, type MachineEvent, READER_QUEUE } from "./events.ts";

const kinds = (es: MachineEvent[]) =>
  es.map((e) =>
    e.type === "state" ? `${e.from}→${e.to}` : `${e.type}:${"count" in e ? e.count : ""}`
  );

Deno.test("events: a reader gets what happens from read() on, numbered, and ends after the hub", async () => {
  const hub = new EventHub(() => 5);
  hub.emit({ type: "warning", message: "before" });
  const r = hub.read(); // registered now, before its first next()
  hub.emit({ type: "state", from: "created", to: "running" });
  hub.emit({ type: "warning", message: "w" });
  hub.end();
  hub.emit({ type: "warning", message: "after the end" });
  const got: MachineEvent[] = [];
  for await (const e of r) got.push(e);
  deepEqual(kinds(got), ["created→running", "warning:"]);
  deepEqual(got.map((e) => e.seq), [2, 3]);
  equal(got[0].uptime_ms, 5);
  equal((await hub.read().next()).done, true, "a reader of an ended hub ends at once");
});

Deno.test("events: a reader that falls behind loses the oldest and is told how many", async () => {
  const hub = new EventHub(() => 0);
  const slow = hub.read();
  const fast = hub.read();
  const fastGot: MachineEvent[] = [];
  const reading = (async () => {
    for await (const e of fast) fastGot.push(e);
  })();
  for (let i = 0; i < READER_QUEUE + 10; i++) {
    hub.emit({ type: "warning", message: String(i) });
    await Promise.resolve(); // the fast reader keeps up
  }
  hub.end();
  await reading;
  equal(fastGot.length, READER_QUEUE + 10, "the fast reader got everything");
  const first = (await slow.next()).value as MachineEvent;
  deepEqual([first.type, "count" in first && first.count, first.seq], ["dropped", 10, 11]);
  const next = (await slow.next()).value as MachineEvent;
  equal(next.seq, 11, "then the oldest it still has");
});

Deno.test("events: return() releases a reader, also one waiting in next()", async () => {
  const hub = new EventHub(() => 0);
  const r = hub.read();
  equal(hub.readers, 1);
  const waiting = r.next();
  await r.return();
  equal(hub.readers, 0);
  equal((await waiting).done, true);
  hub.emit({ type: "warning", message: "nobody listens" });
  equal((await r.next()).done, true);
  const unread = hub.read();
  await unread.return(); // never read: still released
  equal(hub.readers, 0);
});
