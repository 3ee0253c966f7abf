import assert from "node:assert/strict";
import { parseIp, parseTrustedProxies, TrustedProxies } from "./trusted_proxies.ts";

Deno.test("parseTrustedProxies() reads addresses, CIDR blocks and host names", async (t) => {
  const list = parseTrustedProxies(" 10.0.0.0/8, 127.0.0.1 ,fd00::/8,tasks.lb, ");
  assert.equal(list.addresses.length, 3);
  assert.deepEqual(list.names, ["tasks.lb"]);
  for (const bad of ["10.0.0.0/33", "1.2.3.4/8/1", "fd00::/129", "exa mple", "300.1.1.1", "a/8"]) {
    await t.step(`"${bad}" is refused`, () => {
      assert.throws(
        () => parseTrustedProxies(bad),
        new RegExp(`"${bad.replace(/[.*/]/g, "\\$&")}"`),
      );
    });
  }
});

Deno.test("parseIp() reads IPv4, IPv6 and IPv4-mapped IPv6 as IPv4", () => {
  assert.deepEqual([...parseIp("192.168.1.2")!], [192, 168, 1, 2]);
  assert.deepEqual([...parseIp("::ffff:192.168.1.2")!], [192, 168, 1, 2]);
  assert.equal(parseIp("::1")!.length, 16);
  assert.equal(parseIp("[2001:db8::1]")![15], 1);
  for (const bad of ["1.2.3", "1::2::3", "1.2.3.256", "host", "", "1:2:3:4:5:6:7:8:9"]) {
    assert.equal(parseIp(bad), undefined, bad);
  }
});

Deno.test("TrustedProxies believes only the last X-Forwarded-For entry, and only from a trusted peer", () => {
  const proxies = new TrustedProxies(parseTrustedProxies("10.0.0.0/8,tasks.lb"));
  assert.equal(proxies.clientAddress("10.1.2.3", "6.6.6.6, 203.0.113.9"), "203.0.113.9");
  assert.equal(proxies.clientAddress("192.0.2.1", "203.0.113.9"), "192.0.2.1", "untrusted peer");
  assert.equal(proxies.clientAddress("10.1.2.3", null), "10.1.2.3");
  assert.equal(proxies.clientAddress("10.1.2.3", "not-an-ip"), "10.1.2.3");
  assert.equal(proxies.clientAddress("172.18.0.5", "203.0.113.9"), "172.18.0.5");
  proxies.setResolved(["172.18.0.5", "junk"]);
  assert.equal(proxies.clientAddress("172.18.0.5", "203.0.113.9"), "203.0.113.9");
  assert.equal(
    new TrustedProxies(parseTrustedProxies("")).clientAddress("1.1.1.1", "2.2.2.2"),
    "1.1.1.1",
  );
});
