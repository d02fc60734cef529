// End-to-end test of the trace viewer: a real `swarmscope demo` (collector +
// simulated fleet) and a real headless Chromium driven over the DevTools
// protocol. Node built-ins only.
//
//   SWARMSCOPE_BIN=target/debug/swarmscope node --experimental-websocket --test crates/swarmscope-server/ui/test/
//
// Env: SWARMSCOPE_BIN (the binary under test), CHROMIUM_BIN (default `chromium`),
// UPDATE_SCREENSHOTS=1 (write the README screenshots into docs/screenshots/;
// otherwise they go to the temp dir only), E2E_UI_DIR (development only: the demo
// serves ui/ from this dir instead of the embedded copy, so UI edits show without
// a rebuild; SWARMSCOPE_UI_DIR itself is removed from the demo's environment).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '../../../..');
const BIN = process.env.SWARMSCOPE_BIN || path.join(REPO, 'target/debug/swarmscope');
const CHROMIUM = process.env.CHROMIUM_BIN || 'chromium';
const UPDATE = process.env.UPDATE_SCREENSHOTS === '1';
const SPAN_NAMES = ['http.request', 'ticket.claim', 'vm.spawn', 'agent.execute', 'git.clone', 'llm.generate',
  'file.write', 'git.commit', 'git.push', 'pr.create', 'ticket.complete'];
const STEP_MS = 20_000; // upper bound of any single wait in a test
const TEST = { timeout: 60_000 };

// Hard stop: whatever hangs, fail instead of blocking CI.
const children = new Set();
const watchdog = setTimeout(() => {
  console.error('viewer.test: global timeout (6 min), killing children');
  for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
  process.exit(1);
}, 6 * 60_000);
watchdog.unref();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error('timed out after ' + ms + ' ms: ' + what)), ms); })])
    .finally(() => clearTimeout(t));
}
// Resolves with the first line of a child's stream matching `re` (the match), or rejects.
function waitLine(child, stream, re, ms, what) {
  return withTimeout(new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i); buf = buf.slice(i + 1);
        const m = re.exec(line);
        if (m) { child[stream].off('data', onData); resolve(m); return; }
      }
    };
    child[stream].setEncoding('utf8');
    child[stream].on('data', onData);
    child.once('exit', (code) => reject(new Error(what + ': process exited (' + code + ') first')));
  }), ms, what);
}

