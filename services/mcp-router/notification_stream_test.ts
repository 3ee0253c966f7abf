import assert from "node:assert/strict";
import { NotificationStream } from "./notification_stream.ts";

Deno.test("NotificationStream frames notifications as SSE events and ends once", async () => {
  let closed = 0;
  const stream = new NotificationStream({ heartbeatMs: 0, onClose: () => closed++ });
  assert.ok(stream.send("notifications/tools/list_changed"));
  assert.ok(stream.send("notifications/resources/updated", { uri: "test://a" }));
  stream.close();
  stream.close();
  assert.equal(stream.send("notifications/tools/list_changed"), false);
  assert.equal(
    await new Response(stream.body).text(),
    'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}\n\n' +
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/resources/updated",' +
      '"params":{"uri":"test://a"}}\n\n',
  );
  assert.equal(closed, 1);
});

Deno.test("NotificationStream sends heartbeats and stops them when the client cancels", async () => {
  let closed = 0;
  const stream = new NotificationStream({ heartbeatMs: 10, onClose: () => closed++ });
  const reader = stream.body.getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value), ": keepalive\n\n");
  await reader.cancel();
  assert.equal(closed, 1);
  assert.equal(stream.send("notifications/tools/list_changed"), false);
});
