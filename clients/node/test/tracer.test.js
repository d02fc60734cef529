'use strict';
// Tests for clients/node/tracer.js against a real swarmscope collector (spawned
// once for this file from SWARMSCOPE_BIN, default ../../target/debug/swarmscope),
// plus tiny local HTTP servers of our own where a test must count requests or
// script the answers (503, 400...). Only 127.0.0.1 is used.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const TRACER = path.resolve(__dirname, '..', 'tracer.js');
const { AgentTracer, pushSpool } = require(TRACER);
const BIN = process.env.SWARMSCOPE_BIN || path.resolve(__dirname, '..', '..', '..', 'target', 'debug', 'swarmscope');

const HEX32 = /^[0-9a-f]{32}$/;
const HEX16 = /^[0-9a-f]{16}$/;
let collector; // { url, proc, dir }
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmscope-node-test-'));

before(async () => {
  const dir = path.join(tmp, 'data');
  const proc = spawn(BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dir], {
    env: { ...process.env, SWARMSCOPE_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  process.on('exit', () => proc.kill('SIGKILL'));
  const url = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`collector did not start: ${out}`)), 10000);
    proc.once('error', reject);
    proc.once('exit', (code) => reject(new Error(`collector exited with ${code}: ${out}`)));
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
  proc.stdout.resume();
  collector = { url, proc, dir };
});