// ---------------------------------------------------------------- a tiny CDP client
class Page {
  constructor(ws) {
    this.ws = ws; this.seq = 0; this.pending = new Map(); this.exceptions = [];
    ws.onmessage = (ev) => {
      const msg = JSON.parse(ev.data);
      if (msg.id != null) {
        const p = this.pending.get(msg.id);
        if (!p) return;
        this.pending.delete(msg.id);
        if (msg.error) p.reject(new Error(p.method + ': ' + msg.error.message)); else p.resolve(msg.result);
      } else if (msg.method === 'Runtime.exceptionThrown') {
        const d = msg.params.exceptionDetails;
        this.exceptions.push((d.exception && d.exception.description) || d.text);
      }
    };
    ws.onclose = () => { for (const p of this.pending.values()) p.reject(new Error('DevTools connection closed')); this.pending.clear(); };
  }
  static async connect(url) {
    const ws = new WebSocket(url);
    await withTimeout(new Promise((res, rej) => { ws.onopen = res; ws.onerror = () => rej(new Error('cannot connect to ' + url)); }), STEP_MS, 'DevTools websocket');
    const page = new Page(ws);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    return page;
  }
  send(method, params = {}) {
    const id = ++this.seq;
    return withTimeout(new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      this.ws.send(JSON.stringify({ id, method, params }));
    }), STEP_MS, method);
  }
  async evaluate(expr) {
    const r = await this.send('Runtime.evaluate', { expression: expr, returnByValue: true, awaitPromise: true });
    if (r.exceptionDetails) throw new Error('page: ' + ((r.exceptionDetails.exception && r.exceptionDetails.exception.description) || r.exceptionDetails.text) + '\n  in: ' + expr);
    return r.result.value;
  }
  // Polls a JS predicate until it is truthy; returns its value.
  async waitFor(expr, what = expr, ms = STEP_MS) {
    const end = Date.now() + ms;
    let last;
    for (;;) {
      try { last = await this.evaluate(expr); } catch (e) { last = e; }
      if (last && !(last instanceof Error)) return last;
      if (Date.now() > end) {
        const text = await this.evaluate('document.body ? document.body.innerText.slice(0, 600) : ""').catch(() => '?');
        throw new Error('waited ' + ms + ' ms for: ' + what + (last instanceof Error ? ' (' + last.message + ')' : '') + '\n  location: ' +
          await this.evaluate('location.href').catch(() => '?') + '\n  page text: ' + JSON.stringify(text));
      }
      await sleep(100);
    }
  }
  async navigate(url) {
    await this.send('Page.navigate', { url });
    await this.waitFor(`location.href === ${JSON.stringify(url)} && document.readyState === 'complete'`, 'load of ' + url);
  }
  // Hash routes: same-document navigation, as a user following a link.
  async go(hash) {
    await this.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  }
  click(testid, extra = '') { return this.clickSel(`[data-testid="${testid}"]${extra}`); }
  clickSel(sel) {
    return this.evaluate(`(() => { const el = document.querySelector(${JSON.stringify(sel)});
      if (!el) throw new Error('no element ' + ${JSON.stringify(sel)}); el.scrollIntoView({ block: 'nearest' }); el.click(); return true; })()`);
  }
  type(testid, text) {
    return this.evaluate(`(() => { const el = document.querySelector('[data-testid="${testid}"]');
      if (!el) throw new Error('no element ${testid}'); el.focus(); el.value = ${JSON.stringify(text)};
      el.dispatchEvent(new Event('input', { bubbles: true })); el.dispatchEvent(new Event('change', { bubbles: true })); return true; })()`);
  }
  count(testid, extra = '') { return this.evaluate(`document.querySelectorAll('[data-testid="${testid}"]${extra}').length`); }
  async screenshot(file) {
    await this.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    const r = await this.send('Page.captureScreenshot', { format: 'png' });
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, Buffer.from(r.data, 'base64'));
  }
  setViewport(width, height) {
    return this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
  }
  setColorScheme(value) {
    return this.send('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value }] });
  }
}

