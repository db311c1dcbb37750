import assert from "node:assert/strict";
import { parseBrokerUrl } from "../../lib/connect/broker_url.ts";
import { UsageError } from "../../lib/errors.ts";

const accepted: Array<[string, string, number, string, boolean]> = [
  // input, host, port, normalised url, hostIsIp
  [
    "ssl://tenant.cumulocity.com:8883",
    "tenant.cumulocity.com",
    8883,
    "mqtts://tenant.cumulocity.com:8883",
    false,
  ],
  [
    "SSL://Tenant.Cumulocity.COM:1884",
    "tenant.cumulocity.com",
    1884,
    "mqtts://tenant.cumulocity.com:1884",
    false,
  ],
  ["mqtts://example.com", "example.com", 8883, "mqtts://example.com:8883", false],
  ["tls://example.com:443", "example.com", 443, "mqtts://example.com:443", false],
  ["example.com", "example.com", 8883, "mqtts://example.com:8883", false],
  ["example.com:9000", "example.com", 9000, "mqtts://example.com:9000", false],
  ["  example.com:9000  ", "example.com", 9000, "mqtts://example.com:9000", false],
  ["example.com.:8883", "example.com", 8883, "mqtts://example.com:8883", false],
  ["ssl://example.com:8883/", "example.com", 8883, "mqtts://example.com:8883", false],
  ["localhost", "localhost", 8883, "mqtts://localhost:8883", false],
  ["127.0.0.1:18883", "127.0.0.1", 18883, "mqtts://127.0.0.1:18883", true],
  ["ssl://10.0.0.1", "10.0.0.1", 8883, "mqtts://10.0.0.1:8883", true],
  ["[::1]:8883", "::1", 8883, "mqtts://[::1]:8883", true],
  ["mqtts://[2001:DB8::1]", "2001:db8::1", 8883, "mqtts://[2001:db8::1]:8883", true],
  ["::1", "::1", 8883, "mqtts://[::1]:8883", true],
  // A bare IPv6 address is taken whole: its last group is not a port.
  ["2001:db8::1:8883", "2001:db8::1:8883", 8883, "mqtts://[2001:db8::1:8883]:8883", true],
  ["ssl://example.com:1", "example.com", 1, "mqtts://example.com:1", false],
  ["ssl://example.com:65535", "example.com", 65535, "mqtts://example.com:65535", false],
  // A host that happens to be named like a scheme, with a port, is still a host.
  ["ssl:8883", "ssl", 8883, "mqtts://ssl:8883", false],
];

for (const [input, host, port, url, hostIsIp] of accepted) {
  Deno.test(`parseBrokerUrl() accepts "${input}"`, () => {
    assert.deepEqual(parseBrokerUrl(input), { host, port, url, hostIsIp });
  });
}

const refused: Array<[string, string, RegExp]> = [
  // input, code, message or hint pattern
  ["ws://example.com/mqtt", "URL_WEBSOCKET", /WebSocket/],
  ["wss://example.com:443/mqtt", "URL_WEBSOCKET", /WebSocket/],
  ["tcp://example.com:1883", "URL_SCHEME_NO_TLS", /needs TLS/],
  ["mqtt://example.com:1883", "URL_SCHEME_NO_TLS", /needs TLS/],
  ["foo://example.com", "URL_INVALID", /unknown scheme "foo:\/\/"/],
  // A web address copied from the browser: MQTT is on the same host, port 8883.
  [
    "https://mytenant.cumulocity.com/apps/cockpit/index.html#/",
    "URL_HTTP",
    /is a web address, but devices reach Cumulocity's MQTT endpoint on the same host .*: ssl:\/\/mytenant\.cumulocity\.com:8883 Use ssl:\/\/mytenant\.cumulocity\.com:8883 /,
  ],
  ["http://example.com", "URL_HTTP", /web address.*ssl:\/\/example\.com:8883/],
  ["HTTPS://[::1]:443", "URL_HTTP", /ssl:\/\/\[::1\]:8883/],
  // Malformed: the scheme without its "://" is not a host named "ssl" with a path.
  [
    "ssl//example.com:8883",
    "URL_INVALID",
    /is malformed: the scheme "ssl" must be followed by ":\/\/" Write it as ssl:\/\/example\.com:8883\./,
  ],
  ["ssl:/example.com", "URL_INVALID", /malformed.* Write it as ssl:\/\/example\.com\./],
  [
    "mqtts:example.com:8883",
    "URL_INVALID",
    /malformed.* Write it as mqtts:\/\/example\.com:8883\./,
  ],
  ["https//example.com", "URL_INVALID", /malformed.* Write it as ssl:\/\/example\.com\./],
  ["ssl:///example.com", "URL_INVALID", /malformed: no host after "ssl:\/\/"/],
  ["ssl://example.com:0", "URL_PORT", /port "0"/],
  ["ssl://example.com:65536", "URL_PORT", /port "65536"/],
  ["ssl://example.com:88a3", "URL_PORT", /port "88a3"/],
  ["ssl://example.com:", "URL_PORT", /port ""/],
  ["ssl://example.com:-1", "URL_PORT", /port/],
  ["ssl://", "URL_INVALID", /no host/],
  [":8883", "URL_INVALID", /no host/],
  ["", "URL_INVALID", /empty/],
  ["ssl://example.com:8883/mqtt", "URL_INVALID", /path/],
  ["ssl://example.com:8883?x=1", "URL_INVALID", /query/],
  ["ssl://example.com#frag", "URL_INVALID", /fragment/],
  ["ssl://user:secret@example.com:8883", "URL_INVALID", /credentials/],
  ["ssl://exa mple.com", "URL_INVALID", /invalid host name/],
  ["ssl://-bad-.com", "URL_INVALID", /invalid host name/],
  ["2001:db8::g:8883", "URL_INVALID", /brackets/],
  ["[::1", "URL_INVALID", /unclosed/],
  ["[example.com]:8883", "URL_INVALID", /IPv6/],
  ["[::1]8883", "URL_INVALID", /malformed/],
];

for (const [input, code, pattern] of refused) {
  Deno.test(`parseBrokerUrl() refuses "${input}" with ${code}`, () => {
    assert.throws(
      () => parseBrokerUrl(input),
      (err: unknown) => {
        assert.ok(err instanceof UsageError, `expected UsageError, got ${err}`);
        assert.equal(err.code, code);
        assert.equal(err.exitCode, 2);
        assert.match(`${err.message} ${err.hint}`, pattern);
        assert.ok(err.hint.length > 0);
        return true;
      },
    );
  });
}

Deno.test("parseBrokerUrl() never repeats a password from the URL in its error", () => {
  for (const input of ["ssl://dev:s3cr3t@example.com", "ws://dev:s3cr3t@example.com/mqtt"]) {
    try {
      parseBrokerUrl(input);
      assert.fail("expected a failure");
    } catch (err) {
      assert.ok(err instanceof UsageError);
      assert.ok(!err.message.includes("s3cr3t") && !err.hint.includes("s3cr3t"), err.message);
    }
  }
});