after(async () => {
  if (collector) {
    const exited = new Promise((resolve) => collector.proc.once('exit', resolve));
    collector.proc.kill('SIGTERM');
    await exited;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const ctx = () => [`ticket_${Math.random().toString(36).slice(2, 8)}`, 'agent_789', 'tenant_001'];
const opts = (extra = {}) => ({ url: collector.url, installExitHooks: false, spoolPath: path.join(tmp, `spool-${Math.random()}.jsonl`), ...extra });

async function getJson(p) {
  const res = await fetch(collector.url + p);
  assert.equal(res.status, 200, `GET ${p} answered ${res.status}: ${await res.clone().text()}`);
  return res.json();
}
async function getTrace(traceId) { return getJson(`/api/traces/${traceId}`); }
const byName = (spans, name) => spans.find((s) => s.name === name);

/**
 * A tiny HTTP server recording every request ({method, url, headers, body, json}).
 * `handler(req, n)` answers {status, headers, body}; the default forwards the
 * request to the real collector (a counting proxy).
 */
async function tinyServer(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r = { method: req.method, url: req.url, headers: req.headers, body, at: Date.now() };
      try { r.json = JSON.parse(body); } catch { /* not JSON */ }
      requests.push(r);
      let answer;
      if (handler) {
        answer = await handler(r, requests.length);
      } else {
        const up = await fetch(collector.url + req.url, { method: req.method, headers: { 'content-type': 'application/json' }, body: req.method === 'POST' ? body : undefined });
        answer = { status: up.status, body: await up.text() };
      }
      res.writeHead(answer.status, { 'content-type': 'application/json', ...(answer.headers || {}) });
      res.end(answer.body || '{}');
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

test('the seed usage arrives with every field', async () => {
  const [ticket, agent, tenant] = ctx();
  const tracer = new AgentTracer(ticket, agent, tenant, opts({ vmId: 'vm-7', service: 'swarm-agent' }));
  assert.match(tracer.traceId, HEX32);
  const span = tracer.startSpan('git.clone', { repo_url: 'https://git.example.com/acme/app.git', branch: 'main' });
  assert.match(span.id, HEX16);
  span.addEvent('clone.progress', { percent: 50 });
  span.setAttribute('commit_sha', 'abc123');
  span.setStatus('ok');
  span.end();
  const failed = tracer.startSpan('git.push', {}, null);
  failed.setStatus('error', 'remote rejected');
  failed.end();
  const rec = tracer.spans[0];
  const result = await tracer.flush();
  assert.deepEqual(result, { sent: 2, spooled: 0, dropped: 0 });

  const { trace, spans } = await getTrace(tracer.traceId);
  assert.equal(trace.span_count, 2);
  assert.equal(trace.error_count, 1);
  assert.equal(trace.ticket_id, ticket);
  const s = byName(spans, 'git.clone');
  assert.equal(s.span_id, span.id);
  assert.equal(s.trace_id, tracer.traceId);
  assert.equal(s.parent_span_id, null);
  assert.equal(s.status, 'ok');
  assert.equal(s.status_message, null);
  assert.equal(Date.parse(s.start_time), Date.parse(rec.startTime));
  assert.equal(Date.parse(s.end_time), Date.parse(rec.endTime));
  assert.equal(s.duration_ms, rec.durationMs);
  assert.deepEqual(s.attributes, { repo_url: 'https://git.example.com/acme/app.git', branch: 'main', commit_sha: 'abc123' });
  assert.equal(s.events.length, 1);
  assert.equal(s.events[0].name, 'clone.progress');
  assert.deepEqual(s.events[0].attributes, { percent: 50 });
  assert.equal(Date.parse(s.events[0].timestamp), Date.parse(rec.events[0].timestamp));
  assert.equal(s.tenant_id, tenant);
  assert.equal(s.ticket_id, ticket);
  assert.equal(s.agent_id, agent);
  assert.equal(s.vm_id, 'vm-7');
  assert.equal(s.service, 'swarm-agent');
  const f = byName(spans, 'git.push');
  assert.equal(f.status, 'error');
  assert.equal(f.status_message, 'remote rejected');

  // Flush is idempotent: nothing is left to send.
  assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 0, dropped: 0 });
});

test('child spans carry parent_span_id, explicit and implicit', async () => {
  const tracer = new AgentTracer(...ctx(), opts());
  const root = tracer.startSpan('agent.execute');
  assert.equal(tracer.currentSpanId, root.id);
  const implicit = tracer.startSpan('git.clone'); // current span: root
  const grandchild = tracer.startSpan('git.fetch'); // current span: git.clone
  grandchild.end();
  implicit.end();
  const sibling = tracer.startSpan('llm.generate'); // git.clone ended: root again
  sibling.end();
  const explicit = tracer.startSpan('file.write', { file_count: 3 }, root);
  const byId = tracer.startSpan('git.commit', {}, explicit.id);
  byId.end();
  explicit.end();
  const newRoot = tracer.startSpan('ticket.complete', {}, null);
  newRoot.end();
  root.end();
  assert.equal(tracer.currentSpanId, undefined);
  await tracer.flush();

  const { spans } = await getTrace(tracer.traceId);
  assert.equal(spans.length, 7);
  const parent = (name) => byName(spans, name).parent_span_id;
  assert.equal(parent('agent.execute'), null);
  assert.equal(parent('git.clone'), root.id);
  assert.equal(parent('git.fetch'), implicit.id);
  assert.equal(parent('llm.generate'), root.id);
  assert.equal(parent('file.write'), root.id);
  assert.equal(parent('git.commit'), explicit.id);
  assert.equal(parent('ticket.complete'), null);
  assert.ok(spans.every((s) => s.orphan === false));
});

test('one flush of 1,000 spans is one POST and arrives complete', async () => {
  const proxy = await tinyServer();
  try {
    const tracer = new AgentTracer(...ctx(), opts({ url: proxy.url, apiKey: 'k-123' }));
    const root = tracer.startSpan('agent.execute');
    for (let i = 0; i < 999; i++) {
      const s = tracer.startSpan('llm.generate', { i, model: 'claude' });
      s.addEvent('token', { n: i });
      s.end();
    }
    root.end();
    // Two concurrent flushes: serialized, the second finds nothing left.
    const [a, b] = await Promise.all([tracer.flush(), tracer.flush()]);
    assert.deepEqual(a, { sent: 1000, spooled: 0, dropped: 0 });
    assert.deepEqual(b, { sent: 0, spooled: 0, dropped: 0 });
    assert.equal(proxy.requests.length, 1);
    const [req] = proxy.requests;
    assert.equal(req.method, 'POST');
    assert.equal(req.url, '/api/traces');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers.authorization, 'Bearer k-123');
    assert.equal(req.json.spans.length, 1000);
    // The seed's wire format, key for key.
    const wire = req.json.spans[1];
    assert.deepEqual(Object.keys(wire), ['ticketId', 'agentId', 'tenantId', 'trace_id', 'id', 'name', 'startTime',
      'attributes', 'events', 'status', 'endTime', 'durationMs', 'parent_span_id']);

    const { trace, spans } = await getTrace(tracer.traceId);
    assert.equal(trace.span_count, 1000);
    assert.equal(spans.length, 1000);
    assert.ok(spans.every((s) => s.end_time !== null && s.duration_ms !== null));
    assert.equal(spans.filter((s) => s.parent_span_id === root.id).length, 999);
  } finally {
    await proxy.close();
  }
});

test('maxBatchBytes splits a flush into several POSTs, all delivered', async () => {
  const proxy = await tinyServer();
  try {
    const tracer = new AgentTracer(...ctx(), opts({ url: proxy.url, maxBatchBytes: 4096 }));
    for (let i = 0; i < 50; i++) tracer.startSpan('file.write', { i, pad: 'x'.repeat(200) }).end();
    assert.deepEqual(await tracer.flush(), { sent: 50, spooled: 0, dropped: 0 });
    assert.ok(proxy.requests.length > 1, `${proxy.requests.length} requests`);
    assert.ok(proxy.requests.every((r) => Buffer.byteLength(r.body) <= 4096));
    assert.equal(proxy.requests.reduce((n, r) => n + r.json.spans.length, 0), 50);
    assert.equal((await getTrace(tracer.traceId)).spans.length, 50);
  } finally {
    await proxy.close();
  }
});

test('an unended span is announced open, then stored complete after end and flush', async () => {
  const proxy = await tinyServer();
  try {
    const tracer = new AgentTracer(...ctx(), opts({ url: proxy.url }));
    const open = tracer.startSpan('agent.execute', { agent_type: 'coder' });
    tracer.startSpan('git.clone').end();
    assert.deepEqual(await tracer.flush(), { sent: 2, spooled: 0, dropped: 0 });
    const announced = proxy.requests[0].json.spans.find((s) => s.id === open.id);
    assert.equal(announced.endTime, undefined);
    assert.equal(announced.durationMs, undefined);
    let s = byName((await getTrace(tracer.traceId)).spans, 'agent.execute');
    assert.equal(s.end_time, null);
    assert.equal(s.duration_ms, null);
    assert.equal(s.status, 'unset');

    // Still open: a flush does not announce it again.
    assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 0, dropped: 0 });
    open.setStatus('ok');
    open.end();
    assert.deepEqual(await tracer.flush(), { sent: 1, spooled: 0, dropped: 0 });
    assert.equal(proxy.requests.length, 2);
    assert.equal(proxy.requests[1].json.spans.length, 1);
    assert.equal(typeof proxy.requests[1].json.spans[0].endTime, 'string');

    // The collector upgrades the open span to its completed version.
    s = byName((await getTrace(tracer.traceId)).spans, 'agent.execute');
    assert.notEqual(s.end_time, null, 'the collector kept the open version of a re-sent span');
    assert.equal(s.status, 'ok');
    assert.equal(typeof s.duration_ms, 'number');
  } finally {
    await proxy.close();
  }
});

