// Events in the host's conventions: on/off and addEventListener, a logger hook, and listener
// errors reported (to `error` listeners, else the logger) without breaking the request.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PoolSwitchClient } from "../../pkg/esm/node.js";
import { useMockProvider, freshKeys } from "../support/provider.js";

const mock = useMockProvider();

// Two fresh keys, the first out of quota: one request gives request, failover, cooldown, success.
const failoverKeys = async () => (await freshKeys(mock.control, "ev", { a: { script: ["quota"] }, b: {} })).values;
const chat = (client) => client.post("/v1/chat/completions", { json: { model: "m", messages: [] } });

test("on(type) gets that type, on('*') every event, off() stops delivery", async () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: await failoverKeys(), logLevel: "off" });
  const failovers = [];
  const all = [];
  const request = (e) => all.push(`off-listener:${e.type}`);
  client.on("failover", (e) => failovers.push(e)).on("*", (e) => all.push(e.type));
  client.addEventListener("request", request);
  client.removeEventListener("request", request);
  await chat(client);
  assert.equal(failovers.length, 1);
  assert.equal(failovers[0].fromKeyId, "key-1");
  assert.deepEqual(all.filter((t) => t === "success"), ["success"]);
  assert.ok(all.includes("failover") && all.includes("cooldown"));
  assert.ok(!all.some((t) => t.startsWith("off-listener")), "a removed listener is not called");
});

test("a throwing listener does not break the request; its error reaches the error listeners", async () => {
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: await failoverKeys(), logLevel: "off" });
  const failures = [];
  client.on("failover", () => {
    throw new Error("listener bug");
  });
  client.on("error", (f) => failures.push(f));
  const out = await chat(client);
  assert.match(out.choices[0].message.content, /served by ev\d+-b/);
  assert.equal(failures.length, 1);
  assert.equal(failures[0].error.message, "listener bug");
  assert.equal(failures[0].event.type, "failover");
});

test("without error listeners, a listener's error goes to the logger; debug logs every event", async () => {
  const logged = [];
  const logger = Object.fromEntries(["debug", "info", "warn", "error"].map((level) => [level, (message, detail) => logged.push({ level, message, detail })]));
  const client = new PoolSwitchClient({
    upstreamBaseUrl: mock.url,
    keys: await failoverKeys(),
    logger,
    logLevel: "debug",
    onEvent: (e) => {
      if (e.type === "success") throw new Error("onEvent bug");
    },
  });
  await chat(client);
  const errors = logged.filter((l) => l.level === "error");
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /listener for "success" threw/);
  assert.equal(errors[0].detail.message, "onEvent bug");
  assert.ok(logged.some((l) => l.level === "debug" && l.detail.type === "failover"));
});

test("a bad logger or log level is refused by name", () => {
  assert.throws(() => new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["k"], logLevel: "loud" }), (e) => e.kind === "invalid_config" && e.field === "logLevel");
  assert.throws(() => new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: ["k"], logger: "console" }), (e) => e.kind === "invalid_config" && e.field === "logger");
});

test("every event of a request carries its requestId and path, also with requests in flight together", async () => {
  const keys = await failoverKeys();
  const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys, logLevel: "off" });
  const events = [];
  client.on("*", (e) => events.push(e));
  await Promise.all([chat(client), client.get("/v1/models?limit=2")]);
  assert.ok(events.length >= 4, `${events.length} events`);
  for (const e of events) assert.match(e.requestId ?? "", /^req-\d+$/, `${e.type} has a requestId`);
  const byRequest = new Map();
  for (const e of events) byRequest.set(e.requestId, [...(byRequest.get(e.requestId) ?? []), e]);
  assert.equal(byRequest.size, 2);
  const paths = [...byRequest.values()].map((list) => [...new Set(list.map((e) => e.path))]);
  assert.deepEqual(paths.map((p) => p.join()).sort(), ["/v1/chat/completions", "/v1/models"]);
  const success = events.filter((e) => e.type === "success");
  assert.equal(success.length, 2);
});