async function launchChromium(profileDir) {
  const proc = spawn(CHROMIUM, ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
    '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-background-networking',
    '--remote-debugging-port=0', '--user-data-dir=' + profileDir, '--window-size=1280,800', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const m = await waitLine(proc, 'stderr', /DevTools listening on (ws:\/\/\S+)/, STEP_MS, 'chromium start');
  proc.stderr.resume(); // keep draining
  const port = new URL(m[1]).port;
  let target;
  for (const end = Date.now() + STEP_MS; !target; await sleep(100)) {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    target = list.find((t) => t.type === 'page');
    if (!target && Date.now() > end) throw new Error('chromium has no page target');
  }
  return { proc, page: await Page.connect(target.webSocketDebuggerUrl) };
}

// ---------------------------------------------------------------- fixtures
const S = {}; // shared state: tmp, demo, base, keys, plan picks, page, ...

async function api(key, p) {
  const res = await fetch(S.base + p, { headers: { Authorization: 'Bearer ' + key } });
  assert.equal(res.status, 200, 'GET ' + p + ' -> ' + res.status);
  return res.json();
}
// The ticket's work trace: the one with the most spans.
async function workTrace(ticketId, tenant) {
  const r = await api(S.keys.admin, `/api/tickets/${encodeURIComponent(ticketId)}/traces?tenant_id=${tenant}`);
  assert.ok(r.traces.length > 0, 'ticket ' + ticketId + ' has traces');
  return r.traces.reduce((a, b) => (b.span_count > a.span_count ? b : a));
}
const traceHash = (t) => `#/trace/${encodeURIComponent(t.trace_id)}?tenant_id=${encodeURIComponent(t.tenant_id)}`;
function shot(name) {
  const dir = UPDATE ? path.join(REPO, 'docs/screenshots') : path.join(S.tmp, 'screenshots');
  return S.page.screenshot(path.join(dir, name));
}

// Sign in through the form (signing out first when needed).
async function signIn(key) {
  const P = S.page;
  const state = await P.evaluate(`document.querySelector('[data-testid="signout"]') ? 'in' : document.querySelector('[data-testid="signin-key"]') ? 'form' : 'none'`);
  if (state === 'none') await P.navigate(S.base + '/');
  if (state === 'in') await P.click('signout');
  await P.waitFor(`!!document.querySelector('[data-testid="signin-key"]')`, 'sign-in form');
  await P.type('signin-key', key);
  await P.click('signin-submit');
  await P.waitFor(`!!document.querySelector('[data-testid="signout"]')`, 'signed-in shell');
}
// Every span row of the (virtualised) waterfall: scrolls it top to bottom.
async function allSpanRows() {
  const P = S.page;
  const rows = new Map();
  await P.evaluate(`document.querySelector('[data-testid="waterfall"]').scrollTop = 0`);
  for (let i = 0; i < 400; i++) {
    await P.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    const r = await P.evaluate(`(() => {
      const sc = document.querySelector('[data-testid="waterfall"]');
      const rows = [...sc.querySelectorAll('[data-testid="span-row"]')].map((e) => ({ id: e.dataset.spanId, name: e.dataset.spanName,
        incomplete: e.dataset.incomplete === 'true', status: e.dataset.status, depth: Number(e.dataset.depth), text: e.innerText }));
      const atEnd = sc.scrollTop + sc.clientHeight >= sc.scrollHeight - 1;
      sc.scrollTop += Math.max(28, sc.clientHeight - 56);
      return { rows, atEnd };
    })()`);
    for (const row of r.rows) rows.set(row.id, row);
    if (r.atEnd) break;
  }
  await P.evaluate(`document.querySelector('[data-testid="waterfall"]').scrollTop = 0`);
  return [...rows.values()];
}
async function openTrace(t) {
  const P = S.page;
  await P.go(traceHash(t));
  await P.waitFor(`location.hash.startsWith(${JSON.stringify('#/trace/' + t.trace_id)}) && document.querySelectorAll('[data-testid="span-row"]').length > 0`,
    'span rows of trace ' + t.trace_id);
}

before(async () => {
  assert.ok(fs.existsSync(BIN), 'SWARMSCOPE_BIN must name the swarmscope binary (tried ' + BIN + ')');
  S.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'swarmscope-ui-e2e-'));
  const data = path.join(S.tmp, 'data');
  fs.mkdirSync(data);

  // The seeded plan: which tickets complete and which get killed.
  const plan = execFileSync(BIN, ['demo', '--seed', '2', '--plan', '60'], { encoding: 'utf8', timeout: STEP_MS })
    .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  assert.equal(plan.length, 60);
  S.completed = plan.find((p) => p.outcome === 'completed');
  S.killed = plan.find((p) => p.outcome === 'killed');
  assert.ok(S.completed && S.killed, 'seed 2 plans a completed and a killed ticket');

  // The UI under test is the one embedded in the binary; E2E_UI_DIR (development
  // only) serves ui/ from disk instead, to try UI edits without a rebuild.
  const env = { ...process.env };
  delete env.SWARMSCOPE_UI_DIR;
  if (process.env.E2E_UI_DIR) env.SWARMSCOPE_UI_DIR = process.env.E2E_UI_DIR;
  S.demo = spawn(BIN, ['demo', '--agents', '12', '--tenants', '3', '--speed', '600', '--seed', '2', '--tickets', '60',
    '--listen', '127.0.0.1:0', '--data-dir', data], { stdio: ['ignore', 'pipe', 'pipe'], env });
  children.add(S.demo);
  S.demoExit = new Promise((r) => S.demo.once('exit', (code, signal) => { children.delete(S.demo); r({ code, signal }); }));
  S.demoErr = '';
  S.demo.stderr.setEncoding('utf8');
  S.demo.stderr.on('data', (d) => { S.demoErr = (S.demoErr + d).slice(-4000); });
  const listening = waitLine(S.demo, 'stdout', /^swarmscope \S+ demo listening on (http:\/\/\S+)/, STEP_MS, 'demo start');
  // both listeners are attached before any output is read
  const finished = waitLine(S.demo, 'stdout', /^fleet finished/, 150_000, 'demo fleet to finish');
  S.base = (await listening)[1].replace(/\/$/, '');
  await finished;
  S.demo.stdout.resume(); // keep draining its progress lines
  S.keys = JSON.parse(fs.readFileSync(path.join(data, 'demo-keys.json'), 'utf8'));
  assert.ok(S.keys.admin && S.keys.tenants.acme.read && S.keys.tenants.globex.read, 'demo keys');

  const browser = await launchChromium(path.join(S.tmp, 'chromium'));
  S.chromium = browser.proc;
  S.page = browser.page;
  await S.page.setViewport(1280, 800);
  await S.page.setColorScheme('light');
}, { timeout: 200_000 });