test('flush retries through 500 and 503, honouring Retry-After', async () => {
  const server = await tinyServer((req, n) => (n === 1 ? { status: 500 }
    : n === 2 ? { status: 503, headers: { 'retry-after': '1' } } : { status: 202, body: '{"accepted":1}' }));
  try {
    const tracer = new AgentTracer(...ctx(), opts({ url: server.url }));
    tracer.startSpan('llm.generate').end();
    const t0 = Date.now();
    assert.deepEqual(await tracer.flush(), { sent: 1, spooled: 0, dropped: 0 });
    assert.equal(server.requests.length, 3);
    const [r1, r2, r3] = server.requests.map((r) => r.at);
    assert.ok(r2 - r1 >= 90, `backoff after 500: ${r2 - r1} ms`);
    assert.ok(r3 - r2 >= 950, `Retry-After 1 after 503: waited only ${r3 - r2} ms`);
    assert.ok(Date.now() - t0 < 5000);
    assert.ok(!fs.existsSync(tracer.spoolPath));
  } finally {
    await server.close();
  }
});

test('a 400 is neither retried nor spooled', async () => {
  const server = await tinyServer(() => ({ status: 400, body: '{"error":"bad","field":"spans[0].name"}' }));
  try {
    const tracer = new AgentTracer(...ctx(), opts({ url: server.url }));
    tracer.startSpan('a').end();
    tracer.startSpan('b').end();
    assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 0, dropped: 2 });
    assert.equal(server.requests.length, 1);
    assert.ok(!fs.existsSync(tracer.spoolPath));
    assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 0, dropped: 0 });
    assert.equal(server.requests.length, 1);
  } finally {
    await server.close();
  }
});

