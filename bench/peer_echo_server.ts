/**
 * The peers' echo tool as a stdio MCP server on the official SDK (1.x, low-level `Server`), for
 * `bench/peers.ts`: mcp-proxy runs it as its child. `serve` mode serves the same tool over the
 * SDK's Streamable HTTP transport instead (stateful: one transport and server per session), on
 * `Deno.serve`, the in-process peer.
 *
 *   deno run -A bench/peer_echo_server.ts            stdio
 *   deno run -A bench/peer_echo_server.ts serve PORT Streamable HTTP on 127.0.0.1:PORT/mcp
 */
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js";
import {
  type CallToolRequest,
  CallToolRequestSchema,
  ListToolsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

/** The echo tool, with the platform echo agent's input schema. */
const ECHO_TOOL = {
  name: "echo",
  description: "Returns the message",
  inputSchema: {
    type: "object" as const,
    properties: { message: { type: "string", maxLength: 65536 } },
    required: ["message"],
    additionalProperties: false,
  },
};

function createServer(): Server {
  const server = new Server({ name: "peer-echo", version: "1.0.0" }, {
    capabilities: { tools: {} },
  });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: [ECHO_TOOL] }));
  server.setRequestHandler(CallToolRequestSchema, (request: CallToolRequest) => {
    const message = request.params.arguments?.message;
    if (request.params.name !== "echo" || typeof message !== "string") {
      return { content: [{ type: "text", text: "echo wants a string message" }], isError: true };
    }
    return { content: [{ type: "text", text: JSON.stringify({ message }) }] };
  });
  return server;
}

async function serveHttp(port: number): Promise<void> {
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  Deno.serve(
    { hostname: "127.0.0.1", port, onListen: () => console.error("listening") },
    async (request) => {
      const sid = request.headers.get("mcp-session-id");
      const known = sid === null ? undefined : sessions.get(sid);
      if (known) return await known.handleRequest(request);
      if (sid !== null) return new Response("Session not found", { status: 404 });
      const transport = new WebStandardStreamableHTTPServerTransport({
        sessionIdGenerator: () => crypto.randomUUID(),
        enableJsonResponse: true,
        onsessioninitialized: (id: string) => {
          sessions.set(id, transport);
        },
        onsessionclosed: (id: string) => {
          sessions.delete(id);
        },
      });
      await createServer().connect(transport);
      return await transport.handleRequest(request);
    },
  );
  await new Promise(() => {});
}

if (Deno.args[0] === "serve") await serveHttp(Number(Deno.args[1]));
else await createServer().connect(new StdioServerTransport());