after(async () => {
  if (S.chromium && S.chromium.exitCode == null) {
    const gone = new Promise((r) => S.chromium.once('exit', r));
    if (S.page) S.page.send('Browser.close').catch(() => { /* the connection drops as it closes */ });
    await withTimeout(gone, 10_000, 'chromium exit').catch(() => S.chromium.kill('SIGKILL'));
  }
  let demo = null;
  if (S.demo) {
    const early = S.demo.exitCode != null || S.demo.signalCode != null;
    if (!early) S.demo.kill('SIGINT');
    demo = await withTimeout(S.demoExit, 15_000, 'demo exit after SIGINT')
      .catch((e) => { S.demo.kill('SIGKILL'); return { error: e.message }; });
    if (early) demo = { exitedBeforeSigint: true, ...demo };
  }
  if (S.tmp) fs.rmSync(S.tmp, { recursive: true, force: true, maxRetries: 3 });
  if (demo) assert.deepEqual(demo, { code: 0, signal: null }, 'the demo serves until SIGINT, then exits 0; stderr tail:\n' + S.demoErr);
}, { timeout: 30_000 });

// ---------------------------------------------------------------- tests
// Each test; on failure a screenshot and the page text are kept for debugging
// (the temp dir itself is removed).
function e2e(name, fn) {
  test(name, TEST, async () => {
    try {
      await fn();
    } catch (e) {
      if (S.page) {
        const dir = path.join(os.tmpdir(), 'swarmscope-ui-e2e-failures');
        const base = path.join(dir, name.replace(/[^a-z0-9]+/gi, '-').slice(0, 60));
        try {
          await S.page.screenshot(base + '.png');
          fs.writeFileSync(base + '.txt', await S.page.evaluate('location.href + "\\n\\n" + document.body.innerText'));
          console.error('viewer.test: failure artefacts in ' + base + '.{png,txt}');
        } catch { /* the browser is gone */ }
      }
      throw e;
    }
  });
}
e2e('sign in: a wrong key is refused, the admin key reaches the search view', async () => {
  const P = S.page;
  await P.navigate(S.base + '/');
  await P.waitFor(`!!document.querySelector('[data-testid="signin-key"]')`, 'sign-in form');
  await P.type('signin-key', 'ssk_not_a_real_key');
  await P.click('signin-submit');
  const err = await P.waitFor(`(() => { const e = document.querySelector('[data-testid="signin-error"]'); return e && !e.hidden && e.textContent; })()`, 'sign-in error');
  assert.match(err, /401|not accepted/);
  assert.equal(await P.count('signout'), 0, 'still signed out');

  await P.type('signin-key', S.keys.admin);
  await P.click('signin-submit');
  await P.waitFor(`!!document.querySelector('[data-testid="signout"]') && !!document.querySelector('[data-testid="filter-ticket"]')`, 'search view');
  assert.match(await P.evaluate(`document.querySelector('.ident').textContent`), /admin/);
  // admins get a tenant picker listing the three demo tenants
  const tenants = await P.evaluate(`[...document.querySelectorAll('[data-testid="filter-tenant"] option')].map((o) => o.value).filter(Boolean)`);
  assert.deepEqual(tenants.sort(), ['acme', 'globex', 'initech']);
  const n = await P.waitFor(`document.querySelectorAll('[data-testid="trace-row"]').length`, 'trace rows');
  assert.ok(n >= 20, 'unfiltered search lists traces (' + n + ')');
  await P.waitFor(`document.querySelectorAll('[data-testid="plot-dot"]').length > 0`, 'scatter plot dots');
  await shot('search.png');
});