/** A loopback port with nothing listening on it. */
async function deadUrl() {
  const s = http.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return `http://127.0.0.1:${port}`;
}

test('collector down: flush resolves and spools; pushSpool ships it once', async () => {
  const tracer = new AgentTracer(...ctx(), opts({ url: await deadUrl(), timeoutMs: 2000, retries: 2 }));
  const root = tracer.startSpan('agent.execute');
  tracer.startSpan('git.clone').end();
  tracer.startSpan('llm.generate').end();
  const t0 = Date.now();
  assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 3, dropped: 0 });
  assert.ok(Date.now() - t0 < 2500);
  tracer.startSpan('git.push').end();
  root.setStatus('ok');
  root.end();
  assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 2, dropped: 0 });
  assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 0, dropped: 0 });

  const lines = fs.readFileSync(tracer.spoolPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 5); // root spooled open, then complete
  assert.ok(lines.every((l) => l.kind === 'span' && l.trace_id === tracer.traceId));

  const pushed = await pushSpool(tracer.spoolPath, { url: collector.url });
  assert.deepEqual(pushed, { sent: 4, kept: 0, dropped: 0 });
  assert.ok(!fs.existsSync(tracer.spoolPath), 'spool deleted after everything was accepted');
  const { spans } = await getTrace(tracer.traceId);
  assert.equal(spans.length, 4, 'one stored span per span created');
  const r = byName(spans, 'agent.execute');
  assert.notEqual(r.end_time, null, 'the complete version of the root was shipped');
  assert.equal(r.status, 'ok');
  assert.deepEqual(await pushSpool(tracer.spoolPath, { url: collector.url }), { sent: 0, kept: 0, dropped: 0 });
});

test('pushSpool keeps the spool while the collector is unreachable', async () => {
  const tracer = new AgentTracer(...ctx(), opts({ url: await deadUrl(), timeoutMs: 1000, retries: 0 }));
  tracer.startSpan('a').end();
  await tracer.flush();
  const before = fs.readFileSync(tracer.spoolPath, 'utf8');
  assert.deepEqual(await pushSpool(tracer.spoolPath, { url: tracer.url, timeoutMs: 1000, retries: 0 }), { sent: 0, kept: 1, dropped: 0 });
  assert.equal(fs.readFileSync(tracer.spoolPath, 'utf8'), before);
  assert.deepEqual(await pushSpool(tracer.spoolPath, { url: collector.url }), { sent: 1, kept: 0, dropped: 0 });
  assert.equal((await getTrace(tracer.traceId)).spans.length, 1);
});

