'use strict';
/*
 * swarmscope agent tracer for Node.js 20+: one file, no dependencies.
 *
 * Why it exists: the Project Swarm design chose a hybrid observability stack,
 * prom-client for metrics but a small custom `AgentTracer` for traces and a custom
 * JSON logger, because the full OpenTelemetry SDK costs ~15 MB per microVM (x1000
 * VMs) against ~1 MB for a custom tracer, and its async batching loses spans when
 * a VM is killed. This file is a drop-in for the seed's `AgentTracer` that keeps its
 * API and wire format and fixes what the seed left open:
 *   - one POST per flush (batched up to maxBatchBytes) instead of one per span;
 *   - W3C ids and parent/child spans, plus `traceparent` headers to propagate them;
 *   - seed-format log lines correlated with the trace, shipped by the same flush;
 *   - a flush with a deadline, retries with backoff (Retry-After honoured), and a
 *     local JSON-lines spool when the collector cannot be reached; `pushSpool`
 *     ships the spool later;
 *   - exit hooks that flush on beforeExit, SIGTERM and SIGINT.
 * Recording (startSpan, addEvent, end, log...) never does I/O; only flush does.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const STATUSES = new Set(['ok', 'error', 'unset']);
const LEVELS = { trace: 'debug', debug: 'debug', info: 'info', warn: 'warn', warning: 'warn',
  error: 'error', fatal: 'fatal', critical: 'fatal' };
const MAX_ITEMS_PER_POST = 10000; // the collector's per-request limit
const NOT_SENT = 0, ANNOUNCED = 1, COMPLETE = 2; // what the collector has of a span

/** Random lowercase hex id of `bytes` bytes, never all zeros (W3C forbids it). */
function randomId(bytes) {
  for (;;) {
    const hex = crypto.randomBytes(bytes).toString('hex');
    if (/[^0]/.test(hex)) return hex;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const warn = (msg) => { try { process.stderr.write(`swarmscope tracer: ${msg}\n`); } catch { /* ignore */ } };

/** Seconds or an HTTP date, as milliseconds to wait; undefined if absent or bad. */
function retryAfterMs(value) {
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * POSTs `body` to `url`, retrying network errors, 5xx and 429 with exponential
 * backoff (100 ms, 200 ms, ...; at least Retry-After) as long as `deadline` allows.
 * Resolves to { ok } | { ok: false, refused: true, status, message } (a 4xx that
 * would be refused again) | { ok: false, refused: false, message } (give up for now).
 */
async function post(url, body, { apiKey, deadline, retries }) {
  const headers = { 'Content-Type': 'application/json' };
  if (apiKey) headers.Authorization = `Bearer ${apiKey}`;
  let message = 'deadline passed before the first attempt';
  for (let attempt = 0; attempt <= retries; attempt++) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    let wait = 100 * 2 ** attempt;
    try {
      const res = await fetch(url, { method: 'POST', headers, body, signal: AbortSignal.timeout(left) });
      const text = await res.text().catch(() => '');
      if (res.status === 202) return { ok: true }; // the collector's "committed"
      message = `HTTP ${res.status} from ${url}: ${text.slice(0, 200)}`;
      if (res.status >= 400 && res.status < 500 && res.status !== 429) {
        return { ok: false, refused: true, status: res.status, message };
      }
      const after = retryAfterMs(res.headers.get('retry-after'));
      if (after !== undefined) wait = Math.max(wait, after);
    } catch (err) {
      message = `POST ${url} failed: ${err.cause?.code || err.name}: ${err.message}`;
    }
    if (attempt === retries || Date.now() + wait >= deadline) break;
    await sleep(wait);
  }
  return { ok: false, refused: false, message };
}

/** Groups serialized items so each POST body stays under maxBytes (and the item limit). */
function batches(items, maxBytes) {
  const out = [];
  let cur = [], size = 0;
  for (const item of items) {
    const n = Buffer.byteLength(item.json) + 1;
    if (cur.length && (size + n + 16 > maxBytes || cur.length >= MAX_ITEMS_PER_POST)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(item);
    size += n;
  }
  if (cur.length) out.push(cur);
  return out;
}

const bodyOf = (kind, batch) => `{"${kind}":[${batch.map((i) => i.json).join(',')}]}`;

// ---- exit hooks: installed once per process, flush every live tracer ----------
const live = new Set(); // tracers with something unsent or an open span
let hooksInstalled = false;

function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  // The event loop is empty: flush what is pending. When the flush is done the
  // loop empties again and, nothing being pending any more, the process exits.
  process.on('beforeExit', () => {
    const busy = [...live].filter((t) => t._hasPending());
    if (busy.length) Promise.all(busy.map((t) => t.flush()));
  });
  // A listener replaces Node's default "die at once", so we exit ourselves after
  // the flush (its deadline bounds the wait), with the usual 128+signal code. A
  // second signal while flushing exits at once.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    let stopping = false;
    process.on(signal, () => {
      const code = 128 + os.constants.signals[signal];
      if (stopping) process.exit(code);
      stopping = true;
      Promise.all([...live].map((t) => t.flush())).finally(() => process.exit(code));
    });
  }
  // process.exit() called without a flush: no async work is possible any more,
  // so whatever is still pending goes to the spool synchronously.
  process.on('exit', () => {
    for (const t of live) t._spoolPendingSync();
  });
}

class AgentTracer {
  /**
   * @param {string} ticketId @param {string} agentId @param {string} tenantId
   * @param {object} [options] url, apiKey, vmId, service, timeoutMs, retries,
   *   spoolPath, maxBatchBytes, installExitHooks, traceparent (continue a trace)
   */
  constructor(ticketId, agentId, tenantId, options = {}) {
    const env = process.env;
    this.context = { ticketId, agentId, tenantId };
    this.url = String(options.url || env.SWARMSCOPE_URL || 'http://127.0.0.1:4318').replace(/\/+$/, '');
    this.apiKey = options.apiKey ?? env.SWARMSCOPE_API_KEY;
    this.vmId = options.vmId ?? env.SWARMSCOPE_VM_ID;
    this.service = options.service ?? env.SWARMSCOPE_SERVICE;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.retries = options.retries ?? 3;
    this.spoolPath = options.spoolPath || env.SWARMSCOPE_SPOOL ||
      path.join(os.tmpdir(), `swarmscope-spool-${process.pid}.jsonl`);
    this.maxBatchBytes = options.maxBatchBytes ?? 4 * 1024 * 1024;
    this.hooks = options.installExitHooks !== false;
    // An incoming `00-<trace>-<parent>-<flags>` makes this tracer continue that trace.
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/.exec(options.traceparent || '');
    this.traceId = m ? m[1] : randomId(16);
    this._remoteParent = m ? m[2] : undefined;
    this._spans = []; // { rec, ended, sent }: every span not yet sent complete
    this._logs = []; // { line, sent }
    this._open = []; // open spans, oldest first: the last one is the current span
    this._chain = Promise.resolve(); // serializes flushes
    this._warned = new Set();
  }

  /** The seed's `tracer.spans`: span records not yet sent complete. */
  get spans() { return this._spans.map((s) => s.rec); }

  /** The current span's id: the most recently started span that has not ended. */
  get currentSpanId() { return this._open.length ? this._open[this._open.length - 1].rec.id : undefined; }

  /**
   * Starts a span. `parent`: a span handle or span id; omitted, the current span
   * (or none: a root); `null`, a root explicitly. Returns the seed's span handle.
   */
  startSpan(name, attributes = {}, parent) {
    const parentId = parent === undefined ? (this.currentSpanId ?? this._remoteParent)
      : parent === null ? undefined : typeof parent === 'string' ? parent : parent.id;
    const rec = { id: randomId(8), name: String(name), startTime: new Date().toISOString(),
      attributes: { ...attributes }, events: [], status: 'unset' };
    if (parentId) rec.parent_span_id = parentId;
    const s = { rec, ended: false, sent: NOT_SENT };
    this._spans.push(s);
    this._open.push(s);
    this._track();
    return {
      id: rec.id,
      addEvent: (eventName, eventAttrs = {}) => {
        rec.events.push({ name: String(eventName), timestamp: new Date().toISOString(), attributes: { ...eventAttrs } });
      },
      // Unknown statuses become 'unset': the collector would refuse the whole batch.
      setStatus: (status, message) => {
        const st = String(status).toLowerCase();
        rec.status = STATUSES.has(st) ? st : 'unset';
        if (message !== undefined) rec.status_message = String(message);
      },
      setAttribute: (key, value) => { rec.attributes[key] = value; },
      end: () => {
        if (s.ended) return;
        s.ended = true;
        rec.endTime = new Date().toISOString();
        rec.durationMs = new Date(rec.endTime) - new Date(rec.startTime);
        const i = this._open.lastIndexOf(s);
        if (i >= 0) this._open.splice(i, 1);
      },
      traceparent: () => this.traceparent(rec.id),
    };
  }

  /**
   * W3C `traceparent` for an outgoing call made inside `span` (a handle or id;
   * default the current span). With no span at all it names the incoming parent,
   * or a stable per-tracer id, so the callee's spans still join this trace.
   */
  traceparent(span) {
    let id = typeof span === 'string' ? span : span?.id;
    if (!id) id = this.currentSpanId || this._remoteParent || (this._rootId ??= randomId(8));
    return `00-${this.traceId}-${id}-01`;
  }

  /** Headers to add to an outgoing HTTP request. */
  headers(span) { return { traceparent: this.traceparent(span), 'X-Trace-ID': this.traceId }; }

  /**
   * Records a seed-format log line. `metadata.request_id` and `metadata.duration_ms`
   * are lifted to the line's own fields; the rest stays in `metadata`.
   */
  log(level, message, metadata = {}) {
    const meta = metadata && typeof metadata === 'object' ? metadata : metadata == null ? {} : { value: metadata };
    const { request_id, requestId, duration_ms, durationMs, ...rest } = meta;
    const line = { timestamp: new Date().toISOString(), level: LEVELS[String(level).toLowerCase()] || 'info',
      message: String(message), trace_id: this.traceId };
    if ((request_id ?? requestId) != null) line.request_id = request_id ?? requestId;
    Object.assign(line, { tenant_id: this.context.tenantId, ticket_id: this.context.ticketId,
      agent_id: this.context.agentId });
    if (this.currentSpanId) line.span_id = this.currentSpanId;
    if (typeof (duration_ms ?? durationMs) === 'number') line.duration_ms = duration_ms ?? durationMs;
    line.metadata = rest;
    this._logs.push({ line, sent: false });
    this._track();
  }
  debug(message, metadata) { this.log('debug', message, metadata); }
  info(message, metadata) { this.log('info', message, metadata); }
  warn(message, metadata) { this.log('warn', message, metadata); }
  error(message, metadata) { this.log('error', message, metadata); }
  fatal(message, metadata) { this.log('fatal', message, metadata); }

  /**
   * Sends every pending span and log line; never throws. Resolves to
   * { sent, spooled, dropped } counted in items (spans + log lines).
   * Flushes are serialized: a second call waits for the first, then sends only
   * what is still pending.
   */
  flush() {
    const run = this._chain.then(() => this._flushNow()).catch((err) => {
      warn(`flush failed unexpectedly: ${err && err.stack}`);
      return { sent: 0, spooled: 0, dropped: 0 };
    });
    this._chain = run;
    return run;
  }

  async _flushNow() {
    const deadline = Date.now() + this.timeoutMs;
    const result = { sent: 0, spooled: 0, dropped: 0 };
    // Snapshot: serialize now, so later changes to a span are sent by a later flush.
    const spans = this._spans.filter(pending).map((s) => ({ s, done: s.ended ? COMPLETE : ANNOUNCED,
      json: JSON.stringify(this._wire(s.rec)) }));
    const logs = this._logs.filter((l) => !l.sent).map((l) => ({ l, json: JSON.stringify(l.line) }));
    const mark = (item) => {
      if (item.s) item.s.sent = Math.max(item.s.sent, item.done);
      else item.l.sent = true;
    };
    let warnedSpool = false;
    for (const [kind, route, items] of [['spans', '/api/traces', spans], ['logs', '/api/logs', logs]]) {
      for (const batch of batches(items, this.maxBatchBytes)) {
        const r = Date.now() >= deadline ? { ok: false, refused: false, message: 'flush deadline passed' }
          : await post(this.url + route, bodyOf(kind, batch), { apiKey: this.apiKey, deadline, retries: this.retries });
        if (r.ok) {
          result.sent += batch.length;
        } else if (r.refused) { // would be refused again: neither retried nor spooled
          result.dropped += batch.length;
          if (!this._warned.has(r.status)) warn(`dropped ${batch.length} ${kind} (not retried): ${r.message}`);
          this._warned.add(r.status);
        } else {
          if (!warnedSpool) warn(`${r.message}; spooling to ${this.spoolPath}`);
          warnedSpool = true;
          const tag = item => `{"kind":"${item.s ? 'span' : 'log'}",${item.json.slice(1)}`;
          if (this._appendSpool(batch.map(tag))) result.spooled += batch.length;
          else result.dropped += batch.length;
        }
        batch.forEach(mark); // handed over one way or another: not sent again in this form
      }
    }
    this._compact();
    return result;
  }

  /** The seed's wire format: { ...context, trace_id, ...span } plus the extras. */
  _wire(rec) {
    const o = { ...this.context, trace_id: this.traceId, id: rec.id, name: rec.name, startTime: rec.startTime,
      attributes: rec.attributes, events: rec.events, status: rec.status };
    if (rec.endTime !== undefined) Object.assign(o, { endTime: rec.endTime, durationMs: rec.durationMs });
    if (rec.parent_span_id) o.parent_span_id = rec.parent_span_id;
    if (this.vmId != null) o.vm_id = this.vmId;
    if (this.service != null) o.service = this.service;
    if (rec.status_message !== undefined) o.status_message = rec.status_message;
    return o;
  }

  /** Appends JSON lines to the spool in one write; false (and a warning) if it fails. */
  _appendSpool(lines) {
    if (!lines.length) return true;
    try {
      fs.appendFileSync(this.spoolPath, lines.join('\n') + '\n');
      return true;
    } catch (err) {
      warn(`cannot write spool ${this.spoolPath}: ${err.message}; ${lines.length} items lost`);
      return false;
    }
  }

  /** At process exit: spool whatever is pending, synchronously. */
  _spoolPendingSync() {
    const spans = this._spans.filter(pending);
    const logs = this._logs.filter((l) => !l.sent);
    const lines = [...spans.map((s) => JSON.stringify({ kind: 'span', ...this._wire(s.rec) })),
      ...logs.map((l) => JSON.stringify({ kind: 'log', ...l.line }))];
    if (this._appendSpool(lines)) {
      spans.forEach((s) => { s.sent = s.ended ? COMPLETE : ANNOUNCED; });
      logs.forEach((l) => { l.sent = true; });
    }
  }

  _hasPending() { return this._logs.some((l) => !l.sent) || this._spans.some(pending); }

  _track() {
    if (!this.hooks) return;
    installExitHooks();
    live.add(this);
  }

  /** Forgets what the collector has complete; leaves the registry when idle. */
  _compact() {
    this._spans = this._spans.filter((s) => s.sent !== COMPLETE);
    this._logs = this._logs.filter((l) => !l.sent);
    if (!this._spans.length && !this._logs.length) live.delete(this);
  }
}

/** A span must be (re)sent if the collector has nothing of it, or only its open version. */
function pending(s) { return s.sent === NOT_SENT || (s.ended && s.sent !== COMPLETE); }

/**
 * Ships a spool file written by flush: spans to /api/traces, logs to /api/logs,
 * in batches. Where a span was spooled both open and complete, only the complete
 * version is sent. The file is deleted only once every line was accepted; lines
 * not delivered (collector unreachable, 401/403/404: wrong key or URL) are kept in
 * it, lines the collector refuses as invalid (other 4xx) or that are not JSON are
 * dropped. Meant to run when no tracer is appending to the same file (e.g. at the
 * next start, or from the host). Never throws: resolves to { sent, kept, dropped }.
 * Options: url, apiKey (as the tracer, env defaults), timeoutMs (default 30000),
 * retries, maxBatchBytes.
 */
async function pushSpool(spoolPath = process.env.SWARMSCOPE_SPOOL, options = {}) {
  const url = String(options.url || process.env.SWARMSCOPE_URL || 'http://127.0.0.1:4318').replace(/\/+$/, '');
  const opts = { apiKey: options.apiKey ?? process.env.SWARMSCOPE_API_KEY, retries: options.retries ?? 3,
    deadline: Date.now() + (options.timeoutMs ?? 30000) };
  const result = { sent: 0, kept: 0, dropped: 0 };
  let raw;
  try {
    raw = fs.readFileSync(spoolPath);
  } catch (err) {
    if (err.code !== 'ENOENT') { warn(`cannot read spool ${spoolPath}: ${err.message}`); result.error = err.message; }
    return result;
  }
  const spans = new Map(); // "trace id/span id" -> item: the latest, complete version wins
  const logs = [];
  for (const text of raw.toString('utf8').split('\n')) {
    if (!text.trim()) continue;
    let obj;
    try { obj = JSON.parse(text); } catch { result.dropped++; continue; }
    const { kind, ...data } = obj || {};
    const item = { text, json: JSON.stringify(data) };
    if (kind === 'log') { logs.push(item); continue; }
    if (kind !== 'span') { result.dropped++; continue; }
    const key = `${data.trace_id}/${data.id}`;
    const prev = spans.get(key);
    if (!prev || data.endTime !== undefined || prev.data.endTime === undefined) spans.set(key, { ...item, data });
  }
  const kept = [];
  for (const [kind, route, items] of [['spans', '/api/traces', [...spans.values()]], ['logs', '/api/logs', logs]]) {
    for (const batch of batches(items, options.maxBatchBytes ?? 4 * 1024 * 1024)) {
      const r = await post(url + route, bodyOf(kind, batch), opts);
      if (r.ok) result.sent += batch.length;
      else if (r.refused && ![401, 403, 404].includes(r.status)) {
        result.dropped += batch.length;
        warn(`dropped ${batch.length} spooled ${kind}: ${r.message}`);
      } else {
        result.kept += batch.length;
        kept.push(...batch.map((i) => i.text));
        if (r.message) warn(`kept ${batch.length} spooled ${kind}: ${r.message}`);
      }
    }
  }
  // Keep anything appended to the file while we were sending.
  try {
    const now = fs.readFileSync(spoolPath);
    const rest = now.subarray(raw.length).toString('utf8');
    if (!kept.length && !rest) fs.unlinkSync(spoolPath);
    else fs.writeFileSync(spoolPath, (kept.length ? kept.join('\n') + '\n' : '') + rest);
  } catch (err) {
    warn(`cannot update spool ${spoolPath}: ${err.message}`);
    result.error = err.message;
  }
  return result;
}

module.exports = { AgentTracer, pushSpool };