e2e('search by ticket: filters go into the URL and list the ticket\'s traces', async () => {
  const P = S.page;
  const id = S.completed.ticket_id;
  await P.go('#/search');
  await P.waitFor(`!!document.querySelector('[data-testid="filter-ticket"]')`, 'search form');
  await P.type('filter-ticket', id);
  await P.click('search-submit');
  await P.waitFor(`location.hash.includes(${JSON.stringify('ticket_id=' + encodeURIComponent(id))})`, 'ticket filter in the hash URL');
  const expected = await api(S.keys.admin, `/api/traces?ticket_id=${encodeURIComponent(id)}&limit=100`);
  assert.ok(expected.traces.length > 0);
  // wait for the filtered result (not rows left from the unfiltered search)
  await P.waitFor(`(() => { const rows = [...document.querySelectorAll('[data-testid="trace-row"]')];
    return rows.length === ${expected.traces.length} && rows.every((r) => r.innerText.includes(${JSON.stringify(id)})); })()`, 'result rows of ' + id);
  const rows = await P.evaluate(`[...document.querySelectorAll('[data-testid="trace-row"]')].map((r) => ({ id: r.dataset.traceId, tenant: r.dataset.tenantId, text: r.innerText }))`);
  assert.deepEqual(rows.map((r) => r.id).sort(), expected.traces.map((t) => t.trace_id).sort(), 'rows = the API\'s traces of the ticket');
  for (const r of rows) {
    assert.equal(r.tenant, S.completed.tenant);
    assert.ok(r.text.includes(id), 'row shows the ticket id');
  }
  // the URL alone restores the search (filters live in the URL)
  assert.equal(await P.evaluate(`document.querySelector('[data-testid="filter-ticket"]').value`), id);
});

e2e('the completed ticket\'s work trace shows all eleven span names', async () => {
  const P = S.page;
  S.work = await workTrace(S.completed.ticket_id, S.completed.tenant);
  // open it from the search results (the row with the most spans)
  await P.waitFor(`!!document.querySelector('[data-testid="trace-row"][data-trace-id="${S.work.trace_id}"]')`, 'work trace row');
  await P.click('trace-row', `[data-trace-id="${S.work.trace_id}"]`);
  await P.waitFor(`location.hash.startsWith(${JSON.stringify('#/trace/' + S.work.trace_id)}) && document.querySelectorAll('[data-testid="span-row"]').length > 0`, 'waterfall');
  const rows = await allSpanRows();
  assert.equal(rows.length, S.work.span_count, 'one row per span');
  const names = new Set(rows.map((r) => r.name));
  for (const n of SPAN_NAMES) assert.ok(names.has(n), 'waterfall has a ' + n + ' row');
  assert.equal(rows.filter((r) => r.depth === 0).length, 1, 'a single root');
  assert.equal(rows.find((r) => r.depth === 0).name, 'http.request');
  // the time ruler sits exactly over the rows' timelines (scrollbar or not)
  const al = await P.evaluate(`(() => { const r = document.querySelector('.wf-ruler').getBoundingClientRect();
    const t = document.querySelector('[data-testid="span-row"] .wf-timeline').getBoundingClientRect();
    return { dl: r.left - t.left, dr: r.right - t.right }; })()`);
  assert.ok(Math.abs(al.dl) <= 1 && Math.abs(al.dr) <= 1, 'ruler aligned with the timelines: ' + JSON.stringify(al));
});