test('traceparent and headers are W3C', () => {
  const tracer = new AgentTracer(...ctx(), opts());
  const bare = tracer.traceparent();
  assert.match(bare, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(tracer.traceparent(), bare, 'stable without a span');
  const span = tracer.startSpan('http.request');
  const tp = tracer.traceparent();
  assert.equal(tp, `00-${tracer.traceId}-${span.id}-01`);
  assert.equal(span.traceparent(), tp);
  const child = tracer.startSpan('ticket.claim');
  assert.equal(tracer.traceparent(span), tp);
  assert.equal(tracer.traceparent(span.id), tp);
  assert.equal(tracer.traceparent(), `00-${tracer.traceId}-${child.id}-01`);
  assert.deepEqual(tracer.headers(span), { traceparent: tp, 'X-Trace-ID': tracer.traceId });
  for (let i = 0; i < 200; i++) {
    const t = new AgentTracer('t', 'a', 'x', opts());
    assert.match(t.traceId, HEX32);
    assert.notEqual(t.traceId, '0'.repeat(32));
    const id = t.startSpan('s').id;
    assert.match(id, HEX16);
    assert.notEqual(id, '0'.repeat(16));
  }
  // A tracer given an incoming traceparent continues that trace.
  const next = new AgentTracer(...ctx(), opts({ traceparent: tp }));
  assert.equal(next.traceId, tracer.traceId);
  assert.equal(next.startSpan('agent.execute').traceparent().slice(0, 36), `00-${tracer.traceId}-`);
  assert.equal(next.spans[0].parent_span_id, span.id);
});

test('recording normalizes what the collector would refuse, and does not touch the caller\'s objects', () => {
  const tracer = new AgentTracer(...ctx(), opts({ url: 'http://127.0.0.1:9' })); // never contacted
  const attrs = { a: 1 };
  const s = tracer.startSpan('x', attrs);
  s.setAttribute('b', 2);
  assert.deepEqual(attrs, { a: 1 });
  s.setStatus('OK');
  assert.equal(tracer.spans[0].status, 'ok');
  s.setStatus('bogus');
  assert.equal(tracer.spans[0].status, 'unset');
  s.end();
  const { endTime } = tracer.spans[0];
  s.end(); // a second end changes nothing
  assert.equal(tracer.spans[0].endTime, endTime);
  tracer.log('WARNING', 'w');
  tracer.log('nonsense', 'n');
  assert.deepEqual(tracer._logs.map((l) => l.line.level), ['warn', 'info']);
});

test('log lines in the seed format ship with the flush', async () => {
  const proxy = await tinyServer();
  try {
    const [ticket, agent, tenant] = ctx();
    const tracer = new AgentTracer(ticket, agent, tenant, opts({ url: proxy.url }));
    tracer.info('before any span', { step: 0 });
    const span = tracer.startSpan('ticket.claim');
    tracer.log('warn', 'Ticket claimed by agent', { request_id: 'req_xyz', duration_ms: 45, queue: 'main' });
    span.end();
    tracer.error('push failed', { code: 128 });
    tracer.debug('d');
    tracer.fatal('f');
    const result = await tracer.flush();

    // What the client sent: one POST per kind, seed line format.
    const logReqs = proxy.requests.filter((r) => r.url === '/api/logs');
    assert.equal(logReqs.length, 1);
    assert.equal(proxy.requests.filter((r) => r.url === '/api/traces').length, 1);
    const sent = logReqs[0].json.logs;
    assert.equal(sent.length, 5);
    assert.deepEqual(Object.keys(sent[1]), ['timestamp', 'level', 'message', 'trace_id', 'request_id', 'tenant_id',
      'ticket_id', 'agent_id', 'span_id', 'duration_ms', 'metadata']);
    assert.deepEqual(sent.map((l) => l.level), ['info', 'warn', 'error', 'debug', 'fatal']);
    assert.equal(sent[0].span_id, undefined);
    assert.equal(sent[1].span_id, span.id);

    // What the collector stored.
    assert.deepEqual(result, { sent: 6, spooled: 0, dropped: 0 }, 'POST /api/logs was not accepted (needs a collector with /api/logs)');
    const { logs } = await getJson(`/api/logs?trace_id=${tracer.traceId}`);
    assert.equal(logs.length, 5);
    const l = logs.find((x) => x.message === 'Ticket claimed by agent');
    assert.equal(l.level, 'warn');
    assert.equal(l.trace_id, tracer.traceId);
    assert.equal(l.span_id, span.id);
    assert.equal(l.request_id, 'req_xyz');
    assert.equal(l.tenant_id, tenant);
    assert.equal(l.ticket_id, ticket);
    assert.equal(l.agent_id, agent);
    assert.equal(l.duration_ms, 45);
    assert.deepEqual(l.metadata, { queue: 'main' });
    assert.equal(Date.parse(l.timestamp), Date.parse(sent[1].timestamp));
    assert.equal(logs.find((x) => x.message === 'before any span').span_id, null);
  } finally {
    await proxy.close();
  }
});

test('spooled log lines are shipped by pushSpool', async () => {
  const tracer = new AgentTracer(...ctx(), opts({ url: await deadUrl(), timeoutMs: 1000, retries: 0 }));
  tracer.info('spooled line', { n: 1 });
  tracer.startSpan('a').end();
  assert.deepEqual(await tracer.flush(), { sent: 0, spooled: 2, dropped: 0 });
  const kinds = fs.readFileSync(tracer.spoolPath, 'utf8').trim().split('\n').map((l) => JSON.parse(l).kind);
  assert.deepEqual(kinds.sort(), ['log', 'span']);
  assert.deepEqual(await pushSpool(tracer.spoolPath, { url: collector.url }), { sent: 2, kept: 0, dropped: 0 },
    'needs a collector with POST /api/logs');
  const { logs } = await getJson(`/api/logs?trace_id=${tracer.traceId}`);
  assert.equal(logs.length, 1);
  assert.equal(logs[0].message, 'spooled line');
});

/** Runs `code` in a child node process with the tracer loaded; resolves {code, signal, stdout}. */
function child(code, { env = {}, onReady } = {}) {
  const script = `const { AgentTracer } = require(${JSON.stringify(TRACER)});\n${code}`;
  const proc = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, SWARMSCOPE_URL: collector.url, ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  const timer = setTimeout(() => proc.kill('SIGKILL'), 8000);
  proc.stdout.on('data', (c) => {
    stdout += c;
    if (onReady && stdout.includes('ready\n')) { const f = onReady; onReady = null; f(proc); }
  });
  return new Promise((resolve) => proc.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout }); }));
}

