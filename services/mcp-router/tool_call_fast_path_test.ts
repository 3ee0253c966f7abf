import assert from "node:assert/strict";
import {
  encodeProgress,
  encodeResult,
  encodeUnknownTool,
  recognizeToolCall,
  sseEvent,
} from "./tool_call_fast_path.ts";

const OPTIONS = { legacyVersions: ["2025-11-25", "2025-06-18", "2025-03-26"] };
const ENVELOPE = {
  "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientInfo": { name: "c", version: "1" },
  "io.modelcontextprotocol/clientCapabilities": {},
};
const BASE_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};
const HEADERS_2025 = {
  ...BASE_HEADERS,
  "mcp-session-id": "tok",
  "mcp-protocol-version": "2025-11-25",
};
const HEADERS_2026 = {
  ...BASE_HEADERS,
  "mcp-protocol-version": "2026-07-28",
  "mcp-method": "tools/call",
  "mcp-name": "echo",
};

function call2025(params: Record<string, unknown>, id: unknown = 1) {
  return { jsonrpc: "2.0", id, method: "tools/call", params };
}

function call2026(params: Record<string, unknown>, meta: Record<string, unknown> = {}) {
  return call2025({ ...params, _meta: { ...ENVELOPE, ...meta } });
}

function recognize(headers: Record<string, string>, body: unknown) {
  return recognizeToolCall(new Headers(headers), body, OPTIONS);
}

Deno.test("recognizeToolCall() takes the tool calls the SDK clients send, in both eras", () => {
  const legacy = recognize(HEADERS_2025, call2025({ name: "echo", arguments: { message: "a" } }));
  assert.deepEqual(legacy, {
    era: "2025",
    sessionId: "tok",
    id: 1,
    name: "echo",
    arguments: { message: "a" },
    progressToken: undefined,
  });
  const modern = recognize(
    HEADERS_2026,
    call2026({ name: "echo", arguments: { message: "a" } }, { progressToken: "p" }),
  );
  assert.equal(modern?.era, "2026");
  assert.equal(modern?.progressToken, "p");
  assert.equal(modern?.sessionId, undefined);
  const noVersionHeader = { ...HEADERS_2025 } as Record<string, string>;
  delete noVersionHeader["mcp-protocol-version"];
  assert.equal(recognize(noVersionHeader, call2025({ name: "echo" }, "x"))?.id, "x");
});

Deno.test("recognizeToolCall() leaves everything else to the SDK", async (t) => {
  const cases: [string, Record<string, string>, unknown][] = [
    ["not JSON", HEADERS_2025, undefined],
    ["a batch", HEADERS_2025, [call2025({ name: "echo" })]],
    ["another method", HEADERS_2025, { jsonrpc: "2.0", id: 1, method: "tools/list" }],
    ["no jsonrpc 2.0", HEADERS_2025, { id: 1, method: "tools/call", params: { name: "e" } }],
    ["a null id", HEADERS_2025, call2025({ name: "echo" }, null)],
    ["a fractional id", HEADERS_2025, call2025({ name: "echo" }, 1.5)],
    ["no id (a notification)", HEADERS_2025, { jsonrpc: "2.0", method: "tools/call" }],
    ["a name that is no string", HEADERS_2025, call2025({ name: 5 })],
    ["arguments that are an array", HEADERS_2025, call2025({ name: "e", arguments: [1] })],
    ["a _meta that is no object", HEADERS_2025, call2025({ name: "e", _meta: "x" })],
    [
      "an object progress token",
      HEADERS_2025,
      call2025({ name: "e", _meta: { progressToken: {} } }),
    ],
    ["no session", BASE_HEADERS, call2025({ name: "echo" })],
    [
      "an unsupported protocol version header",
      { ...HEADERS_2025, "mcp-protocol-version": "1999-01-01" },
      call2025({ name: "echo" }),
    ],
    [
      "an Accept without event streams",
      { ...HEADERS_2025, accept: "application/json" },
      call2025({ name: "echo" }),
    ],
    [
      "a body that is not declared JSON",
      { ...HEADERS_2025, "content-type": "text/plain" },
      call2025({ name: "echo" }),
    ],
    [
      "a 2025 call with an envelope key",
      HEADERS_2025,
      call2025({ name: "e", _meta: { "io.modelcontextprotocol/clientCapabilities": {} } }),
    ],
    [
      "a 2026 call with a session header",
      { ...HEADERS_2026, "mcp-session-id": "t" },
      call2026({
        name: "echo",
      }),
    ],
    [
      "a 2026 call with another version header",
      { ...HEADERS_2026, "mcp-protocol-version": "2025-11-25" },
      call2026({ name: "echo" }),
    ],
    [
      "a 2026 call naming another tool in Mcp-Name",
      { ...HEADERS_2026, "mcp-name": "other" },
      call2026(
        { name: "echo" },
      ),
    ],
    ["a 2026 call with another method in Mcp-Method", {
      ...HEADERS_2026,
      "mcp-method": "tools/list",
    }, call2026({ name: "echo" })],
    [
      "a 2026 envelope without capabilities",
      HEADERS_2026,
      call2026({ name: "echo" }, {
        "io.modelcontextprotocol/clientCapabilities": undefined,
      }),
    ],
    [
      "a 2026 envelope of another revision",
      HEADERS_2026,
      call2026({ name: "echo" }, {
        "io.modelcontextprotocol/protocolVersion": "2027-01-01",
      }),
    ],
    [
      "a 2026 envelope with a bad clientInfo",
      HEADERS_2026,
      call2026({ name: "echo" }, {
        "io.modelcontextprotocol/clientInfo": { name: 1 },
      }),
    ],
    [
      "a 2026 envelope with a key checked by the SDK",
      HEADERS_2026,
      call2026({ name: "echo" }, {
        "io.modelcontextprotocol/logLevel": "debug",
      }),
    ],
  ];
  for (const [name, headers, body] of cases) {
    await t.step(name, () => assert.equal(recognize(headers, body), undefined));
  }
});

