// The one scenario list (scenarios.json) on every JS surface: Node, headless Chromium, workerd, and the
// WASI component under jco and Wasmtime through tests/wasi/wit-api.js. Data scenarios are run by
// the interpreter below through the host's public API against the mock provider over real HTTP;
// the same data runs natively against the request machine (tests/scenarios.rs). Scenarios about the
// JS surface itself (standard Response, streams, AbortSignal, decoding) are code, in `scenarios`,
// and named in the list with the reason they do not run natively. Only web-standard APIs are used
// here, so the same file runs everywhere.
import list from "./scenarios.json" with { type: "json" };

export class ScenarioFailure extends Error {}

function check(cond, message) {
  if (!cond) throw new ScenarioFailure(message);
}

function equal(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  check(a === e, `${message}: expected ${e}, got ${a}`);
}

async function rejects(promise, message) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  throw new ScenarioFailure(`${message}: expected a rejection`);
}

function throws(f, message) {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new ScenarioFailure(`${message}: expected an exception`);
}

/** Control of the mock provider over HTTP, usable from any host. */
export function mockControl(url, fetchImpl = (u, i) => globalThis.fetch(u, i)) {
  // Tried once: the mock never closes an idle kept-alive connection (see its listen()).
  const call = (path, init) => fetchImpl(`${url}${path}`, init).then((r) => r.json());
  return {
    url,
    setKeys: (specs) => call("/__mock/keys", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(specs) }),
    calls: () => call("/__mock/calls"),
    releaseHeldEnds: () => call("/__mock/release", { method: "POST" }),
  };
}

let counter = 0;

// Fresh key values per scenario, so scenarios share one mock without sharing state.
async function keys(mock, specs) {
  const run = `${Date.now().toString(36)}${(counter++).toString(36)}`;
  const registered = {};
  const list = [];
  for (const [id, spec] of Object.entries(specs)) {
    const value = `sk-${run}-${id}-secret`;
    registered[value] = { ...spec, id: `${run}-${id}` };
    list.push({ id, value });
  }
  await mock.setKeys(registered);
  const calls = async () => (await mock.calls()).filter((c) => c.keyId && c.keyId.startsWith(`${run}-`)).map((c) => ({ ...c, keyId: c.keyId.slice(run.length + 1) }));
  return { list, values: list.map((k) => k.value), calls, run };
}

const chat = { json: { model: "mock-model", messages: [{ role: "user", content: "hi" }] } };