const AGENT = `
  const tracer = new AgentTracer('ticket_exit', 'agent_exit', 'tenant_001');
  const root = tracer.startSpan('agent.execute');
  tracer.startSpan('git.clone', { branch: 'main' }).end();
  console.log(tracer.traceId);
`;

for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]]) {
  test(`${signal} before flush: the exit hook flushes, then exits ${code}`, async () => {
    const r = await child(`${AGENT}\nconsole.log('ready'); setInterval(() => {}, 1000);`,
      { onReady: (p) => p.kill(signal) });
    assert.equal(r.code, code);
    const traceId = r.stdout.split('\n')[0];
    const { spans } = await getTrace(traceId);
    assert.equal(spans.length, 2);
    assert.notEqual(byName(spans, 'git.clone').end_time, null);
    assert.equal(byName(spans, 'agent.execute').end_time, null, 'the open span is announced');
  });
}

test('beforeExit: a process that ends without flushing still delivers its spans', async () => {
  const r = await child(`${AGENT}\nroot.end();
    const more = Array.from({ length: 20 }, (_, i) => new AgentTracer('t' + i, 'a', 'tenant_001'));
    more.forEach((t) => t.startSpan('extra').end());
    console.log(more.map((t) => t.traceId).join(','));
    console.log(['beforeExit', 'SIGTERM', 'SIGINT', 'exit'].map((e) => process.listenerCount(e)).join(','));`);
  assert.equal(r.code, 0);
  const [traceId, others, listeners] = r.stdout.split('\n');
  assert.equal(listeners, '1,1,1,1', 'hooks installed once for 21 tracers');
  const { spans } = await getTrace(traceId);
  assert.equal(spans.length, 2);
  assert.ok(spans.every((s) => s.end_time !== null));
  for (const id of others.split(',')) assert.equal((await getTrace(id)).spans.length, 1);
});

test('process.exit() without flush: pending spans go to the spool', async () => {
  const spool = path.join(tmp, 'exit-spool.jsonl');
  const r = await child(`${AGENT}\nroot.end(); process.exit(3);`, { env: { SWARMSCOPE_SPOOL: spool } });
  assert.equal(r.code, 3);
  const lines = fs.readFileSync(spool, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((l) => l.name).sort(), ['agent.execute', 'git.clone']);
  assert.deepEqual(await pushSpool(spool, { url: collector.url }), { sent: 2, kept: 0, dropped: 0 });
  assert.equal((await getTrace(r.stdout.split('\n')[0])).spans.length, 2);
});