Deno.test("encodeResult() answers as the SDK does in each era", () => {
  const result = { content: [{ type: "text", text: "x" }] };
  const serverInfo = { name: "mcp-router", version: "1.0.0" };
  const legacy = recognize(HEADERS_2025, call2025({ name: "echo" }, 7))!;
  assert.deepEqual(JSON.parse(encodeResult(legacy, result, serverInfo)), {
    jsonrpc: "2.0",
    id: 7,
    result,
  });
  const modern = recognize(HEADERS_2026, call2026({ name: "echo" }))!;
  assert.deepEqual(JSON.parse(encodeResult(modern, result, serverInfo)), {
    jsonrpc: "2.0",
    id: 1,
    result: {
      ...result,
      resultType: "complete",
      _meta: { "io.modelcontextprotocol/serverInfo": serverInfo },
    },
  });
  assert.deepEqual(JSON.parse(encodeUnknownTool(legacy)), {
    jsonrpc: "2.0",
    id: 7,
    error: { code: -32602, message: 'Unknown tool "echo"' },
  });
});

Deno.test("encodeResult() projects a non-object structuredContent as the SDK codecs do", () => {
  const serverInfo = { name: "r", version: "1" };
  const result = { content: [], structuredContent: [1, 2] };
  const legacy = recognize(HEADERS_2025, call2025({ name: "echo" }, 1))!;
  assert.deepEqual(JSON.parse(encodeResult(legacy, result, serverInfo)).result, {
    content: [{ type: "text", text: "[1,2]" }],
    structuredContent: { result: [1, 2] },
  });
  const modern = recognize(HEADERS_2026, call2026({ name: "echo" }))!;
  const wire = JSON.parse(encodeResult(modern, result, serverInfo)).result;
  assert.deepEqual(wire.structuredContent, [1, 2]);
  assert.deepEqual(wire.content, [{ type: "text", text: "[1,2]" }]);
  // A 2025 client sees an object under a non-object schema root wrapped too.
  const object = { content: [{ type: "text", text: "x" }], structuredContent: { a: 1 } };
  assert.deepEqual(
    JSON.parse(encodeResult(legacy, object, serverInfo, { type: "array" })).result
      .structuredContent,
    { result: { a: 1 } },
  );
});

Deno.test("encodeProgress() names the call's progress token, framed as one event", () => {
  const call = recognize(HEADERS_2025, call2025({ name: "e", _meta: { progressToken: 3 } }))!;
  const text = sseEvent(encodeProgress(call, { progress: 1, total: 2 }));
  assert.equal(
    text,
    'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress",' +
      '"params":{"progressToken":3,"progress":1,"total":2}}\n\n',
  );
});