e2e('clicking an llm.generate row opens its detail with model, tokens and cost', async () => {
  const P = S.page;
  const sel = '[data-testid="span-row"][data-span-name="llm.generate"][data-status="ok"]';
  await P.waitFor(`!!document.querySelector('${sel}')`, 'an llm.generate row');
  const spanId = await P.evaluate(`document.querySelector('${sel}').dataset.spanId`);
  await P.clickSel(sel);
  await P.waitFor(`(() => { const d = document.querySelector('[data-testid="span-detail"]'); return d && !d.hidden && d.querySelector('h2').textContent === 'llm.generate'; })()`, 'span detail');
  const keys = await P.evaluate(`[...document.querySelectorAll('[data-testid="span-detail"] [data-testid="span-attr"]')].map((r) => r.dataset.key)`);
  for (const k of ['model', 'input_tokens', 'output_tokens', 'swarm.cost_usd']) assert.ok(keys.includes(k), 'detail shows attribute ' + k + ' (has ' + keys + ')');
  const model = await P.evaluate(`document.querySelector('[data-testid="span-attr"][data-key="model"] td').textContent`);
  assert.match(model, /^claude-/);
  assert.ok(await P.evaluate(`location.hash.includes('span=${spanId}')`), 'selected span is in the URL');
  assert.ok(await P.evaluate(`document.querySelector('[data-testid="span-row"][data-span-id="${spanId}"]').classList.contains('selected')`), 'row is marked selected');
  await shot('trace.png');
  await P.setColorScheme('dark');
  await P.waitFor(`matchMedia('(prefers-color-scheme: dark)').matches`, 'dark scheme');
  const bg = await P.evaluate(`getComputedStyle(document.body).backgroundColor`);
  await shot('trace-dark.png');
  await P.setColorScheme('light');
  assert.notEqual(bg, await P.evaluate(`getComputedStyle(document.body).backgroundColor`), 'dark scheme changes the page colours');
  await P.setViewport(400, 800);
  await P.waitFor('innerWidth === 400', 'narrow viewport');
  const overflow = await P.evaluate('document.documentElement.scrollWidth - innerWidth');
  await shot('narrow.png');
  await P.setViewport(1280, 800);
  assert.ok(overflow <= 0, 'no horizontal page scroll at 400 px (' + overflow + ' px too wide)');
});

e2e('logs: the trace\'s log lines link to their spans', async () => {
  const P = S.page;
  const n = await P.waitFor(`document.querySelectorAll('[data-testid="log-line"]').length`, 'log lines');
  const doc = await api(S.keys.admin, `/api/traces/${S.work.trace_id}?tenant_id=${S.work.tenant_id}`);
  assert.ok(n >= 4, 'at least 4 log lines (' + n + ')');
  assert.equal(n, Math.min(doc.logs.length, 500), 'one line per log of the trace');
  // follow the link of a log line whose span is not the selected one
  const current = await P.evaluate(`new URLSearchParams(location.hash.split('?')[1]).get('span')`);
  const target = await P.evaluate(`(() => {
    const line = [...document.querySelectorAll('[data-testid="log-line"]')].find((l) => l.dataset.spanId && l.dataset.spanId !== ${JSON.stringify(current)} && l.querySelector('[data-testid="log-span-link"]'));
    line.querySelector('[data-testid="log-span-link"]').click();
    return { id: line.dataset.spanId, label: line.querySelector('[data-testid="log-span-link"]').textContent };
  })()`);
  const name = target.label.replace(/^→\s*/, '');
  await P.waitFor(`location.hash.includes('span=${target.id}')`, 'log link selects its span');
  await P.waitFor(`(() => { const d = document.querySelector('[data-testid="span-detail"]'); return !d.hidden && d.querySelector('h2').textContent === ${JSON.stringify(name)}; })()`, 'detail of the linked span');
  assert.ok(await P.evaluate(`!!document.querySelector('[data-testid="span-row"][data-span-id="${target.id}"].selected')`), 'linked span row is selected and rendered');
});

e2e('cost: the LLM total equals the sum of llm.generate swarm.cost_usd', async () => {
  const P = S.page;
  const doc = await api(S.keys.admin, `/api/traces/${S.work.trace_id}?tenant_id=${S.work.tenant_id}`);
  const sum = doc.spans.filter((s) => s.name === 'llm.generate').reduce((a, s) => a + (Number(s.attributes['swarm.cost_usd']) || 0), 0);
  const text = await P.waitFor(`document.querySelector('[data-testid="llm-cost-total"]')?.textContent`, 'LLM cost total');
  assert.match(text, /^\$\d+\.\d+$/);
  const shown = Number(text.slice(1));
  assert.ok(shown > 0, 'cost > $0 (' + text + ')');
  assert.ok(Math.abs(shown - sum) < 0.005, `UI total ${text} equals the API sum $${sum.toFixed(4)} to the cent`);
  const header = Number((await P.evaluate(`document.querySelector('[data-testid="trace-cost"]').textContent`)).slice(1));
  assert.ok(Math.abs(header - doc.trace.cost_usd) < 0.005, 'header cost equals the trace summary\'s cost_usd');
});

