import assert from "node:assert/strict";
import { demuxLog, sinceSeconds } from "./docker_engine.ts";

function frame(stream: number, text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + payload.length);
  out[0] = stream;
  new DataView(out.buffer).setUint32(4, payload.length);
  out.set(payload, 8);
  return out;
}

Deno.test("demuxLog() joins the stdout and stderr frames of a log answer, in order", () => {
  const bytes = new Uint8Array([
    ...frame(1, "2026-01-01T00:00:01Z out\n"),
    ...frame(2, "2026-01-01T00:00:02Z err\n"),
    ...frame(1, "2026-01-01T00:00:03Z é\n"),
  ]);
  assert.equal(
    demuxLog(bytes),
    "2026-01-01T00:00:01Z out\n2026-01-01T00:00:02Z err\n2026-01-01T00:00:03Z é\n",
  );
  assert.equal(demuxLog(new TextEncoder().encode("a TTY's plain text\n")), "a TTY's plain text\n");
  assert.equal(demuxLog(new Uint8Array()), "");
});

Deno.test("sinceSeconds() reads --since as the docker CLI does", async (t) => {
  const now = Date.parse("2026-01-01T01:00:00Z");
  const cases: [string, number][] = [
    ["10m", now / 1000 - 600],
    ["1h30m", now / 1000 - 5400],
    ["90s", now / 1000 - 90],
    ["1767225600", 1767225600],
    ["2026-01-01T00:30:00Z", Date.parse("2026-01-01T00:30:00Z") / 1000],
  ];
  for (const [since, expected] of cases) {
    await t.step(since, () => assert.equal(sinceSeconds(since, now), expected));
  }
  await t.step("nonsense is a usage error", () => {
    assert.throws(() => sinceSeconds("yesterday-ish", now), /^OpsError: Invalid --since/);
  });
});
