import { startConsulDev } from "/work/wt/conformance/tests/helpers/consul_dev.ts";
import { startService } from "/work/wt/conformance/tests/helpers/service_process.ts";
import { sessionKeyText, startRouter } from "/work/wt/conformance/tests/router_harness.ts";
const consul = await startConsulDev();
const svc = startService("conformance-server", { consulUrl: consul.url, id: "conf-1" });
const router = await startRouter(consul.url, "router-1", {
  ROUTER_SESSION_KEY: sessionKeyText(),
  LOG_LEVEL: "debug",
});
// wait for tools
for (let i = 0; i < 100; i++) {
  const r = await fetch(`http://127.0.0.1:${router.port}/metrics`);
  await r.text();
  await new Promise((r) => setTimeout(r, 100));
  if (i > 20) break;
}
console.log("URL", router.url.href);
const scenario = Deno.args[0];
const args = [
  "run",
  "-A",
  "npm:@modelcontextprotocol/conformance@0.1.16",
  "server",
  "--url",
  router.url.href,
  "-o",
  "/tmp/conf/out",
  "--suite",
  Deno.env.get("SUITE") ?? "active",
];
if (scenario) args.push("--scenario", scenario);
const out = await new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "piped" })
  .output();
const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
await Deno.writeTextFile("/tmp/conf/suite.log", text);
await Deno.writeTextFile("/tmp/conf/router.log", router.output());
await Deno.writeTextFile("/tmp/conf/svc.log", svc.output());
console.log(text.slice(-3000));
await router.stop();
await svc.stop();
await consul.stop();