/** The scenarios about the JS surface itself, listed with `code: true` in scenarios.json. */
export const scenarios = {
  async "aborting the signal rejects with AbortError and books the attempt"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["hang"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const controller = new AbortController();
    const pending = client.get("/v1/models", { signal: controller.signal });
    // Abort once the provider holds the request, not after a guessed delay.
    for (let i = 0; i < 1000 && (await k.calls()).length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    controller.abort();
    const e = await rejects(pending, "abort");
    equal(e.name, "AbortError", "AbortError");
    const a = client.status().keys[0];
    equal([a.totalRequests, a.errorCount, a.inFlight, a.lastError], [1, 1, 0, "cancelled"], "counted as cancelled");
    const again = await rejects(client.get("/v1/models", { signal: controller.signal }), "already aborted");
    equal(again.name, "AbortError", "an aborted signal rejects at once");
  },
  async "while every key rests, client.fetch answers 429 with retry-after"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["quota"] }, b: { script: ["quota"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, cooldownSeconds: 600 });
    await rejects(client.post("/v1/chat/completions", chat), "all quota");
    const r = await client.fetch(`${mock.url}/v1/models`);
    equal(r.status, 429, "fetch gets a 429");
    check(Number(r.headers.get("retry-after")) >= 590, "with retry-after");
    equal((await k.calls()).length, 2, "no calls while every key rests");
  },
  async "client.fetch returns the upstream Response for any status"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["ok", "bad_request"] } });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const f = client.fetch;
    const r1 = await f(`${mock.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify(chat.json), headers: { "content-type": "application/json" } });
    check(r1 instanceof Response && r1.status === 200, "a standard Response");
    equal((await r1.json()).object, "chat.completion", "body untouched");
    const r2 = await f(new Request(`${mock.url}/v1/chat/completions`, { method: "POST", body: "{}" }));
    equal(r2.status, 400, "4xx passed through, not thrown");
    equal((await r2.json()).error.message, "'messages' is a required property", "error body intact after classification");
  },
  async "text answers come back as strings, JSON as objects"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    equal(await client.get("/v1/text"), "plain text from " + k.run + "-a", "text");
    const r = await client.get("/v1/models", { stream: true });
    check(r instanceof Response, "stream: true gives the Response");
  },
  async "a streamed answer arrives chunk by chunk through client.fetch"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["rate_limit:5000"] }, b: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, strategy: "round_robin" });
    const r = await client.fetch(`${mock.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-mock-hold-end": "1" },
      body: JSON.stringify({ ...chat.json, stream: true }),
    });
    equal([r.status, r.headers.get("content-type")], [200, "text/event-stream"], "a stream after failing over");
    const reader = r.body.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let first = true;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (first) {
        // The provider holds its last event until released: a buffering client would not be here yet.
        first = false;
        check((await k.calls()).at(-1).lastChunkAt === undefined, "the first chunk arrived before the provider sent the last: not buffered");
        await mock.releaseHeldEnds();
      }
      text += decoder.decode(value, { stream: true });
    }
    check(text.includes("data: [DONE]") && text.includes(`"content":" ${k.run}-b"`), `the whole stream: ${text.slice(0, 200)}`);
    equal(client.status().keys[1].streamErrorCount, 0, "a clean end is no error");
  },
  async "a stream cut mid-way errors on the reader and counts against the key"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: { script: ["cut"] } });
    const events = [];
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list, onEvent: (e) => events.push(e.type) });
    const r = await client.fetch(`${mock.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ ...chat.json, stream: true }) });
    equal(r.status, 200, "the stream starts");
    const e = await rejects(r.text(), "a cut stream");
    check(e instanceof Error, "the reader sees an error, not a clean end");
    const a = client.status().keys[0];
    equal([a.streamErrorCount, a.lastError, a.successes], [1, "stream_interrupted", 1], "counted against the key");
    check(events.includes("streamError"), "a streamError event");
  },
  async "redirects are not followed, so keys never reach another origin"({ PoolSwitchClient }, mock) {
    const k = await keys(mock, { a: {} });
    const client = new PoolSwitchClient({ upstreamBaseUrl: mock.url, keys: k.list });
    const r = await client.fetch(`${mock.url}/v1/redirect`);
    check(r.status === 302 || r.type === "opaqueredirect", `redirect handed back (${r.status} ${r.type})`);
  },
};

// ---- The data scenarios' interpreter --------------------------------------------------------------
// Its rules are mirrored by tests/scenarios.rs (the native run): change both together.

/** Every entry of the list, in order: `{ name, code?, skip?, keys?, config?, steps? }`. */
export const scenarioList = list.scenarios;

/** Why `entry` does not run on `host` ("native", "wasi", …), or undefined when it runs. */
export function skipReason(entry, host) {
  return entry.skip?.[host];
}

// The list and the code scenarios name the same set: a listed scenario is data (steps) or code
// written here, and nothing here is missing from the list.
function checkList() {
  const names = new Set();
  for (const entry of scenarioList) {
    check(!names.has(entry.name), `listed twice: ${entry.name}`);
    names.add(entry.name);
    if (entry.code) check(typeof scenarios[entry.name] === "function", `listed as code but not written in scenarios.js: ${entry.name}`);
    else check(Array.isArray(entry.steps), `neither data nor code: ${entry.name}`);
    // The native run reads `keys` as a sorted map: the list keeps them in that order.
    const ids = Object.keys(entry.keys ?? {});
    check(ids.join() === [...ids].sort().join(), `${entry.name}: key ids out of alphabetical order`);
    for (const [host, reason] of Object.entries(entry.skip ?? {})) check(typeof reason === "string" && reason.length > 0, `${entry.name}: skip on ${host} without a reason`);
  }
  for (const name of Object.keys(scenarios)) check(names.has(name) && scenarioList.find((e) => e.name === name).code, `written in scenarios.js but not listed as code: ${name}`);
}
checkList();

const byPath = (value, path) => path.split(".").reduce((v, p) => (v === undefined || v === null ? undefined : v[p]), value);

// Expected values are matched as a subset: objects by their listed fields, arrays item by item.
function matches(actual, expected, path, problems) {
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object") return problems.push(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
    if (Array.isArray(expected) && (!Array.isArray(actual) || actual.length !== expected.length)) return problems.push(`${path}: expected ${expected.length} items, got ${JSON.stringify(actual)}`);
    for (const [k, v] of Object.entries(expected)) matches(actual[k], v, `${path}.${k}`, problems);
  } else if (actual !== expected) {
    problems.push(`${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

function like(actual, expected, message) {
  const problems = [];
  matches(actual, expected, message, problems);
  check(problems.length === 0, problems.join("; "));
}

// The mock names key `a` of a run `<run>-a`: answers are read with the run taken out.
function unrun(value, run) {
  if (typeof value === "string") return value.split(`${run}-`).join("");
  if (Array.isArray(value)) return value.map((v) => unrun(v, run));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unrun(v, run)]));
  return value;
}