e2e('incomplete: the killed ticket\'s agent.execute is marked INCOMPLETE', async () => {
  const P = S.page;
  const t = await workTrace(S.killed.ticket_id, S.killed.tenant);
  await openTrace(t);
  const rows = await allSpanRows();
  const inc = rows.filter((r) => r.incomplete);
  assert.ok(inc.length >= 1, 'at least one incomplete span row');
  const agent = inc.find((r) => r.name === 'agent.execute');
  assert.ok(agent, 'agent.execute is incomplete (incomplete: ' + inc.map((r) => r.name) + ')');
  assert.equal(agent.status, 'error');
  assert.match(agent.text, /INCOMPLETE/, 'row shows an INCOMPLETE badge');
  // the badge is really visible: laid out, opaque, inside its row
  const vis = await P.evaluate(`(() => {
    const row = document.querySelector('[data-testid="span-row"][data-incomplete="true"][data-span-name="agent.execute"]');
    const b = row.querySelector('.badge.incomplete'), rr = row.getBoundingClientRect(), br = b.getBoundingClientRect(), cs = getComputedStyle(b);
    const label = row.querySelector('.wf-label').getBoundingClientRect();
    return { w: br.width, h: br.height, inRow: br.left >= label.left - 1 && br.right <= label.right + 1 && br.top >= rr.top - 1 && br.bottom <= rr.bottom + 1,
      shown: cs.visibility !== 'hidden' && cs.display !== 'none' && Number(cs.opacity) > 0.5,
      bar: row.querySelector('.bar').classList.contains('incomplete') };
  })()`);
  assert.ok(vis.w > 10 && vis.h > 8 && vis.shown && vis.inRow, 'INCOMPLETE badge is visible: ' + JSON.stringify(vis));
  assert.ok(vis.bar, 'the bar is drawn as incomplete');
  assert.match(await P.evaluate(`document.querySelector('.trace-header').innerText`), /INCOMPLETE/, 'trace header flags it');
  await shot('incomplete.png');
});

e2e('tenancy: a tenant key sees only its tenant', async () => {
  const P = S.page;
  const globex = (await api(S.keys.admin, '/api/traces?tenant_id=globex&limit=1')).traces[0];
  assert.ok(globex, 'globex has traces');
  await signIn(S.keys.tenants.acme.read);
  await P.go('#/search');
  assert.match(await P.evaluate(`document.querySelector('.ident').textContent`), /tenant acme/);
  assert.equal(await P.count('filter-tenant'), 0, 'no tenant picker for a tenant key');
  await P.waitFor(`document.querySelectorAll('[data-testid="trace-row"]').length > 0 && !document.querySelector('.results .loading')`, 'acme rows');
  const tenants = await P.evaluate(`[...document.querySelectorAll('[data-testid="trace-row"]')].map((r) => r.dataset.tenantId)`);
  assert.ok(tenants.length > 0);
  assert.deepEqual([...new Set(tenants)], ['acme'], 'every row is acme');

  for (const hash of [traceHash(globex), `#/trace/${globex.trace_id}`]) {
    await P.go(hash);
    const err = await P.waitFor(`document.querySelector('[data-testid="error-message"]')?.textContent`, 'error for another tenant\'s trace ' + hash);
    assert.match(err, /not found|not allowed|403|404/i);
    assert.equal(await P.count('span-row'), 0, 'no span rows of globex');
    assert.equal(await P.count('waterfall'), 0, 'no waterfall');
    assert.ok(!(await P.evaluate('document.body.innerText')).includes(globex.ticket_id), 'nothing of the globex trace is shown');
  }
  // still signed in: a refused read is not a sign-out
  assert.equal(await P.count('signout'), 1);
});

e2e('live: the admin search view shows the status strip', async () => {
  const P = S.page;
  await signIn(S.keys.admin);
  await P.go('#/search');
  const text = await P.waitFor(`(() => { const s = document.querySelector('[data-testid="status-strip"]'); return s && !s.hidden && s.innerText; })()`, 'visible status strip');
  assert.match(text, /Live|Reconnecting/);
});

e2e('the page threw no uncaught exceptions', () => {
  assert.deepEqual(S.page.exceptions, []);
});