// The key an answer of the mock came from: the echo names it, a completion says "served by <id>".
function servedBy(answer) {
  if (answer && typeof answer.keyId === "string") return answer.keyId;
  const content = answer?.choices?.[0]?.message?.content;
  return typeof content === "string" && content.startsWith("served by ") ? content.slice("served by ".length) : undefined;
}

class Run {
  constructor(api, mock, entry, k) {
    Object.assign(this, { api, mock, entry, k });
    this.other = mock.url.replace("127.0.0.1", "localhost");
    this.errors = [];
  }

  // `$origin`, `$otherOrigin` and `$<key id>` (a key's value) in config, paths and keys.
  resolve(value) {
    if (typeof value === "string") {
      const key = value.startsWith("$") && this.k.list.find((x) => `$${x.id}` === value);
      return key ? key.value : value.replace("$otherOrigin", this.other).replace("$origin", this.mock.url);
    }
    if (Array.isArray(value)) return value.map((v) => this.resolve(v));
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.resolve(v)]));
    return value;
  }

  client(config) {
    this.events = [];
    const options = { upstreamBaseUrl: this.mock.url, keys: this.k.list, ...this.resolve(config), onEvent: (e) => this.events.push(e) };
    this.pool = new this.api.PoolSwitchClient(options);
  }

  async send(step) {
    const [method, path] = step.request.split(" ");
    const opts = {};
    for (const field of ["json", "headers", "query", "timeoutMs"]) if (step[field] !== undefined) opts[field] = step[field];
    try {
      return { value: unrun(await this.pool.request(method, this.resolve(path), opts), this.k.run) };
    } catch (error) {
      this.errors.push(error);
      return { error };
    }
  }

  // A request's result against the step's `expect` (a success when it names no error).
  answer(result, expect = {}, what) {
    if (!expect.error) {
      check(!result.error, `${what}: expected an answer, got ${result.error && (result.error.stack || result.error.message)}`);
      if (expect.servedBy !== undefined) equal(servedBy(result.value), expect.servedBy, `${what}: served by`);
      if (expect.body !== undefined) like(result.value, expect.body, `${what}: body`);
      for (const [path, v] of Object.entries(expect.bodyEqual ?? {})) equal(byPath(result.value, path), v, `${what}: ${path}`);
      for (const path of expect.bodyLacks ?? []) equal(byPath(result.value, path), undefined, `${what}: ${path}`);
      return;
    }
    check(result.error, `${what}: expected an error, got ${JSON.stringify(result.value)}`);
    this.error(result.error, expect.error, what);
  }

  error(e, want, what) {
    check(e instanceof this.api.PoolSwitchError, `${what}: a PoolSwitchError, got ${e && (e.stack || e)}`);
    for (const field of ["kind", "status", "reason", "keyId", "attempts", "afterMs", "field"]) {
      if (want[field] !== undefined) equal(e[field], want[field], `${what}: ${field}`);
    }
    if (want.providerMessage !== undefined) {
      equal(e.data?.error?.message, want.providerMessage, `${what}: the provider's data`);
      // WIT errors are typed records: only the JS package words a message.
      if (this.api.messages !== false) check(e.message.includes(want.providerMessage), `${what}: the message carries the provider's words: ${e.message}`);
    }
    if (want.messageIncludes !== undefined) check(e.message.includes(want.messageIncludes), `${what}: message ${e.message}`);
    if (want.retryAtAfterMs !== undefined) check(e.retryAt > Date.now() + want.retryAtAfterMs, `${what}: retryAt ${e.retryAt} is the earliest return`);
    if (want.retryAtAsBefore) equal(e.retryAt, this.retryAt, `${what}: the same retryAt`);
    this.retryAt = e.retryAt;
    const text = `${e.message}\n${JSON.stringify(e)}`;
    for (const v of [...this.k.values, "sk-secret"]) check(!text.includes(v), `${what}: a key value in the error: ${e.message}`);
  }

  // Key operations: their result against `expect` (`returns`, or an `error`).
  operate(step, f, what) {
    let value;
    try {
      value = f();
    } catch (error) {
      check(step.expect?.error, `${what}: ${error && (error.stack || error)}`);
      this.errors.push(error);
      return this.error(error, step.expect.error, what);
    }
    check(!step.expect?.error, `${what}: expected an error, got ${JSON.stringify(value)}`);
    if (step.expect?.returns !== undefined) equal(value, step.expect.returns, what);
  }

  async state(expect, what) {
    const calls = await this.k.calls();
    const used = calls.map((c) => c.keyId);
    const count = (id) => used.filter((x) => x === id).length;
    const status = () => this.pool.status();
    const key = (id) => status().keys.find((x) => x.id === id);
    if (expect.calls !== undefined) equal(used, expect.calls, `${what}: keys called, in order`);
    if (expect.callCount !== undefined) equal(calls.length, expect.callCount, `${what}: calls that reached the provider`);
    for (const [id, n] of Object.entries(expect.callsAtLeast ?? {})) check(count(id) >= n, `${what}: key ${id} called ${count(id)} times, fewer than ${n}`);
    if (expect.spread) {
      const [x, y] = expect.spread.keys.map(count);
      if (expect.spread.within !== undefined) check(Math.abs(x - y) <= expect.spread.within, `${what}: equal keys balanced (${x} vs ${y})`);
      if (expect.spread.moreThanTimes !== undefined) check(x > y * expect.spread.moreThanTimes, `${what}: ${expect.spread.keys[0]} favoured (${x} vs ${y})`);
    }
    for (const gap of expect.gaps ?? []) {
      const at = calls.filter((c) => gap.key === undefined || c.keyId === gap.key).map((c) => c.at);
      check(at.length > gap.to && at[gap.to] - at[gap.from] >= gap.atLeastMs, `${what}: call ${gap.to} came ${at[gap.to] - at[gap.from]} ms after call ${gap.from}, not ${gap.atLeastMs}`);
    }
    if (expect.ids !== undefined) equal(status().keys.map((x) => x.id), expect.ids, `${what}: key ids`);
    for (const [id, want] of Object.entries(expect.status ?? {})) like(key(id), want, `${what}: key ${id}`);
    for (const [id, ms] of Object.entries(expect.cooldownFor ?? {})) {
      const until = key(id).cooldownUntil;
      check(until >= this.before + ms && until <= Date.now() + ms, `${what}: key ${id} rests ${ms} ms (until ${until})`);
    }
    if (expect.events) {
      const want = expect.events;
      const events = this.events.filter((e) => e.type === want.type);
      if (want.equal !== undefined) equal(events.map((e) => want.fields.map((f) => e[f])), want.equal, `${what}: ${want.type} events`);
      if (want.count !== undefined) equal(events.length, want.count, `${what}: ${want.type} events ${JSON.stringify(events)}`);
      for (const [field, [lo, hi]] of Object.entries(want.between ?? {})) {
        for (const e of events) check(e[field] >= lo && e[field] <= hi, `${what}: ${want.type} ${field} ${e[field]} not in [${lo}, ${hi}]`);
      }
    }
    if (expect.noKeyValues) {
      const errors = this.errors.map((e) => [e.message, e.stack, JSON.stringify(e)].join("\n"));
      const text = [...errors, JSON.stringify(status()), JSON.stringify(this.events), JSON.stringify(this.pool.exportState()), String(this.pool), JSON.stringify(this.pool)].join("\n");
      for (const v of this.k.values) check(!text.includes(v), `${what}: a key value leaked`);
    }
    if (expect.countersExact) {
      const s = status();
      equal(s.totalRequests, calls.length, `${what}: every upstream call is counted once`);
      for (const x of s.keys) {
        equal(x.totalRequests, x.successes + x.errorCount, `${what}: key ${x.id}: requests = successes + errors`);
        equal(x.totalRequests, count(x.id), `${what}: key ${x.id}: matches the provider's log`);
        equal(x.inFlight, 0, `${what}: key ${x.id}: nothing left in flight`);
      }
      equal(s.successes, this.fulfilled, `${what}: successes match fulfilled calls`);
    }
  }

  async step(step, i) {
    const what = `step ${i + 1}`;
    if (step.client !== undefined) return this.client(step.client);
    if (step.create !== undefined) {
      const e = throws(() => new this.api.PoolSwitchClient(this.resolve(step.create)), `${what}: construction`);
      return this.error(e, step.expect.error, what);
    }
    if (step.addKey !== undefined) return this.operate(step, () => this.pool.addKey(this.resolve(step.addKey)), `${what}: addKey`);
    for (const op of ["enableKey", "disableKey", "removeKey"]) {
      if (step[op] !== undefined) return this.operate(step, () => this.pool[op](step[op]), `${what}: ${op}`);
    }
    if (step.request !== undefined) {
      this.before = Date.now();
      if (step.concurrent !== undefined) {
        const results = await Promise.all(Array.from({ length: step.concurrent }, () => this.send(step)));
        this.fulfilled = results.filter((r) => !r.error).length;
        return equal(this.fulfilled, step.expect.fulfilled, `${what}: requests served (${results.find((r) => r.error)?.error})`);
      }
      for (let n = 0; n < (step.repeat ?? 1); n++) this.answer(await this.send(step), step.expect, `${what} (${step.request} #${n + 1})`);
      return;
    }
    if (step.expect !== undefined) return this.state(step.expect, what);
    throw new ScenarioFailure(`${what}: unknown step ${JSON.stringify(step)}`);
  }
}

async function runData(api, mock, entry) {
  const run = new Run(api, mock, entry, await keys(mock, entry.keys));
  if (entry.config !== undefined) run.client(entry.config);
  for (const [i, step] of entry.steps.entries()) await run.step(step, i);
}

/** Runs the listed scenario `name` on `api` (PoolSwitchClient, PoolSwitchError), throwing on failure. */
export function runScenario(name, api, mock) {
  const entry = scenarioList.find((e) => e.name === name);
  check(entry, `not in the list: ${name}`);
  return entry.code ? scenarios[name](api, mock) : runData(api, mock, entry);
}

/** Runs every listed scenario (or only `only`) not skipped on `host`, reporting each result. */
export async function runScenarios(api, mock, { host, only } = {}) {
  const results = [];
  for (const entry of scenarioList) {
    if (only && entry.name !== only) continue;
    const skipped = skipReason(entry, host);
    if (skipped) {
      results.push({ name: entry.name, ok: true, skipped });
      continue;
    }
    try {
      await runScenario(entry.name, api, mock);
      results.push({ name: entry.name, ok: true });
    } catch (e) {
      results.push({ name: entry.name, ok: false, error: `${e && e.message}\n${e && e.stack}` });
    }
  }
  return results;
}
