// swarmscope trace viewer: a single-page app with no build step and no
// network dependencies. Every piece of server text reaches the DOM through
// textContent / attributes (never innerHTML).
'use strict';
(() => {
  // ---------------------------------------------------------------- constants
  const KEY_STORE = 'swarmscope.apiKey';
  const THEME_STORE = 'swarmscope.theme';
  const ROW_H = 28; // waterfall row height (px); must match --row-h in app.css
  const SEED_SPAN_NAMES = ['http.request', 'ticket.claim', 'vm.spawn', 'agent.execute', 'git.clone',
    'llm.generate', 'file.write', 'git.commit', 'git.push', 'pr.create', 'ticket.complete'];
  const LEVEL_RANK = { trace: 0, debug: 0, info: 1, warn: 2, warning: 2, error: 3, fatal: 4, critical: 4 };
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // Apply the saved theme at once (this script loads in <head>, before paint).
  try {
    const saved = localStorage.getItem(THEME_STORE);
    if (saved === 'light' || saved === 'dark') document.documentElement.setAttribute('data-theme', saved);
  } catch (e) { /* storage unavailable */ }

  // ---------------------------------------------------------------- state
  const app = {
    key: null, // API key ('' = sign in without a key, for open collectors)
    who: null, // {role, tenant_id, read} or {role:null} when /api/whoami is missing
    tenants: null, // [{tenant_id, traces}] for admins, or null when unknown
    view: null, // the current view's controller ({name, destroy(), onTrace(), ...})
    navSeq: 0,
    signinMessage: '',
  };

  // ---------------------------------------------------------------- DOM helpers
  function h(tag, props, ...kids) {
    const el = document.createElement(tag);
    let value;
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
        else if (k === 'dataset') { for (const d of Object.keys(v)) if (v[d] != null) el.dataset[d] = v[d]; }
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'value') value = v;
        else if (k === 'checked' || k === 'disabled' || k === 'hidden' || k === 'selected') el[k] = !!v;
        else if (k === 'testid') el.setAttribute('data-testid', v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(el, kids);
    if (value !== undefined) el.value = value;
    return el;
  }
  function append(el, ...kids) {
    for (const k of kids.flat(Infinity)) {
      if (k == null || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }
  function svg(tag, attrs, ...kids) {
    const el = document.createElementNS(SVG_NS, tag);
    if (attrs) {
      for (const k of Object.keys(attrs)) {
        const v = attrs[k];
        if (v == null || v === false) continue;
        if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'class') el.setAttribute('class', v);
        else el.setAttribute(k, String(v));
      }
    }
    for (const k of kids.flat(Infinity)) if (k != null && k !== false) el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    return el;
  }
  const $ = (sel, root = document) => root.querySelector(sel);
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

  function msg(kind, text, extra) {
    // kind: 'error' | 'empty' | 'info'
    const testid = kind === 'error' ? 'error-message' : kind === 'empty' ? 'empty-message' : null;
    return h('div', { class: 'msg msg-' + kind, testid, role: kind === 'error' ? 'alert' : 'status' }, text, extra);
  }

  // ---------------------------------------------------------------- formatting
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  const numFmt = new Intl.NumberFormat('en-US');
  function fmtInt(n) { return n == null || !isFinite(n) ? '—' : numFmt.format(Math.round(n)); }
  function fmtDur(ms) {
    if (ms == null || !isFinite(ms)) return '—';
    if (ms < 0) ms = 0;
    if (ms === 0) return '0 ms';
    if (ms < 1) return ms.toFixed(2) + ' ms';
    if (ms < 999.5) return Math.round(ms) + ' ms';
    if (ms < 59950) return (ms / 1000).toFixed(1) + ' s';
    if (ms < 3599500) {
      const t = Math.round(ms / 1000);
      return Math.floor(t / 60) + 'm ' + pad(t % 60) + 's';
    }
    const m = Math.round(ms / 60000);
    if (m < 24 * 60) return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
    const hrs = Math.round(ms / 3600000);
    return Math.floor(hrs / 24) + 'd ' + pad(hrs % 24) + 'h';
  }
  function fmtCost(v) {
    if (v == null || v === '' || !isFinite(Number(v))) return '—';
    return '$' + Number(v).toFixed(4);
  }
  function fmtTime(ms, withDate = true) {
    if (ms == null || !isFinite(ms)) return '—';
    const d = new Date(ms);
    const t = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) + '.' + pad(d.getMilliseconds(), 3);
    if (!withDate) return t;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + t;
  }
  function fmtAgo(ms) {
    if (ms == null) return '';
    const s = (Date.now() - ms) / 1000;
    if (s < 0) return 'in the future';
    if (s < 60) return Math.round(s) + 's ago';
    if (s < 3600) return Math.round(s / 60) + 'm ago';
    if (s < 86400) return Math.round(s / 3600) + 'h ago';
    return Math.round(s / 86400) + 'd ago';
  }
  function shortId(id) { id = String(id ?? ''); return id.length > 12 ? id.slice(0, 8) + '…' : id; }
  // RFC 3339 with up to nanosecond fractions -> epoch milliseconds (fractional).
  const TS_RE = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|z|[+-]\d\d:\d\d)$/;
  function parseTs(s) {
    if (s == null) return null;
    if (typeof s === 'number') return s;
    const m = TS_RE.exec(String(s).trim());
    if (m) {
      const base = Date.parse(m[1] + (m[3] === 'z' ? 'Z' : m[3]));
      if (!isNaN(base)) return base + (m[2] ? Number('0.' + m[2]) * 1000 : 0);
    }
    const t = Date.parse(s);
    return isNaN(t) ? null : t;
  }
  function fmtValue(v) {
    if (v === null) return 'null';
    if (typeof v === 'object') return JSON.stringify(v, null, 1);
    return String(v);
  }
  // "5000", "5s", "500ms", "2m", "1.5h" -> ms; null when unparseable
  function parseDurInput(text) {
    const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(text);
    if (!m) return null;
    const n = Number(m[1]);
    const mul = { ms: 1, s: 1000, m: 60000, h: 3600000 }[(m[2] || 'ms').toLowerCase()];
    return n * mul;
  }
  const AGE_RE = /^\d+[smhd]$/;
  // A time filter as the API wants it: an age, RFC 3339, or any Date-parseable
  // local time converted to RFC 3339. null when invalid.
  function apiTime(text) {
    text = text.trim();
    if (!text) return '';
    if (AGE_RE.test(text)) return text;
    if (TS_RE.test(text)) return text;
    const t = Date.parse(text.replace(' ', 'T'));
    return isNaN(t) ? null : new Date(t).toISOString();
  }
  function timeFilterMs(text) {
    if (!text) return null;
    if (AGE_RE.test(text)) {
      const n = Number(text.slice(0, -1));
      return Date.now() - n * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[text.slice(-1)];
    }
    const a = apiTime(text);
    return a ? parseTs(a) : null;
  }

  // ---------------------------------------------------------------- API
  class ApiError extends Error {
    constructor(status, message, field) { super(message); this.status = status; this.field = field || null; }
  }
  function authHeaders() {
    return app.key ? { Authorization: 'Bearer ' + app.key } : {};
  }
  function qs(params) {
    if (!params) return '';
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v != null && v !== '') u.set(k, String(v));
    const s = u.toString();
    return s ? '?' + s : '';
  }
  async function api(path, params, opts = {}) {
    let res;
    try {
      res = await fetch(path + qs(params), { headers: { Accept: 'application/json', ...authHeaders() }, signal: opts.signal, cache: 'no-store' });
    } catch (e) {
      if (e && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'Cannot reach the collector (' + (e && e.message ? e.message : 'network error') + ').');
    }
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
    if (res.status === 401 && !opts.allow401) {
      signOut('Your API key was rejected (401' + (body && body.error ? ': ' + body.error : '') + '). Sign in again.');
      throw new ApiError(401, 'unauthorised');
    }
    if (!res.ok) {
      let m = body && body.error ? body.error : res.status + ' ' + (res.statusText || 'error');
      if (res.status === 403) m = 'Not allowed (403): ' + m;
      throw new ApiError(res.status, m, body && body.field);
    }
    if (body === null && text) throw new ApiError(res.status, 'The collector answered with something that is not JSON.');
    return body;
  }
  function errText(e) {
    if (e instanceof ApiError) return e.message + (e.field ? ' (' + e.field + ')' : '');
    return String(e && e.message ? e.message : e);
  }
  const isAbort = (e) => e && e.name === 'AbortError';

  // ---------------------------------------------------------------- routing
  function parseHash() {
    let raw = location.hash.replace(/^#\/?/, '');
    const qi = raw.indexOf('?');
    const path = qi >= 0 ? raw.slice(0, qi) : raw;
    const params = new URLSearchParams(qi >= 0 ? raw.slice(qi + 1) : '');
    const parts = path.split('/').map((p) => { try { return decodeURIComponent(p); } catch (e) { return p; } });
    return { name: parts[0] || 'search', arg: parts.slice(1).join('/') || null, params };
  }
  function href(name, arg, params) {
    return '#/' + name + (arg != null ? '/' + encodeURIComponent(arg) : '') + qs(params);
  }
  function traceHref(traceId, tenantId, extra) {
    return href('trace', traceId, { tenant_id: tenantId || '', ...(extra || {}) });
  }
  function ticketHref(ticketId, tenantId) { return href('ticket', ticketId, { tenant_id: tenantId || '' }); }
  function go(url) { if (location.hash === url) route(); else location.hash = url; }

  // ---------------------------------------------------------------- theme
  function currentTheme() {
    const t = document.documentElement.getAttribute('data-theme');
    if (t) return t;
    return window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  function toggleTheme() {
    const next = currentTheme() === 'dark' ? 'light' : 'dark';
    document.documentElement.setAttribute('data-theme', next);
    try { localStorage.setItem(THEME_STORE, next); } catch (e) { /* private mode */ }
    const b = $('#theme-toggle');
    if (b) themeButtonLabel(b);
  }
  function themeButtonLabel(b) {
    const dark = currentTheme() === 'dark';
    b.textContent = dark ? '☀' : '☾';
    b.setAttribute('aria-label', dark ? 'Switch to light theme' : 'Switch to dark theme');
    b.title = b.getAttribute('aria-label');
  }

  // ---------------------------------------------------------------- sign-in
  function loadKey() {
    try { return sessionStorage.getItem(KEY_STORE); } catch (e) { return null; }
  }
  function signOut(message) {
    try { sessionStorage.removeItem(KEY_STORE); } catch (e) { /* ignore */ }
    app.key = null; app.who = null; app.tenants = null;
    app.signinMessage = message || '';
    live.stop();
    if (app.view && app.view.destroy) app.view.destroy();
    app.view = null;
    renderSignIn();
  }
  function renderSignIn() {
    const root = clear($('#app'));
    document.title = 'Sign in · swarmscope';
    const input = h('input', { id: 'signin-key', type: 'password', testid: 'signin-key', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'sk-…', 'aria-describedby': 'signin-help signin-error' });
    const err = h('p', { id: 'signin-error', class: 'signin-error', testid: 'signin-error', role: 'alert', hidden: !app.signinMessage }, app.signinMessage);
    const button = h('button', { type: 'submit', class: 'btn btn-primary', testid: 'signin-submit' }, 'Sign in');
    const form = h('form', { class: 'signin-card', 'aria-labelledby': 'signin-title', onsubmit: async (ev) => {
      ev.preventDefault();
      button.disabled = true; button.textContent = 'Checking…';
      err.hidden = true;
      const r = await trySignIn(input.value.trim());
      button.disabled = false; button.textContent = 'Sign in';
      if (r !== true) { err.textContent = r; err.hidden = false; input.focus(); input.select(); }
    } },
    h('h1', { id: 'signin-title', class: 'brand-big' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◈'), ' swarmscope'),
    h('p', { class: 'muted' }, 'Traces, logs and LLM costs of your agent fleet.'),
    h('label', { for: 'signin-key' }, 'API key'),
    input,
    h('p', { id: 'signin-help', class: 'hint' }, 'Kept in this browser tab only (sessionStorage) and sent as a bearer token. Leave empty for a collector without keys.'),
    err,
    button);
    const themeBtn = h('button', { id: 'theme-toggle', type: 'button', class: 'btn btn-ghost icon-btn theme-corner', onclick: toggleTheme });
    themeButtonLabel(themeBtn);
    append(root, h('main', { class: 'signin', id: 'view' }, form), themeBtn);
    input.focus();
  }
  async function trySignIn(key) {
    app.key = key;
    try {
      const who = await fetchWho();
      if (who.role && who.read === false) {
        app.key = null;
        return 'This key may not read traces. Use a key with the read right, or an admin key.';
      }
      try { sessionStorage.setItem(KEY_STORE, key); } catch (e) { /* ignore */ }
      app.who = who; app.signinMessage = '';
      await startApp();
      return true;
    } catch (e) {
      app.key = null;
      if (e instanceof ApiError && e.status === 401) return 'That key was not accepted (401). Check it and try again.';
      if (e instanceof ApiError && e.status === 403) return 'This key may not read traces (403).';
      return 'Sign-in failed: ' + errText(e);
    }
  }
  // GET /api/whoami; when it does not exist, check the key with a one-trace search.
  async function fetchWho() {
    try {
      const w = await api('/api/whoami', null, { allow401: true });
      return { role: w && w.role ? String(w.role) : null, tenant_id: w ? w.tenant_id ?? null : null, read: w ? w.read !== false : true, open: !!(w && w.open) };
    } catch (e) {
      if (!(e instanceof ApiError) || (e.status !== 404 && e.status !== 405)) throw e;
    }
    await api('/api/traces', { limit: 1 }, { allow401: true });
    return { role: null, tenant_id: null, read: true };
  }
  const isTenantKey = () => app.who && app.who.role === 'tenant';
  const canPickTenant = () => !isTenantKey();

  async function loadTenants() {
    if (!canPickTenant()) { app.tenants = null; return; }
    try {
      const r = await api('/api/tenants');
      app.tenants = Array.isArray(r && r.tenants) ? r.tenants.filter((t) => t && t.tenant_id != null) : null;
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) throw e;
      app.tenants = null; // unknown: the tenant filter becomes a text box
    }
  }

  // ---------------------------------------------------------------- shell
  async function startApp() {
    await loadTenants();
    renderShell();
    live.start();
    route();
  }
  function renderShell() {
    const root = clear($('#app'));
    const who = app.who || {};
    let ident = 'signed in';
    if (who.role === 'admin') ident = who.open ? 'open collector (no keys)' : 'admin';
    else if (who.role === 'tenant') ident = 'tenant ' + (who.tenant_id ?? '?');
    else if (who.role) ident = who.role;
    const themeBtn = h('button', { id: 'theme-toggle', type: 'button', class: 'btn btn-ghost icon-btn', onclick: toggleTheme });
    themeButtonLabel(themeBtn);
    const skip = h('a', { class: 'skip-link', href: '#', onclick: (e) => { e.preventDefault(); const v = $('#view'); v.setAttribute('tabindex', '-1'); v.focus(); } }, 'Skip to content');
    const header = h('header', { class: 'topbar' },
      h('a', { class: 'brand', href: '#/search', 'aria-label': 'swarmscope: trace search' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◈'), ' swarmscope'),
      h('nav', { class: 'nav', 'aria-label': 'Main' },
        h('a', { href: '#/search', id: 'nav-search' }, 'Search'),
        h('a', { href: '#/compare', id: 'nav-compare' }, 'Compare')),
      h('span', { class: 'spacer' }),
      h('span', { class: 'ident', title: 'Signed in as ' + ident }, ident),
      themeBtn,
      h('button', { type: 'button', class: 'btn btn-ghost', testid: 'signout', onclick: () => signOut('Signed out.') }, 'Sign out'));
    const strip = h('div', { id: 'status-strip', class: 'status-strip', testid: 'status-strip', role: 'status', 'aria-live': 'polite', 'aria-label': 'Live status and alerts', hidden: true });
    append(root, skip, header, strip, h('main', { id: 'view', class: 'view' }));
    live.renderStrip();
  }
  function setNav(name) {
    for (const id of ['nav-search', 'nav-compare']) {
      const a = $('#' + id);
      if (a) { if (id === 'nav-' + name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current'); }
    }
  }

  function route(force) {
    if (app.key == null) return;
    const r = parseHash();
    const seq = ++app.navSeq;
    // a trace view only re-selects when just the span parameter changed
    if (force !== true && app.view && app.view.name === 'trace' && r.name === 'trace' && app.view.sameTrace && app.view.sameTrace(r)) {
      app.view.selectFromRoute(r);
      return;
    }
    if (app.view && app.view.destroy) app.view.destroy();
    app.view = null;
    const main = $('#view');
    if (!main) return;
    clear(main);
    main.scrollTop = 0;
    window.scrollTo(0, 0);
    setNav(r.name);
    const ctx = { seq, main, alive: () => seq === app.navSeq };
    if (r.name === 'trace' && r.arg) app.view = traceView(ctx, r);
    else if (r.name === 'ticket' && r.arg) app.view = ticketView(ctx, r);
    else if (r.name === 'compare') app.view = compareView(ctx, r);
    else app.view = searchView(ctx, r);
  }

  // ---------------------------------------------------------------- keyboard (global)
  document.addEventListener('keydown', (ev) => {
    if (app.key == null) return;
    const t = ev.target;
    const typing = t && (t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT' || t.isContentEditable);
    if (ev.key === '/' && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      const f = app.view && app.view.searchBox && app.view.searchBox();
      if (f) { ev.preventDefault(); f.focus(); if (f.select) f.select(); }
    } else if (ev.key === 'Escape') {
      if (app.view && app.view.onEscape && app.view.onEscape(ev)) ev.preventDefault();
    }
  });

  // ---------------------------------------------------------------- live (SSE over fetch)
  const live = (() => {
    const st = { supported: null, ctrl: null, timer: null, backoff: 1000, connected: false, alerts: null, retryAt: 0, gen: 0 };
    function stop() {
      st.gen++;
      if (st.ctrl) st.ctrl.abort();
      st.ctrl = null;
      clearTimeout(st.timer);
      st.connected = false; st.alerts = null; st.supported = null; st.backoff = 1000;
    }
    async function start() {
      stop();
      connect(st.gen);
    }
    async function connect(gen) {
      if (gen !== st.gen || app.key == null) return;
      const ctrl = new AbortController();
      st.ctrl = ctrl;
      try {
        const res = await fetch('/api/events', { headers: { Accept: 'text/event-stream', ...authHeaders() }, signal: ctrl.signal, cache: 'no-store' });
        if (gen !== st.gen) return;
        if (res.status === 404 || res.status === 405 || res.status === 501 || res.status === 403) {
          st.supported = false; renderStrip();
          try { ctrl.abort(); } catch (e) { /* ignore */ }
          return; // live features stay hidden
        }
        if (res.status === 401) { signOut('Your API key was rejected (401). Sign in again.'); return; }
        const ctype = res.headers.get('Content-Type') || '';
        if (!res.ok || !res.body || !/event-stream/.test(ctype)) {
          if (res.ok && !/event-stream/.test(ctype)) { st.supported = false; renderStrip(); return; }
          throw new Error('events: HTTP ' + res.status);
        }
        st.supported = true; st.connected = true; renderStrip();
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done || gen !== st.gen) break;
          buf += dec.decode(value, { stream: true });
          // normalise line ends; keep a trailing \r until we know whether \n follows
          let hold = '';
          if (buf.endsWith('\r')) { hold = '\r'; buf = buf.slice(0, -1); }
          buf = buf.replace(/\r\n?/g, '\n');
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            handleBlock(block);
            st.backoff = 1000;
          }
          buf += hold;
        }
        if (gen !== st.gen) return;
        throw new Error('event stream ended');
      } catch (e) {
        if (gen !== st.gen || isAbort(e)) return;
        st.connected = false;
        const wait = Math.min(30000, st.backoff) * (0.8 + Math.random() * 0.4);
        st.backoff = Math.min(30000, st.backoff * 2);
        st.retryAt = Date.now() + wait;
        renderStrip();
        clearTimeout(st.timer);
        st.timer = setTimeout(() => connect(gen), wait);
      }
    }
    function handleBlock(block) {
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (!line || line.startsWith(':')) continue;
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val.startsWith(' ')) val = val.slice(1);
        if (field === 'event') event = val;
        else if (field === 'data') data.push(val);
      }
      if (!data.length) return;
      let payload;
      try { payload = JSON.parse(data.join('\n')); } catch (e) { return; }
      if (event === 'alerts') {
        st.alerts = Array.isArray(payload && payload.alerts) ? payload.alerts : [];
        renderStrip();
      } else if (event === 'trace') {
        const t = payload && payload.trace && payload.trace.trace_id ? payload.trace : payload;
        if (t && t.trace_id && app.view && app.view.onTrace) app.view.onTrace(t);
      }
    }
    function renderStrip() {
      const strip = $('#status-strip');
      if (!strip) return;
      clear(strip);
      if (!st.supported) { strip.hidden = true; return; }
      strip.hidden = false;
      const alerts = (st.alerts || []).filter((a) => a && (a.state === 'firing' || a.state === 'pending'));
      const firing = alerts.filter((a) => a.state === 'firing');
      const pending = alerts.filter((a) => a.state === 'pending');
      strip.dataset.state = firing.length ? 'firing' : pending.length ? 'pending' : 'clear';
      const liveBadge = st.connected
        ? h('span', { class: 'live-dot on', title: 'Receiving live events' }, 'Live')
        : h('span', { class: 'live-dot off', title: 'Live events disconnected' }, 'Reconnecting…');
      strip.appendChild(liveBadge);
      if (!alerts.length) {
        strip.appendChild(h('span', { class: 'alert-chip clear' }, st.alerts == null && !st.connected ? 'alert state unknown' : '✓ All clear'));
        return;
      }
      const ordered = firing.concat(pending);
      const tenantOf = (a) => a.tenant_id ?? (a.labels && typeof a.labels === 'object' && !Array.isArray(a.labels) ? a.labels.tenant_id : null);
      strip.appendChild(h('span', { class: 'alert-count' }, firing.length ? firing.length + ' firing' : '', firing.length && pending.length ? ', ' : '', pending.length ? pending.length + ' pending' : ''));
      for (const a of ordered) {
        const tenant = tenantOf(a);
        strip.appendChild(h('span', { class: 'alert-chip ' + a.state, testid: 'alert-chip', title: [a.name, a.severity, a.state, tenant, a.summary].filter((x) => x != null && x !== '').join(' · ') },
          h('b', null, a.state === 'firing' ? 'FIRING' : 'PENDING'), ' ', String(a.name ?? 'alert'),
          a.severity ? h('span', { class: 'sev' }, ' ' + a.severity) : null,
          tenant != null ? h('span', { class: 'tenant' }, ' · ' + tenant) : null,
          a.summary ? h('span', { class: 'summary' }, ' — ' + a.summary) : null));
      }
    }
    return { start, stop, renderStrip, get supported() { return st.supported; } };
  })();

  // ---------------------------------------------------------------- shared table bits
  function outcomeBadge(o) {
    return h('span', { class: 'badge outcome-' + o }, o);
  }
  function tenantCell(t) { return t.tenant_id ?? '—'; }

  // ---------------------------------------------------------------- search view
  const FILTERS = [
    { key: 'ticket_id', testid: 'filter-ticket', label: 'Ticket', ph: 'TKT-123' },
    { key: 'agent_id', testid: 'filter-agent', label: 'Agent', ph: 'agent-7' },
    { key: 'status', testid: 'filter-status', label: 'Status', options: [['', 'any'], ['ok', 'ok'], ['error', 'error']] },
    { key: 'name', testid: 'filter-name', label: 'Span name', ph: 'llm.generate', list: 'span-names' },
    { key: 'min_duration_ms', testid: 'filter-min-duration', label: 'Min duration (ms)', ph: '5000 or 5s' },
    { key: 'since', testid: 'filter-since', label: 'Since', ph: '2h, 7d, RFC 3339' },
    { key: 'until', testid: 'filter-until', label: 'Until', ph: 'age or RFC 3339' },
    { key: 'attr', testid: 'filter-attr', label: 'Attribute', ph: 'key=value' },
  ];
  const SEARCH_KEYS = ['tenant_id', ...FILTERS.map((f) => f.key)];

  function searchView(ctx, r) {
    document.title = 'Search · swarmscope';
    const params = {};
    for (const k of SEARCH_KEYS) { const v = r.params.get(k); if (v) params[k] = v; }
    if (isTenantKey()) delete params.tenant_id;
    const st = { traces: [], keys: new Set(), cursor: null, loading: false, pending: [], sort: null, ctrl: new AbortController() };
    const inputs = {};

    // --- filter form
    let tenantField = null;
    if (canPickTenant()) {
      if (app.tenants) {
        const opts = [h('option', { value: '' }, 'all tenants')];
        const known = new Set();
        for (const t of app.tenants) {
          known.add(String(t.tenant_id));
          opts.push(h('option', { value: String(t.tenant_id) }, String(t.tenant_id) + (t.traces != null ? ' (' + fmtInt(t.traces) + ')' : '')));
        }
        if (params.tenant_id && !known.has(params.tenant_id)) opts.push(h('option', { value: params.tenant_id }, params.tenant_id));
        inputs.tenant_id = h('select', { id: 'f-tenant_id', testid: 'filter-tenant', name: 'tenant_id', 'aria-label': 'Tenant', value: params.tenant_id || '' }, opts);
      } else {
        inputs.tenant_id = h('input', { id: 'f-tenant_id', testid: 'filter-tenant', name: 'tenant_id', type: 'text', placeholder: 'all tenants', 'aria-label': 'Tenant', value: params.tenant_id || '', autocomplete: 'off' });
      }
      tenantField = h('div', { class: 'field' }, h('label', { for: 'f-tenant_id' }, 'Tenant'), inputs.tenant_id);
    }
    const fields = FILTERS.map((f) => {
      let el;
      if (f.options) {
        el = h('select', { id: 'f-' + f.key, name: f.key, testid: f.testid, 'aria-label': f.label, value: params[f.key] || '' },
          f.options.map(([v, l]) => h('option', { value: v }, l)));
      } else {
        el = h('input', { id: 'f-' + f.key, name: f.key, testid: f.testid, type: 'text', placeholder: f.ph, 'aria-label': f.label,
          value: params[f.key] || '', autocomplete: 'off', spellcheck: 'false', list: f.list || null });
      }
      inputs[f.key] = el;
      return h('div', { class: 'field field-' + f.key }, h('label', { for: 'f-' + f.key }, f.label), el);
    });
    const formErr = h('p', { class: 'form-error', role: 'alert', hidden: true });
    const quick = h('div', { class: 'quick-ranges', role: 'group', 'aria-label': 'Quick time ranges' },
      ['15m', '1h', '6h', '24h', '7d'].map((a) => h('button', { type: 'button', class: 'chip', onclick: () => {
        inputs.since.value = a === '24h' ? '1d' : a; inputs.until.value = ''; submit();
      } }, 'last ' + a)));
    const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Trace search', onsubmit: (e) => { e.preventDefault(); submit(); } },
      h('datalist', { id: 'span-names' }, SEED_SPAN_NAMES.map((n) => h('option', { value: n }))),
      h('div', { class: 'filter-grid' }, tenantField, fields),
      h('div', { class: 'filter-actions' },
        h('button', { type: 'submit', class: 'btn btn-primary', testid: 'search-submit' }, 'Search'),
        h('button', { type: 'button', class: 'btn btn-ghost', onclick: () => { go(href('search', null, isTenantKey() ? {} : { tenant_id: params.tenant_id || '' })); } }, 'Clear'),
        quick),
      formErr);

    function submit() {
      const p = {};
      const errs = [];
      for (const k of SEARCH_KEYS) {
        const el = inputs[k];
        if (!el) continue;
        const v = el.value.trim();
        if (!v) continue;
        if (k === 'min_duration_ms') {
          const ms = parseDurInput(v);
          if (ms == null) { errs.push('Min duration must be a number of ms, or like 5s / 2m.'); continue; }
          p[k] = String(ms);
        } else if (k === 'since' || k === 'until') {
          if (apiTime(v) == null) { errs.push((k === 'since' ? 'Since' : 'Until') + ' must be an age (15m, 2h, 7d) or a time such as 2025-12-14T10:30:00Z.'); continue; }
          p[k] = v;
        } else if (k === 'attr') {
          if (!/^[^=]+=/.test(v)) { errs.push('Attribute filter must look like key=value.'); continue; }
          p[k] = v;
        } else p[k] = v;
      }
      if (errs.length) { formErr.textContent = errs.join(' '); formErr.hidden = false; return; }
      formErr.hidden = true;
      go(href('search', null, p));
    }

    // --- results area
    const banner = h('div', { class: 'live-banner', hidden: true });
    const plotBox = h('div', { class: 'plot-box', 'aria-label': 'Duration over time' });
    const status = h('div', { class: 'results-status', role: 'status', 'aria-live': 'polite' });
    const results = h('div', { class: 'results' });
    const more = h('div', { class: 'more' });
    append(ctx.main, h('h1', { class: 'visually-hidden' }, 'Trace search'), form, banner, h('section', { class: 'card plot-card', 'aria-label': 'Duration over time' }, plotBox), status, results, more);

    const showTenant = () => canPickTenant() && !params.tenant_id;

    function apiParams(cursor) {
      const p = { limit: 50, cursor };
      for (const k of SEARCH_KEYS) if (params[k]) p[k] = params[k];
      if (p.min_duration_ms) p.min_duration_ms = parseDurInput(p.min_duration_ms);
      if (p.since) p.since = apiTime(p.since);
      if (p.until) p.until = apiTime(p.until);
      return p;
    }
    function paramProblem() {
      for (const k of ['since', 'until']) if (params[k] && apiTime(params[k]) == null) return (k === 'since' ? 'Since' : 'Until') + ' must be an age (15m, 2h, 7d) or a time such as 2025-12-14T10:30:00Z, not "' + params[k] + '".';
      if (params.min_duration_ms && parseDurInput(params.min_duration_ms) == null) return 'Min duration must be a number of milliseconds.';
      return null;
    }
    async function load(cursor) {
      const problem = paramProblem();
      if (problem) { clear(results).appendChild(msg('error', problem)); renderPlot(); return; }
      st.loading = true;
      renderMore();
      if (!cursor) { clear(results); results.appendChild(h('div', { class: 'loading' }, 'Searching…')); }
      try {
        const r = await api('/api/traces', apiParams(cursor), { signal: st.ctrl.signal });
        if (!ctx.alive()) return;
        for (const t of r.traces || []) addTrace(t, false);
        st.cursor = r.next_cursor || null;
        st.loading = false;
        renderAll();
      } catch (e) {
        if (isAbort(e) || !ctx.alive()) return;
        st.loading = false;
        if (!cursor) clear(results);
        results.appendChild(msg('error', 'Search failed: ' + errText(e)));
        renderMore();
      }
    }
    function tkey(t) { return (t.tenant_id ?? '') + '\u0000' + t.trace_id; }
    function addTrace(t, front) {
      const k = tkey(t);
      if (st.keys.has(k)) {
        const i = st.traces.findIndex((x) => tkey(x) === k);
        if (i >= 0) st.traces[i] = t;
        return;
      }
      st.keys.add(k);
      if (front) st.traces.unshift(t); else st.traces.push(t);
    }
    function sorted() {
      if (!st.sort) return st.traces;
      const { col, dir } = st.sort;
      const val = COLS.find((c) => c.id === col).sort;
      return st.traces.slice().sort((a, b) => {
        const x = val(a), y = val(b);
        return (x < y ? -1 : x > y ? 1 : 0) * dir;
      });
    }
    const COLS = [
      { id: 'root', label: 'Root span', sort: (t) => String(t.root_name ?? '') },
      { id: 'tenant', label: 'Tenant', sort: (t) => String(t.tenant_id ?? ''), tenant: true },
      { id: 'ticket', label: 'Ticket', sort: (t) => String(t.ticket_id ?? '') },
      { id: 'agent', label: 'Agent', sort: (t) => String(t.agent_id ?? '') },
      { id: 'start', label: 'Start', sort: (t) => parseTs(t.start_time) ?? 0 },
      { id: 'duration', label: 'Duration', sort: (t) => t.duration_ms ?? -1, num: true },
      { id: 'spans', label: 'Spans', sort: (t) => t.span_count ?? 0, num: true },
      { id: 'errors', label: 'Errors', sort: (t) => t.error_count ?? 0, num: true },
      { id: 'cost', label: 'LLM cost', sort: (t) => (t.cost_usd == null ? -1 : Number(t.cost_usd)), num: true },
    ];
    let renderTimer = null;
    function scheduleRender() {
      if (renderTimer) return;
      renderTimer = setTimeout(() => { renderTimer = null; if (ctx.alive()) renderAll(); }, 400);
    }
    function renderAll() {
      renderPlot();
      renderTable();
      renderMore();
    }
    function renderTable() {
      // keep keyboard focus on the same trace across re-renders (live updates)
      const ae = document.activeElement;
      const focusedId = ae && ae.dataset && ae.dataset.testid === 'trace-row' && results.contains(ae) ? ae.dataset.traceId : null;
      clear(results);
      if (!st.traces.length) {
        results.appendChild(msg('empty', Object.keys(params).length ? 'No traces match these filters.' : 'No traces yet. Send spans to POST /api/traces.'));
        status.textContent = '';
        return;
      }
      status.textContent = st.traces.length + ' trace' + (st.traces.length === 1 ? '' : 's') + (st.cursor ? ' shown, more available' : '');
      const cols = COLS.filter((c) => !c.tenant || showTenant());
      const head = h('tr', null, cols.map((c) => {
        const sortDir = st.sort && st.sort.col === c.id ? (st.sort.dir > 0 ? 'ascending' : 'descending') : 'none';
        return h('th', { scope: 'col', class: c.num ? 'num' : null, 'aria-sort': sortDir },
          h('button', { type: 'button', class: 'th-sort', onclick: () => {
            if (st.sort && st.sort.col === c.id) st.sort = st.sort.dir > 0 ? { col: c.id, dir: -1 } : null;
            else st.sort = { col: c.id, dir: c.num || c.id === 'start' ? -1 : 1 };
            renderTable();
          } }, c.label, h('span', { class: 'sort-ind', 'aria-hidden': 'true' }, sortDir === 'ascending' ? ' ▲' : sortDir === 'descending' ? ' ▼' : '')));
      }));
      const body = h('tbody');
      for (const t of sorted()) body.appendChild(traceRow(t, cols));
      results.appendChild(h('div', { class: 'table-wrap' }, h('table', { class: 'data traces', 'aria-label': 'Traces' }, h('thead', null, head), body)));
      if (focusedId) {
        const row = [...body.children].find((r) => r.dataset.traceId === focusedId);
        if (row) row.focus({ preventScroll: true });
      }
    }
    function traceRow(t, cols) {
      const open = () => go(traceHref(t.trace_id, t.tenant_id));
      const start = parseTs(t.start_time);
      const cells = {
        root: h('td', { class: 'root-name' }, h('span', { class: 'status-dot ' + (t.error_count > 0 ? 'err' : 'ok'), 'aria-hidden': 'true' }),
          h('a', { href: traceHref(t.trace_id, t.tenant_id), tabindex: '-1', onclick: (e) => e.stopPropagation() }, String(t.root_name ?? '(no root)')),
          h('span', { class: 'trace-id mono muted' }, ' ' + shortId(t.trace_id))),
        tenant: h('td', null, tenantCell(t)),
        ticket: h('td', null, t.ticket_id != null
          ? h('a', { href: ticketHref(t.ticket_id, t.tenant_id), onclick: (e) => e.stopPropagation(), 'aria-label': 'Ticket ' + t.ticket_id }, String(t.ticket_id))
          : '—'),
        agent: h('td', null, t.agent_id ?? '—'),
        start: h('td', { class: 'nowrap', title: fmtAgo(start) }, fmtTime(start)),
        duration: h('td', { class: 'num' }, t.end_time == null && t.duration_ms == null ? 'open' : fmtDur(t.duration_ms)),
        spans: h('td', { class: 'num' }, fmtInt(t.span_count)),
        errors: h('td', { class: 'num' + (t.error_count > 0 ? ' err-text' : '') }, fmtInt(t.error_count)),
        cost: h('td', { class: 'num' }, fmtCost(t.cost_usd)),
      };
      return h('tr', { class: 'clickable' + (t.__new ? ' fresh' : ''), tabindex: '0', testid: 'trace-row', dataset: { traceId: t.trace_id, tenantId: t.tenant_id },
        'aria-label': 'Trace ' + (t.root_name ?? '') + ' ' + (t.ticket_id ?? '') + ', ' + fmtDur(t.duration_ms) + (t.error_count > 0 ? ', ' + t.error_count + ' errors' : ''),
        onclick: open,
        onkeydown: (e) => {
          if (e.key === 'Enter' && e.target === e.currentTarget) { e.preventDefault(); open(); }
          else if (e.key === 'ArrowDown' && e.currentTarget.nextElementSibling) { e.preventDefault(); e.currentTarget.nextElementSibling.focus(); }
          else if (e.key === 'ArrowUp' && e.currentTarget.previousElementSibling) { e.preventDefault(); e.currentTarget.previousElementSibling.focus(); }
        } }, cols.map((c) => { const td = cells[c.id]; td.dataset.label = c.label; return td; }));
    }
    function renderMore() {
      clear(more);
      if (st.cursor) {
        more.appendChild(h('button', { type: 'button', class: 'btn', testid: 'load-more', disabled: st.loading, onclick: () => load(st.cursor) }, st.loading ? 'Loading…' : 'Load more'));
      }
    }
    function renderPlot() {
      clear(plotBox);
      const pts = st.traces.map((t) => ({ t, x: parseTs(t.start_time), y: t.duration_ms })).filter((p) => p.x != null && p.y != null);
      if (!pts.length) { plotBox.appendChild(h('p', { class: 'muted plot-empty' }, 'No traces to plot.')); return; }
      plotBox.appendChild(scatter(pts, (p) => go(traceHref(p.t.trace_id, p.t.tenant_id)), plotBox.clientWidth || 900));
    }

    // --- live traces
    function matches(t) {
      if (params.tenant_id && t.tenant_id !== params.tenant_id) return false;
      if (params.ticket_id && String(t.ticket_id) !== params.ticket_id) return false;
      if (params.agent_id && String(t.agent_id) !== params.agent_id) return false;
      if (params.status === 'error' && !(t.error_count > 0)) return false;
      if (params.status === 'ok' && t.error_count > 0) return false;
      if (params.min_duration_ms && !(t.duration_ms >= Number(params.min_duration_ms))) return false;
      const start = parseTs(t.start_time);
      const since = timeFilterMs(params.since), until = timeFilterMs(params.until);
      if (since != null && start != null && start < since) return false;
      if (until != null && start != null && start > until) return false;
      return true;
    }
    const uncheckable = () => !!(params.name || params.attr);
    function onTrace(t) {
      const k = tkey(t);
      if (st.keys.has(k)) { addTrace(t, false); scheduleRender(); return; }
      if (!matches(t)) return;
      if (!st.pending.some((x) => tkey(x) === k)) st.pending.push(t);
      else st.pending = st.pending.map((x) => (tkey(x) === k ? t : x));
      renderBanner();
    }
    function renderBanner() {
      clear(banner);
      const n = st.pending.length;
      banner.hidden = n === 0;
      if (!n) return;
      banner.appendChild(h('span', null, n + ' new trace' + (n === 1 ? '' : 's') + (uncheckable() ? ' (may not all match the span-name / attribute filter)' : '')));
      banner.appendChild(h('button', { type: 'button', class: 'btn btn-small', testid: 'live-show', onclick: () => {
        const p = st.pending; st.pending = [];
        if (uncheckable()) { renderBanner(); st.traces = []; st.keys.clear(); load(null); return; }
        for (const t of p.reverse()) { t.__new = true; addTrace(t, true); }
        renderBanner(); renderAll();
      } }, 'Show'));
    }

    let resizeTimer = null;
    const onResize = () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderPlot, 150); };
    window.addEventListener('resize', onResize);
    load(null);
    return {
      name: 'search',
      onTrace,
      searchBox: () => inputs.ticket_id,
      destroy() { st.ctrl.abort(); clearTimeout(renderTimer); window.removeEventListener('resize', onResize); },
    };
  }

  // ---------------------------------------------------------------- scatter plot (SVG)
  function niceStep(range, count) {
    const raw = range / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / mag;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }
  // compact labels for round durations on a log axis
  function fmtAxis(ms) {
    for (const [u, n] of [['d', 864e5], ['h', 36e5], ['m', 6e4], ['s', 1e3]]) if (ms >= n && ms % n === 0) return ms / n + ' ' + u;
    return fmtDur(ms);
  }
  const TIME_STEPS = [1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 9e5, 18e5, 36e5, 108e5, 216e5, 432e5, 864e5, 1728e5, 6048e5];
  function scatter(pts, onPick, width) {
    const W = Math.max(300, Math.floor(width)), H = 190;
    const m = { l: 66, r: 14, t: 18, b: 28 };
    let x0 = Math.min(...pts.map((p) => p.x)), x1 = Math.max(...pts.map((p) => p.x));
    if (x1 - x0 < 1000) { x0 -= 30000; x1 += 30000; }
    const padX = (x1 - x0) * 0.03; x0 -= padX; x1 += padX;
    const ys = pts.map((p) => Math.max(0, p.y)).sort((a, b) => a - b);
    const median = ys[Math.floor(ys.length / 2)];
    const top = ys[ys.length - 1];
    // Durations of agent runs spread over decades: use a log scale when a few
    // long traces would squash everything else onto the axis.
    const log = ys.length > 2 && median > 0 && top / median > 20;
    const X = (v) => m.l + ((v - x0) / (x1 - x0)) * (W - m.l - m.r);
    const g = [];
    let Y;
    if (log) {
      const NICE = [1, 10, 100, 1e3, 1e4, 6e4, 6e5, 36e5, 216e5, 864e5, 6048e5];
      const minPos = ys.find((v) => v > 0) || 1;
      const lo = [...NICE].reverse().find((v) => v <= minPos) || 1;
      const hi = NICE.find((v) => v >= top) || top;
      const L = (v) => Math.log10(Math.max(lo, v));
      Y = (v) => H - m.b - ((L(v) - L(lo)) / (L(hi) - L(lo) || 1)) * (H - m.t - m.b);
      for (const v of NICE) {
        if (v < lo || v > hi) continue;
        g.push(svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }));
        g.push(svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick', text: fmtAxis(v) }));
      }
    } else {
      const yMax = top * 1.1 || 1;
      Y = (v) => H - m.b - (v / yMax) * (H - m.t - m.b);
      const ys_ = niceStep(yMax, 4);
      for (let v = 0; v <= yMax + 1e-9; v += ys_) {
        g.push(svg('line', { x1: m.l, x2: W - m.r, y1: Y(v), y2: Y(v), class: 'grid' }));
        g.push(svg('text', { x: m.l - 6, y: Y(v) + 4, 'text-anchor': 'end', class: 'tick', text: fmtDur(v) }));
      }
    }
    g.push(svg('text', { x: 4, y: 11, class: 'axis-label', text: 'duration' + (log ? ' (log scale)' : '') }));
    // x ticks
    const span = x1 - x0;
    const step = TIME_STEPS.find((s) => span / s <= 7) || 6048e5;
    const off = new Date(x0).getTimezoneOffset() * 60000;
    for (let v = Math.ceil((x0 - off) / step) * step + off; v <= x1; v += step) {
      const d = new Date(v);
      let label = pad(d.getHours()) + ':' + pad(d.getMinutes());
      if (step < 6e4) label += ':' + pad(d.getSeconds());
      if (step >= 864e5 || span > 864e5) label = pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + (step < 864e5 ? ' ' + label : '');
      g.push(svg('line', { x1: X(v), x2: X(v), y1: m.t, y2: H - m.b, class: 'grid' }));
      g.push(svg('text', { x: X(v), y: H - m.b + 16, 'text-anchor': 'middle', class: 'tick', text: label }));
    }
    g.push(svg('line', { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: 'axis' }));
    const dots = pts.slice().sort((a, b) => (a.t.error_count > 0) - (b.t.error_count > 0)).map((p) => {
      const err = p.t.error_count > 0;
      const r = 3 + Math.min(6, Math.log2(Math.max(1, p.t.span_count || 1)) / 2);
      return svg('circle', { cx: X(p.x).toFixed(1), cy: Y(Math.max(0, p.y)).toFixed(1), r: r.toFixed(1), class: 'dot ' + (err ? 'err' : 'ok'),
        'data-testid': 'plot-dot', 'data-trace-id': p.t.trace_id, onclick: () => onPick(p) },
      svg('title', { text: (p.t.root_name ?? '') + ' · ' + (p.t.ticket_id ?? '—') + ' · ' + fmtDur(p.y) + ' · ' + fmtTime(p.x) + (err ? ' · ' + p.t.error_count + ' errors' : '') }));
    });
    return svg('svg', { class: 'scatter', width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'aria-label': 'Scatter plot of ' + pts.length + ' traces: start time against duration; errors in red. Click a dot to open the trace.' },
    g, dots);
  }

  // ---------------------------------------------------------------- trace model
  function attrOf(span, keys) {
    const a = span.attributes || {};
    for (const k of keys) if (a[k] != null && a[k] !== '') return a[k];
    return null;
  }
  function numAttr(span, keys) {
    const v = attrOf(span, keys);
    if (v == null) return null;
    const n = Number(v);
    return isFinite(n) ? n : null;
  }
  const LLM_KEYS = {
    model: ['gen_ai.request.model', 'model', 'gen_ai.response.model', 'llm.model'],
    input: ['gen_ai.usage.input_tokens', 'input_tokens', 'gen_ai.usage.prompt_tokens', 'prompt_tokens'],
    output: ['gen_ai.usage.output_tokens', 'output_tokens', 'gen_ai.usage.completion_tokens', 'completion_tokens'],
    cacheRead: ['gen_ai.usage.cache_read.input_tokens', 'gen_ai.usage.cache_read_input_tokens', 'gen_ai.usage.cache_read_tokens', 'cache_read_input_tokens', 'cache_read_tokens'],
    cacheWrite: ['gen_ai.usage.cache_creation.input_tokens', 'gen_ai.usage.cache_creation_input_tokens', 'gen_ai.usage.cache_write_tokens', 'cache_creation_input_tokens', 'cache_write_tokens'],
    cost: ['swarm.cost_usd', 'cost_usd', 'gen_ai.usage.cost'],
  };
  const isLlm = (s) => s.name === 'llm.generate' || (s.attributes && s.attributes['gen_ai.request.model'] != null);
  const isIncomplete = (s) => { const v = s.attributes && s.attributes['swarm.incomplete']; return v === true || v === 'true'; };

  function buildModel(doc) {
    const spans = Array.isArray(doc.spans) ? doc.spans : [];
    const nodes = spans.map((s, i) => ({
      s, i, id: String(s.span_id), pid: s.parent_span_id == null || s.parent_span_id === '' ? null : String(s.parent_span_id),
      name: String(s.name ?? '(unnamed)'), start: parseTs(s.start_time), end: parseTs(s.end_time),
      open: s.end_time == null, incomplete: isIncomplete(s), orphan: s.orphan === true,
      status: String(s.status || 'unset'), kind: String(s.kind || 'internal'),
      children: [], parent: null, depth: 0, size: 1, pos: -1, llm: isLlm(s),
    }));
    const byId = new Map();
    for (const n of nodes) if (!byId.has(n.id)) byId.set(n.id, n);
    let t0 = Infinity, t1 = -Infinity;
    for (const n of nodes) {
      if (n.start == null) n.start = parseTs(doc.trace && doc.trace.start_time) ?? 0;
      t0 = Math.min(t0, n.start);
      t1 = Math.max(t1, n.end ?? n.start);
    }
    const sumEnd = parseTs(doc.trace && doc.trace.end_time);
    if (sumEnd != null) t1 = Math.max(t1, sumEnd);
    if (!nodes.length) { t0 = parseTs(doc.trace && doc.trace.start_time) ?? 0; t1 = sumEnd ?? t0 + 1; }
    if (!(t1 > t0)) t1 = t0 + 1;
    const roots = [];
    for (const n of nodes) {
      const p = n.pid != null ? byId.get(n.pid) : null;
      if (p && p !== n) { n.parent = p; p.children.push(n); } else {
        if (n.pid != null && !p) n.orphan = true;
        roots.push(n);
      }
    }
    const byStart = (a, b) => a.start - b.start || a.i - b.i;
    // Depth-first order (iterative: deep chains must not blow the stack).
    const dfs = [];
    const seen = new Set();
    const visit = (root) => {
      const stack = [[root, 0]];
      while (stack.length) {
        const [n, d] = stack.pop();
        if (seen.has(n)) continue;
        seen.add(n);
        n.depth = d; n.pos = dfs.length; dfs.push(n);
        n.children.sort(byStart);
        for (let i = n.children.length - 1; i >= 0; i--) stack.push([n.children[i], d + 1]);
      }
    };
    roots.sort((a, b) => (a.orphan - b.orphan) || byStart(a, b));
    for (const r of roots) visit(r);
    // Spans caught in a parent cycle were never reached: show them at root level.
    for (const n of nodes) if (!seen.has(n)) { n.parent = null; n.orphan = true; visit(n); }
    for (let i = dfs.length - 1; i >= 0; i--) { const n = dfs[i]; n.size = 1; for (const c of n.children) n.size += c.size; }
    // Subtree error flag (for collapsed rows).
    for (let i = dfs.length - 1; i >= 0; i--) { const n = dfs[i]; n.subErr = n.status === 'error' || n.children.some((c) => c.subErr); }
    return { nodes, byId, dfs, roots, t0, t1 };
  }

  // Critical path, Jaeger style: from the root walk back from its end to the
  // last-finishing child, recursively; a section of a parent is critical while
  // none of its children runs. Open spans end at the trace end. Agents start
  // work asynchronously (agent.execute outlives vm.spawn), so instead of
  // clipping a child to its parent, a parent is extended to cover its
  // descendants; a child starting before its parent (clock skew) is clipped.
  function criticalPath(model) {
    const segs = new Map(); // id -> [[start, end]]
    const root = model.roots.find((r) => !r.orphan) || model.roots[0];
    if (!root) return segs;
    const push = (n, a, b) => { if (b > a || (b === a && !n.children.length)) { if (!segs.has(n.id)) segs.set(n.id, []); segs.get(n.id).push([a, b]); } };
    const effEnd = new Map();
    for (let i = model.dfs.length - 1; i >= 0; i--) {
      const n = model.dfs[i];
      let e = n.end ?? model.t1;
      for (const c of n.children) e = Math.max(e, effEnd.get(c));
      effEnd.set(n, e);
    }
    const clip = new Map();
    const stack = [[root, root.start]];
    while (stack.length) {
      const [n, ps] = stack.pop();
      const s = Math.max(n.start, ps);
      clip.set(n, [s, Math.max(s, effEnd.get(n))]);
      for (const c of n.children) stack.push([c, s]);
    }
    // children of each node by clipped end, latest first; a pointer per node
    // only moves forward because the time we return to a node only decreases
    const sortedKids = new Map();
    const kidsOf = (n) => {
      let k = sortedKids.get(n);
      if (!k) {
        k = { list: n.children.filter((c) => clip.has(c)).sort((x, y) => clip.get(y)[1] - clip.get(x)[1] || clip.get(y)[0] - clip.get(x)[0]), i: 0 };
        sortedKids.set(n, k);
      }
      return k;
    };
    const visited = new Set([root]);
    let cur = root, returning = null;
    while (cur) {
      const [cs, ce] = clip.get(cur);
      const limit = returning == null ? ce : returning;
      const k = kidsOf(cur);
      while (k.i < k.list.length && (visited.has(k.list[k.i]) || clip.get(k.list[k.i])[1] > limit)) k.i++;
      const child = k.list[k.i];
      if (child) {
        push(cur, clip.get(child)[1], limit);
        visited.add(child);
        cur = child; returning = null;
      } else {
        push(cur, cs, limit);
        if (cur === root || !cur.parent || !clip.has(cur.parent)) break;
        returning = cs; cur = cur.parent;
      }
    }
    return segs;
  }

  // ---------------------------------------------------------------- trace view
  function traceView(ctx, r) {
    const traceId = r.arg;
    const tenantId = r.params.get('tenant_id') || '';
    document.title = 'Trace ' + shortId(traceId) + ' · swarmscope';
    const ctrl = new AbortController();
    const tv = { model: null, doc: null, visible: [], collapsed: new Set(), selected: null, focus: 0, critOn: false, crit: new Map(),
      vs: 0, ve: 1, find: '', matchSet: new Set(), matchList: [], matchIdx: -1, updated: false };
    const el = {};
    ctx.main.appendChild(h('div', { class: 'loading' }, 'Loading trace…'));

    (async () => {
      let doc;
      try {
        doc = await api('/api/traces/' + encodeURIComponent(traceId), { tenant_id: tenantId }, { signal: ctrl.signal });
      } catch (e) {
        if (isAbort(e) || !ctx.alive()) return;
        clear(ctx.main);
        let m = 'Could not load trace ' + traceId + ': ' + errText(e);
        if (e.status === 404) m = 'Trace ' + traceId + ' was not found' + (tenantId ? ' in tenant ' + tenantId : '') + '.';
        ctx.main.appendChild(msg('error', m, h('p', null, h('a', { href: '#/search' }, '← Back to search'))));
        return;
      }
      if (!ctx.alive()) return;
      tv.doc = doc;
      tv.model = buildModel(doc);
      tv.vs = tv.model.t0; tv.ve = tv.model.t1;
      tv.crit = criticalPath(tv.model);
      // default: collapse nothing, except huge traces where level-3+ groups with many children start collapsed? keep all open.
      render();
      selectFromRoute(r);
    })();

    function summary() { return (tv.doc && tv.doc.trace) || {}; }
    function llmRows() { return tv.model.dfs.filter((n) => n.llm); }

    function render() {
      clear(ctx.main);
      const t = summary();
      const m = tv.model;
      const llm = llmRows();
      const spanCost = llm.reduce((a, n) => a + (numAttr(n.s, LLM_KEYS.cost) || 0), 0);
      const cost = t.cost_usd != null ? Number(t.cost_usd) : (llm.length ? spanCost : null);
      const nIncomplete = m.nodes.filter((n) => n.incomplete).length;
      const nOpen = m.nodes.filter((n) => n.open).length;
      const nOrphan = m.nodes.filter((n) => n.orphan).length;
      const nErr = t.error_count ?? m.nodes.filter((n) => n.status === 'error').length;
      const tid = t.tenant_id ?? tenantId;
      document.title = (t.root_name || 'Trace') + ' ' + shortId(traceId) + ' · swarmscope';
      const meta = (label, value, cls) => h('div', { class: 'meta-item' + (cls ? ' ' + cls : '') }, h('dt', null, label), h('dd', null, value));
      const header = h('section', { class: 'trace-header card', 'aria-label': 'Trace summary' },
        h('div', { class: 'trace-title' },
          h('a', { href: '#/search', class: 'back', 'aria-label': 'Back to search' }, '←'),
          h('h1', null, String(t.root_name ?? (m.roots[0] ? m.roots[0].name : 'trace'))),
          h('code', { class: 'mono trace-id-full', title: 'Trace id' }, String(t.trace_id ?? traceId)),
          copyButton(String(t.trace_id ?? traceId), 'Copy trace id'),
          t.error_count > 0 ? h('span', { class: 'badge status-error' }, 'ERROR') : null,
          nIncomplete ? h('span', { class: 'badge incomplete' }, 'INCOMPLETE') : null),
        h('dl', { class: 'meta' },
          meta('Tenant', String(tid || '—')),
          meta('Ticket', t.ticket_id != null ? h('a', { href: ticketHref(t.ticket_id, tid), testid: 'trace-ticket-link' }, String(t.ticket_id)) : '—'),
          meta('Agent', String(t.agent_id ?? '—')),
          meta('Start', fmtTime(parseTs(t.start_time) ?? m.t0)),
          meta('Duration', t.duration_ms != null ? fmtDur(t.duration_ms) : fmtDur(m.t1 - m.t0) + ' (open)'),
          meta('Spans', fmtInt(t.span_count ?? m.nodes.length)),
          meta('Errors', fmtInt(nErr), nErr > 0 ? 'err-text' : null),
          meta('LLM cost', h('span', { testid: 'trace-cost' }, fmtCost(cost))),
          meta('LLM calls', fmtInt(llm.length))),
        warnings());
      function warnings() {
        const w = [];
        if (tv.doc.truncated) w.push(h('li', null, 'Truncated: only the first ' + fmtInt(m.nodes.length) + ' spans (by start time) are shown.'));
        if (nIncomplete) w.push(h('li', null, nIncomplete + ' span' + (nIncomplete > 1 ? 's were' : ' was') + ' closed by the collector as incomplete (the VM died or the trace went silent).'));
        if (nOpen) w.push(h('li', null, nOpen + ' span' + (nOpen > 1 ? 's have' : ' has') + ' not ended yet (drawn hatched to the trace end).'));
        if (nOrphan) w.push(h('li', null, nOrphan + ' orphan span' + (nOrphan > 1 ? 's name parents' : ' names a parent') + ' missing from the trace (shown at root level).'));
        return w.length ? h('ul', { class: 'trace-warnings' }, w) : null;
      }
      el.updateBanner = h('div', { class: 'live-banner', hidden: !tv.updated },
        h('span', null, 'This trace received new data.'),
        h('button', { type: 'button', class: 'btn btn-small', testid: 'trace-reload', onclick: () => route(true) }, 'Reload'));

      // toolbar
      el.find = h('input', { type: 'search', class: 'find', placeholder: 'Find span (name, id, service)…', 'aria-label': 'Find span', testid: 'span-find',
        oninput: () => { tv.find = el.find.value.trim().toLowerCase(); computeMatches(); renderRows(); },
        onkeydown: (e) => { if (e.key === 'Enter') { e.preventDefault(); nextMatch(e.shiftKey ? -1 : 1); } else if (e.key === 'Escape') { el.find.value = ''; tv.find = ''; computeMatches(); renderRows(); } } });
      el.findCount = h('span', { class: 'find-count muted', 'aria-live': 'polite' });
      el.critBtn = h('button', { type: 'button', class: 'btn toggle', 'aria-pressed': 'false', testid: 'critical-path-toggle', onclick: () => {
        tv.critOn = !tv.critOn; el.critBtn.setAttribute('aria-pressed', String(tv.critOn)); renderRows();
      } }, 'Critical path');
      el.zoomReset = h('button', { type: 'button', class: 'btn', hidden: true, onclick: () => setZoom(m.t0, m.t1) }, 'Reset zoom');
      const toolbar = h('div', { class: 'wf-toolbar', role: 'toolbar', 'aria-label': 'Waterfall tools' },
        h('button', { type: 'button', class: 'btn', onclick: () => { tv.collapsed.clear(); relayout(); } }, 'Expand all'),
        h('button', { type: 'button', class: 'btn', onclick: collapseAll }, 'Collapse all'),
        el.critBtn, el.zoomReset,
        h('span', { class: 'spacer' }),
        el.find, el.findCount);

      // waterfall
      el.ruler = h('div', { class: 'wf-ruler', title: 'Drag to zoom into a time range' });
      el.rows = h('div', { class: 'wf-rows', role: 'presentation' });
      el.scroller = h('div', { class: 'wf-scroll', tabindex: '0', role: 'tree', 'aria-label': 'Span waterfall: arrow keys move, Enter opens details, left/right collapse and expand', testid: 'waterfall' }, el.rows);
      el.scroller.addEventListener('scroll', () => scheduleRows(), { passive: true });
      el.scroller.addEventListener('keydown', onWfKey);
      // no re-render here: a mousedown focuses the scroller before the click lands on its row
      el.scroller.addEventListener('focus', () => { if (tv.visible[tv.focus] && document.getElementById('wf-row-' + tv.focus)) el.scroller.setAttribute('aria-activedescendant', 'wf-row-' + tv.focus); });
      el.rows.addEventListener('click', onRowClick);
      el.detail = h('aside', { class: 'span-detail', testid: 'span-detail', 'aria-label': 'Span detail', tabindex: '-1', hidden: true });
      const wf = h('section', { class: 'waterfall card', 'aria-label': 'Waterfall' },
        el.head = h('div', { class: 'wf-head' }, h('div', { class: 'wf-head-label' }, 'Span'), el.ruler), el.scroller);
      el.mainGrid = h('div', { class: 'trace-main' }, wf, el.detail);

      // panels
      el.logs = h('section', { class: 'card panel logs-panel', 'aria-label': 'Logs' });
      el.llm = h('section', { class: 'card panel llm-panel', 'aria-label': 'LLM calls' });
      append(ctx.main, header, el.updateBanner, toolbar, el.mainGrid, h('div', { class: 'panels' }, el.llm, el.logs));
      setupRuler();
      relayout();
      renderLogs();
      renderLlm();
    }

    // ----- layout of visible rows
    function relayout(keepNode) {
      const m = tv.model;
      const prev = keepNode || tv.visible[tv.focus];
      const vis = [];
      for (let i = 0; i < m.dfs.length;) {
        const n = m.dfs[i];
        n.vi = vis.length;
        vis.push(n);
        if (tv.collapsed.has(n.id)) {
          for (let j = i + 1; j < i + n.size; j++) m.dfs[j].vi = -1;
          i += n.size;
        } else i++;
      }
      tv.visible = vis;
      // keep the cursor on the same span, or on its nearest visible ancestor
      let k = prev;
      while (k && k.vi < 0) k = k.parent;
      if (k) tv.focus = k.vi;
      tv.focus = Math.max(0, Math.min(tv.focus, vis.length - 1));
      el.rows.style.height = vis.length * ROW_H + 'px';
      el.scroller.style.setProperty('--rows-h', Math.max(ROW_H * 3, vis.length * ROW_H) + 'px');
      renderRuler();
      renderRows();
    }
    // Collapse every span below the root level that has children.
    function collapseAll() {
      tv.collapsed.clear();
      for (const n of tv.model.dfs) if (n.depth >= 1 && n.children.length) tv.collapsed.add(n.id);
      let k = tv.visible[tv.focus];
      while (k && k.parent && k.depth > 1) k = k.parent;
      relayout(k);
    }
    let rafPending = false;
    function scheduleRows() {
      if (rafPending) return;
      rafPending = true;
      requestAnimationFrame(() => { rafPending = false; renderRows(false); });
    }
    const pct = (v) => ((v - tv.vs) / (tv.ve - tv.vs)) * 100;
    // Only the rows in (and just around) the viewport exist in the DOM. A
    // scroll adds and drops rows; any other change rebuilds the window.
    const rowCache = new Map();
    function renderRows(full = true) {
      if (!el.rows) return;
      const vis = tv.visible;
      const top = el.scroller.scrollTop;
      const ht = el.scroller.clientHeight || 600;
      const first = Math.max(0, Math.min(Math.floor(top / ROW_H), vis.length - Math.ceil(ht / ROW_H)) - 8);
      const last = Math.min(vis.length, Math.ceil((top + ht) / ROW_H) + 8);
      if (full) { rowCache.clear(); el.rows.replaceChildren(); }
      for (const [i, r] of rowCache) if (i < first || i >= last) { r.remove(); rowCache.delete(i); }
      // keep DOM order = visual order: the cached rows are one contiguous run
      let lo = Infinity;
      for (const i of rowCache.keys()) lo = Math.min(lo, i);
      const before = document.createDocumentFragment(), after = document.createDocumentFragment();
      for (let i = first; i < last; i++) {
        if (rowCache.has(i)) continue;
        const r = rowEl(vis[i], i);
        rowCache.set(i, r);
        (i < lo ? before : after).appendChild(r);
      }
      el.rows.insertBefore(before, el.rows.firstChild);
      el.rows.appendChild(after);
      if (!full) return;
      const f = vis[tv.focus];
      if (f && document.activeElement === el.scroller) el.scroller.setAttribute('aria-activedescendant', 'wf-row-' + tv.focus);
      else el.scroller.removeAttribute('aria-activedescendant');
      if (el.findCount) el.findCount.textContent = tv.find ? (tv.matchList.length ? (tv.matchIdx >= 0 ? (tv.matchIdx + 1) + ' of ' : '') + tv.matchList.length + ' match' + (tv.matchList.length === 1 ? '' : 'es') : 'no match') : '';
    }
    function rowEl(n, i) {
      const s = n.s;
      const hasKids = n.children.length > 0;
      const collapsed = tv.collapsed.has(n.id);
      const crit = tv.critOn && tv.crit.has(n.id);
      const cls = ['wf-row'];
      if (i === tv.focus) cls.push('focused');
      if (tv.selected === n) cls.push('selected');
      if (crit) cls.push('crit');
      if (tv.matchSet.has(n)) cls.push('match');
      if (n.status === 'error') cls.push('is-error');
      const badges = [h('span', { class: 'badge kind', title: 'span kind' }, n.kind)];
      if (n.status === 'error' && !n.incomplete) badges.push(h('span', { class: 'badge status-error' }, 'error'));
      if (n.incomplete) badges.push(h('span', { class: 'badge incomplete', title: String(s.status_message ?? 'closed by the collector') }, 'INCOMPLETE'));
      if (n.open) badges.push(h('span', { class: 'badge open', title: 'span has not ended' }, 'OPEN'));
      if (n.orphan) badges.push(h('span', { class: 'badge orphan', title: 'parent ' + (n.pid ?? '?') + ' is not in the trace' }, 'ORPHAN'));
      if (collapsed) badges.push(h('span', { class: 'badge hidden-count', title: (n.size - 1) + ' hidden spans' }, '+' + (n.size - 1) + (n.subErr && n.status !== 'error' ? ' ⚠' : '')));
      const label = h('div', { class: 'wf-label', style: { paddingLeft: 'calc(6px + ' + Math.min(n.depth, 40) + ' * var(--indent, 14px))' } },
        hasKids
          ? h('button', { type: 'button', class: 'twisty', tabindex: '-1', 'aria-label': (collapsed ? 'Expand ' : 'Collapse ') + n.name, dataset: { toggle: '1' } }, collapsed ? '▸' : '▾')
          : h('span', { class: 'twisty-spacer', 'aria-hidden': 'true' }),
        h('span', { class: 'svc', style: { background: colorFor(s.service || n.name) }, title: 'service: ' + (s.service ?? '—'), 'aria-hidden': 'true' }),
        h('span', { class: 'wf-name', title: n.name }, n.name),
        h('span', { class: 'wf-badges' }, badges));
      const end = n.end ?? tv.model.t1;
      const l = pct(n.start), rgt = pct(end);
      const cl = Math.max(-1, Math.min(101, l)), cr = Math.max(-1, Math.min(101, rgt));
      const barCls = ['bar', 'status-' + (n.status === 'error' || n.status === 'ok' ? n.status : 'unset')];
      if (n.open) barCls.push('open');
      if (n.incomplete) barCls.push('incomplete');
      const bar = h('div', { class: barCls.join(' '), style: { left: cl + '%', width: Math.max(0, cr - cl) + '%' } });
      const durMs = n.open ? null : (s.duration_ms ?? (n.end - n.start));
      const durText = n.open ? 'open · ' + fmtDur(end - n.start) + '+' : fmtDur(durMs);
      let durLbl;
      if (rgt < 0) durLbl = h('span', { class: 'bar-label off', style: { left: '4px' }, title: 'before the zoomed range' }, '◂ ' + durText);
      else if (l > 100) durLbl = h('span', { class: 'bar-label off', style: { right: '4px' }, title: 'after the zoomed range' }, durText + ' ▸');
      else if (cr < 78) durLbl = h('span', { class: 'bar-label', style: { left: 'calc(' + Math.max(0, cr) + '% + 4px)' } }, durText);
      else if (cl >= 20) durLbl = h('span', { class: 'bar-label', style: { right: 'calc(' + Math.max(0, 100 - cl) + '% + 4px)' } }, durText);
      // a bar spanning (almost) the whole range: no room on either side, label inside it
      else durLbl = h('span', { class: 'bar-label inside', style: { right: 'calc(' + Math.max(0, 100 - cr) + '% + 6px)' } }, durText);
      const tl = [bar];
      if (crit) {
        for (const [a, b] of tv.crit.get(n.id)) {
          const x = Math.max(0, pct(a)), y = Math.min(100, pct(b));
          if (y >= x) tl.push(h('div', { class: 'crit-seg', style: { left: x + '%', width: Math.max(0.15, y - x) + '%' } }));
        }
      }
      tl.push(durLbl);
      const timeline = h('div', { class: 'wf-timeline' }, tl);
      return h('div', {
        id: 'wf-row-' + i, class: cls.join(' '), role: 'treeitem', style: { top: i * ROW_H + 'px' },
        testid: 'span-row', dataset: { spanName: n.name, spanId: n.id, idx: String(i), incomplete: n.incomplete ? 'true' : null, status: n.status, depth: String(n.depth) },
        'aria-level': String(n.depth + 1), 'aria-expanded': hasKids ? String(!collapsed) : null, 'aria-selected': String(tv.selected === n),
        'aria-label': n.name + ', ' + durText + (n.status === 'error' ? ', error' : '') + (n.incomplete ? ', incomplete' : '') + (n.orphan ? ', orphan' : ''),
      }, label, timeline);
    }
    const colorCache = new Map();
    function colorFor(key) {
      key = String(key);
      if (colorCache.has(key)) return colorCache.get(key);
      let hsh = 0;
      for (let i = 0; i < key.length; i++) hsh = (hsh * 31 + key.charCodeAt(i)) | 0;
      const c = 'hsl(' + (Math.abs(hsh) % 360) + ' 55% 55%)';
      colorCache.set(key, c);
      return c;
    }

    // ----- ruler + zoom
    function renderRuler() {
      clear(el.ruler);
      // keep the ruler over the rows: the rows lose the scrollbar's width
      el.head.style.paddingRight = Math.max(0, el.scroller.offsetWidth - el.scroller.clientWidth) + 'px';
      const rw = el.ruler.clientWidth || 600;
      const span = tv.ve - tv.vs;
      const step = niceStep(span, Math.max(2, Math.min(6, Math.floor(rw / 110))));
      const base = tv.model.t0;
      const firstTick = Math.ceil((tv.vs - base) / step) * step;
      for (let v = firstTick; base + v <= tv.ve + 1e-9; v += step) {
        const p = pct(base + v);
        const end = p > 82 || (p / 100) * rw + 48 > rw; // a label that would not fit ends at its tick
        el.ruler.appendChild(h('span', { class: 'tick' + (end ? ' tick-end' : ''), style: end ? { right: (100 - p) + '%' } : { left: p + '%' } }, fmtDur(v)));
      }
      el.ruler.appendChild(el.sel = h('div', { class: 'ruler-sel', hidden: true }));
      el.zoomReset.hidden = !(tv.vs > tv.model.t0 || tv.ve < tv.model.t1);
      el.scroller.style.setProperty('--grid-step', (step / span) * 100 + '%');
    }
    function setZoom(a, b) {
      if (b - a < 0.001) b = a + 0.001;
      tv.vs = a; tv.ve = b;
      renderRuler(); renderRows();
    }
    function setupRuler() {
      let startX = null;
      const toT = (x) => { const r = el.ruler.getBoundingClientRect(); return tv.vs + Math.max(0, Math.min(1, (x - r.left) / r.width)) * (tv.ve - tv.vs); };
      el.ruler.addEventListener('mousedown', (e) => { startX = e.clientX; e.preventDefault(); });
      window.addEventListener('mousemove', onMove);
      window.addEventListener('mouseup', onUp);
      function onMove(e) {
        if (startX == null || !el.sel) return;
        const r = el.ruler.getBoundingClientRect();
        const a = Math.max(r.left, Math.min(startX, e.clientX)), b = Math.min(r.right, Math.max(startX, e.clientX));
        el.sel.hidden = false; el.sel.style.left = (a - r.left) + 'px'; el.sel.style.width = (b - a) + 'px';
      }
      function onUp(e) {
        if (startX == null) return;
        const x0 = startX; startX = null;
        if (el.sel) el.sel.hidden = true;
        if (Math.abs(e.clientX - x0) < 4) return;
        const a = toT(Math.min(x0, e.clientX)), b = toT(Math.max(x0, e.clientX));
        setZoom(a, b);
      }
      // the tick count depends on the ruler's width: redo the ticks when it changes
      let rulerW = el.ruler.clientWidth;
      const ro = typeof ResizeObserver === 'function' ? new ResizeObserver(() => {
        const w = el.ruler.clientWidth;
        if (w !== rulerW) { rulerW = w; renderRuler(); }
      }) : null;
      if (ro) ro.observe(el.ruler);
      tv.cleanupRuler = () => { window.removeEventListener('mousemove', onMove); window.removeEventListener('mouseup', onUp); if (ro) ro.disconnect(); };
    }

    // ----- find
    function computeMatches() {
      tv.matchSet = new Set(); tv.matchList = []; tv.matchIdx = -1;
      const q = tv.find;
      if (!q) return;
      for (const n of tv.model.dfs) {
        if (n.name.toLowerCase().includes(q) || n.id.toLowerCase().startsWith(q) || String(n.s.service ?? '').toLowerCase().includes(q)) { tv.matchSet.add(n); tv.matchList.push(n); }
      }
    }
    function nextMatch(dir) {
      if (!tv.matchList.length) return;
      tv.matchIdx = (tv.matchIdx + dir + tv.matchList.length) % tv.matchList.length;
      select(tv.matchList[tv.matchIdx], { scroll: true, focusWf: false });
    }

    // ----- interaction
    function ensureVisible(n) {
      let changed = false;
      for (let p = n.parent; p; p = p.parent) if (tv.collapsed.delete(p.id)) changed = true;
      if (changed) relayout();
    }
    function scrollToIndex(i) {
      const sc = el.scroller;
      const top = i * ROW_H;
      if (top < sc.scrollTop) sc.scrollTop = top;
      else if (top + ROW_H > sc.scrollTop + sc.clientHeight) sc.scrollTop = top + ROW_H - sc.clientHeight;
    }
    function centerIndex(i) {
      const sc = el.scroller;
      const top = i * ROW_H;
      if (top < sc.scrollTop || top + ROW_H > sc.scrollTop + sc.clientHeight) sc.scrollTop = Math.max(0, top - sc.clientHeight / 2);
    }
    function select(n, opts = {}) {
      if (!n) return;
      ensureVisible(n);
      tv.selected = n;
      tv.focus = n.vi;
      if (opts.scroll) centerIndex(n.vi); else scrollToIndex(n.vi);
      renderRows();
      renderDetail();
      renderLlmSelection();
      const url = traceHref(traceId, tenantId, { span: n.id });
      if (location.hash !== url) history.replaceState(null, '', url);
      if (opts.focusWf) el.scroller.focus({ preventScroll: true });
      if (opts.reveal) el.mainGrid.scrollIntoView({ block: 'start', behavior: 'auto' });
    }
    function closeDetail() {
      tv.selected = null;
      el.detail.hidden = true;
      el.mainGrid.classList.remove('with-detail');
      renderRows();
      const url = traceHref(traceId, tenantId);
      if (location.hash !== url) history.replaceState(null, '', url);
      el.scroller.focus({ preventScroll: true });
    }
    function onRowClick(e) {
      const row = e.target.closest('.wf-row');
      if (!row) return;
      const i = Number(row.dataset.idx);
      const n = tv.visible[i];
      if (!n) return;
      if (e.target.closest('[data-toggle]')) { toggle(n); el.scroller.focus({ preventScroll: true }); return; }
      tv.focus = i;
      select(n, { focusWf: true });
    }
    function toggle(n) {
      if (!n.children.length) return;
      if (tv.collapsed.has(n.id)) tv.collapsed.delete(n.id); else tv.collapsed.add(n.id);
      relayout(n);
    }
    function moveFocus(i) {
      tv.focus = Math.max(0, Math.min(tv.visible.length - 1, i));
      scrollToIndex(tv.focus);
      renderRows();
      // keep the detail panel following the cursor when it is open
      if (tv.selected && !el.detail.hidden) select(tv.visible[tv.focus]);
    }
    function onWfKey(e) {
      const vis = tv.visible;
      const n = vis[tv.focus];
      const page = Math.max(1, Math.floor(el.scroller.clientHeight / ROW_H) - 1);
      switch (e.key) {
        case 'ArrowDown': moveFocus(tv.focus + 1); break;
        case 'ArrowUp': moveFocus(tv.focus - 1); break;
        case 'PageDown': moveFocus(tv.focus + page); break;
        case 'PageUp': moveFocus(tv.focus - page); break;
        case 'Home': moveFocus(0); break;
        case 'End': moveFocus(vis.length - 1); break;
        case 'ArrowRight':
          if (!n) break;
          if (n.children.length && tv.collapsed.has(n.id)) toggle(n);
          else if (n.children.length) moveFocus(tv.focus + 1);
          break;
        case 'ArrowLeft':
          if (!n) break;
          if (n.children.length && !tv.collapsed.has(n.id)) toggle(n);
          else if (n.parent && n.parent.vi >= 0) moveFocus(n.parent.vi);
          break;
        case 'Enter': case ' ':
          if (n) select(n, { focusWf: true });
          break;
        default: return;
      }
      e.preventDefault();
    }

    // ----- detail panel
    function renderDetail() {
      const n = tv.selected;
      const d = clear(el.detail);
      if (!n) { d.hidden = true; el.mainGrid.classList.remove('with-detail'); return; }
      d.hidden = false;
      el.mainGrid.classList.add('with-detail');
      const s = n.s;
      const t0 = tv.model.t0;
      const row = (label, value) => h('div', { class: 'kv' }, h('dt', null, label), h('dd', null, value));
      const parent = n.pid == null ? '— (root)' : tv.model.byId.has(n.pid)
        ? h('button', { type: 'button', class: 'linklike mono', onclick: () => select(tv.model.byId.get(n.pid), { scroll: true }) }, n.pid, ' (' + tv.model.byId.get(n.pid).name + ')')
        : h('span', null, h('code', { class: 'mono' }, n.pid), ' ', h('span', { class: 'badge orphan' }, 'missing'));
      const attrs = s.attributes && typeof s.attributes === 'object' ? s.attributes : {};
      const keys = Object.keys(attrs).sort();
      const events = Array.isArray(s.events) ? s.events : [];
      const spanLogs = (tv.doc.logs || []).filter((l) => l && String(l.span_id) === n.id);
      const durText = n.open ? 'not ended (' + fmtDur(tv.model.t1 - n.start) + ' so far)' : fmtDur(s.duration_ms ?? n.end - n.start);
      append(d,
        h('div', { class: 'detail-head' },
          h('h2', { id: 'detail-title' }, n.name),
          h('button', { type: 'button', class: 'btn btn-ghost icon-btn', 'aria-label': 'Close span detail (Esc)', title: 'Close (Esc)', testid: 'span-detail-close', onclick: closeDetail }, '✕')),
        h('div', { class: 'detail-badges' },
          h('span', { class: 'badge status-' + n.status }, n.status),
          h('span', { class: 'badge kind' }, n.kind),
          n.incomplete ? h('span', { class: 'badge incomplete' }, 'INCOMPLETE') : null,
          n.open ? h('span', { class: 'badge open' }, 'OPEN') : null,
          n.orphan ? h('span', { class: 'badge orphan' }, 'ORPHAN') : null,
          tv.crit.has(n.id) ? h('span', { class: 'badge crit-badge' }, 'critical path') : null),
        s.status_message ? h('p', { class: 'status-message' + (n.status === 'error' ? ' err' : ''), testid: 'span-status-message' }, String(s.status_message)) : null,
        h('dl', { class: 'kvs' },
          row('Span id', h('span', null, h('code', { class: 'mono' }, n.id), copyButton(n.id, 'Copy span id'))),
          row('Parent', parent),
          row('Kind', n.kind),
          row('Status', n.status + (s.status_message ? ' — ' + s.status_message : '')),
          row('Start', fmtTime(n.start) + '  (+' + fmtDur(n.start - t0) + ')'),
          row('End', n.open ? '—' : fmtTime(n.end) + '  (+' + fmtDur(n.end - t0) + ')'),
          row('Duration', durText),
          row('Service', String(s.service ?? '—')),
          row('VM', String(s.vm_id ?? '—')),
          s.ticket_id != null ? row('Ticket', String(s.ticket_id)) : null,
          s.agent_id != null ? row('Agent', String(s.agent_id)) : null,
          row('Children', fmtInt(n.children.length) + (n.size > 1 ? ' (' + fmtInt(n.size - 1) + ' descendants)' : ''))),
        h('div', { class: 'detail-actions' },
          h('button', { type: 'button', class: 'btn btn-small', onclick: () => { const e = n.end ?? tv.model.t1; const padd = (e - n.start) * 0.05 || 1; setZoom(Math.max(tv.model.t0, n.start - padd), Math.min(tv.model.t1, e + padd)); } }, 'Zoom to span'),
          n.children.length ? h('button', { type: 'button', class: 'btn btn-small', onclick: () => toggle(n) }, tv.collapsed.has(n.id) ? 'Expand' : 'Collapse') : null),
        h('h3', null, 'Attributes ', h('span', { class: 'muted' }, '(' + keys.length + ')')),
        keys.length ? h('table', { class: 'data attrs', 'aria-label': 'Span attributes' },
          h('tbody', null, keys.map((k) => h('tr', { testid: 'span-attr', dataset: { key: k } },
            h('th', { scope: 'row', class: 'mono' }, breakable(k)),
            h('td', { class: 'mono attr-val' + (typeof attrs[k] === 'object' && attrs[k] !== null ? ' pre' : '') }, attrValue(attrs[k]))))))
          : h('p', { class: 'muted' }, 'No attributes.'),
        h('h3', null, 'Events ', h('span', { class: 'muted' }, '(' + events.length + ')')),
        events.length ? h('ol', { class: 'events' }, events.map((ev) => {
          const ts = parseTs(ev && ev.timestamp);
          const ea = ev && ev.attributes && typeof ev.attributes === 'object' ? ev.attributes : {};
          return h('li', { class: 'event', testid: 'span-event' },
            h('div', null, h('b', null, String(ev && ev.name != null ? ev.name : '(event)')), ' ',
              h('span', { class: 'muted' }, fmtTime(ts, false) + (ts != null ? '  (+' + fmtDur(ts - n.start) + ' into span)' : ''))),
            Object.keys(ea).length ? h('table', { class: 'data attrs small' }, h('tbody', null, Object.keys(ea).sort().map((k) => h('tr', null, h('th', { scope: 'row', class: 'mono' }, k), h('td', { class: 'mono' }, fmtValue(ea[k])))))) : null);
        })) : h('p', { class: 'muted' }, 'No events.'),
        h('h3', null, 'Logs of this span ', h('span', { class: 'muted' }, '(' + spanLogs.length + ')')),
        spanLogs.length ? h('ol', { class: 'span-logs' }, spanLogs.slice(0, 100).map((l) => h('li', { class: 'lvl-' + levelOf(l) },
          h('span', { class: 'mono muted' }, fmtTime(logTime(l), false)), ' ', h('span', { class: 'lvl' }, levelOf(l)), ' ', String(l.message ?? ''))))
          : h('p', { class: 'muted' }, 'No log lines carry this span id.'));
    }

    // ----- logs panel
    const logState = { level: 'all', q: '', onlySpan: false, limit: 500 };
    function levelOf(l) { const v = String(l.level ?? 'info').toLowerCase(); return v === 'warning' ? 'warn' : v === 'critical' ? 'fatal' : v; }
    function logTime(l) { return parseTs(l.timestamp ?? l.time ?? l.ts); }
    function renderLogs() {
      const p = clear(el.logs);
      const all = (Array.isArray(tv.doc.logs) ? tv.doc.logs : []).map((l, i) => ({ l, i, t: logTime(l) ?? 0 }))
        .sort((a, b) => a.t - b.t || a.i - b.i);
      const levelSel = h('select', { 'aria-label': 'Minimum log level', testid: 'log-level', value: logState.level, onchange: (e) => { logState.level = e.target.value; renderLogs(); } },
        h('option', { value: 'all' }, 'all levels'), ['debug', 'info', 'warn', 'error', 'fatal'].map((v) => h('option', { value: v }, v + (v === 'fatal' ? '' : '+'))));
      const q = h('input', { type: 'search', placeholder: 'Filter messages…', 'aria-label': 'Filter log messages', value: logState.q, testid: 'log-filter',
        oninput: (e) => { logState.q = e.target.value; clearTimeout(tv.logTimer); tv.logTimer = setTimeout(() => { renderLogs(); const f = el.logs.querySelector('input[type=search]'); if (f) { f.focus(); f.setSelectionRange(f.value.length, f.value.length); } }, 200); } });
      const onlySpan = h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: logState.onlySpan, onchange: (e) => { logState.onlySpan = e.target.checked; renderLogs(); } }), ' selected span only');
      const minRank = logState.level === 'all' ? -1 : LEVEL_RANK[logState.level];
      const qq = logState.q.trim().toLowerCase();
      const rows = all.filter(({ l }) => (LEVEL_RANK[levelOf(l)] ?? 1) >= minRank
        && (!qq || String(l.message ?? '').toLowerCase().includes(qq))
        && (!logState.onlySpan || (tv.selected && String(l.span_id) === tv.selected.id)));
      append(p, h('div', { class: 'panel-head' }, h('h2', null, 'Logs ', h('span', { class: 'muted' }, '(' + (rows.length === all.length ? all.length : rows.length + ' of ' + all.length) + ')')),
        h('div', { class: 'panel-tools' }, levelSel, q, onlySpan)));
      if (!all.length) { p.appendChild(h('p', { class: 'muted panel-empty' }, 'No log lines carry this trace id.')); return; }
      if (!rows.length) { p.appendChild(h('p', { class: 'muted panel-empty' }, 'No log lines match.')); return; }
      const list = h('ol', { class: 'log-list', 'aria-label': 'Log lines' });
      for (const { l, t } of rows.slice(0, logState.limit)) {
        const lv = levelOf(l);
        const sid = l.span_id != null ? String(l.span_id) : null;
        const sn = sid ? tv.model.byId.get(sid) : null;
        const meta = [];
        const md = l.metadata && typeof l.metadata === 'object' ? l.metadata : {};
        for (const k of Object.keys(md)) meta.push(k + '=' + (typeof md[k] === 'object' ? JSON.stringify(md[k]) : String(md[k])));
        if (l.duration_ms != null) meta.push('duration_ms=' + l.duration_ms);
        if (l.request_id != null) meta.push('request_id=' + l.request_id);
        list.appendChild(h('li', { class: 'log-line lvl-' + lv, testid: 'log-line', dataset: { level: lv, spanId: sid } },
          h('span', { class: 'log-time mono' }, fmtTime(t, false)),
          h('span', { class: 'lvl' }, lv),
          h('span', { class: 'log-msg' }, String(l.message ?? ''), meta.length ? h('span', { class: 'log-meta mono' }, ' ' + meta.join(' ')) : null),
          sn ? h('button', { type: 'button', class: 'linklike log-span', testid: 'log-span-link', 'aria-label': 'Show span ' + sn.name + ' ' + sid + ' in the waterfall',
            onclick: () => select(sn, { scroll: true, reveal: true, focusWf: true }) }, '→ ' + sn.name)
            : sid ? h('span', { class: 'muted mono log-span', title: 'span not in this trace' }, shortId(sid)) : h('span', { class: 'log-span' })));
      }
      p.appendChild(list);
      if (rows.length > logState.limit) p.appendChild(h('button', { type: 'button', class: 'btn btn-small', onclick: () => { logState.limit += 2000; renderLogs(); } }, 'Show ' + fmtInt(Math.min(2000, rows.length - logState.limit)) + ' more'));
    }

    // ----- LLM panel
    let llmLimit = 300;
    function renderLlm() {
      const p = clear(el.llm);
      const rows = llmRows();
      const tot = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: 0, dur: 0, unpriced: 0, err: 0 };
      const perModel = new Map();
      const data = rows.map((n) => {
        const s = n.s;
        const d = {
          n, model: attrOf(s, LLM_KEYS.model),
          input: numAttr(s, LLM_KEYS.input), output: numAttr(s, LLM_KEYS.output),
          cacheRead: numAttr(s, LLM_KEYS.cacheRead), cacheWrite: numAttr(s, LLM_KEYS.cacheWrite),
          cost: numAttr(s, LLM_KEYS.cost), unpriced: s.attributes && s.attributes['swarm.unpriced'] === true,
          dur: n.open ? null : (s.duration_ms ?? n.end - n.start),
        };
        for (const k of ['input', 'output', 'cacheRead', 'cacheWrite', 'cost', 'dur']) tot[k] += d[k] || 0;
        if (d.unpriced) tot.unpriced++;
        if (n.status === 'error') tot.err++;
        const mk = String(d.model ?? 'unknown');
        const pm = perModel.get(mk) || { calls: 0, cost: 0, tokens: 0 };
        pm.calls++; pm.cost += d.cost || 0; pm.tokens += (d.input || 0) + (d.output || 0) + (d.cacheRead || 0) + (d.cacheWrite || 0);
        perModel.set(mk, pm);
        return d;
      });
      append(p, h('div', { class: 'panel-head' }, h('h2', null, 'LLM calls ', h('span', { class: 'muted' }, '(' + rows.length + ')')),
        h('div', { class: 'llm-total' }, 'Total ', h('b', { testid: 'llm-cost-total' }, fmtCost(tot.cost)))));
      if (!rows.length) { p.appendChild(h('p', { class: 'muted panel-empty' }, 'No llm.generate spans in this trace.')); return; }
      if (perModel.size) {
        p.appendChild(h('ul', { class: 'model-sum' }, [...perModel.entries()].sort((a, b) => b[1].cost - a[1].cost).map(([mk, v]) =>
          h('li', null, h('span', { class: 'mono' }, mk), ' · ' + v.calls + ' call' + (v.calls === 1 ? '' : 's') + ' · ' + fmtInt(v.tokens) + ' tok · ' + fmtCost(v.cost)))));
      }
      const num = (v) => h('td', { class: 'num' }, v == null ? '—' : fmtInt(v));
      const body = h('tbody');
      for (const d of data.slice(0, llmLimit)) {
        const n = d.n;
        body.appendChild(h('tr', { testid: 'llm-row', dataset: { spanId: n.id }, class: tv.selected === n ? 'selected' : null },
          h('td', null, h('button', { type: 'button', class: 'linklike', onclick: () => select(n, { scroll: true, reveal: true, focusWf: true }), 'aria-label': 'Show LLM span ' + n.id }, fmtTime(n.start, false))),
          h('td', { class: 'mono' }, d.model == null ? '—' : String(d.model)),
          num(d.input), num(d.output), num(d.cacheRead), num(d.cacheWrite),
          h('td', { class: 'num', title: d.unpriced ? 'model has no price in the collector’s table' : null }, d.unpriced ? 'unpriced' : fmtCost(d.cost)),
          h('td', { class: 'num' }, n.open ? 'open' : fmtDur(d.dur)),
          h('td', null, h('span', { class: 'badge status-' + n.status }, n.status), n.incomplete ? h('span', { class: 'badge incomplete' }, 'INCOMPLETE') : null)));
      }
      const table = h('table', { class: 'data llm', 'aria-label': 'LLM calls' },
        h('thead', null, h('tr', null, ['Start', 'Model', 'Input', 'Output', 'Cache read', 'Cache write', 'Cost', 'Duration', 'Status'].map((c, i) => h('th', { scope: 'col', class: i >= 2 && i <= 7 ? 'num' : null }, c)))),
        body,
        h('tfoot', null, h('tr', null, h('th', { scope: 'row' }, 'Total'), h('td', null, tot.err ? h('span', { class: 'err-text' }, tot.err + ' failed') : ''),
          num(tot.input), num(tot.output), num(tot.cacheRead), num(tot.cacheWrite),
          h('td', { class: 'num' }, h('b', null, fmtCost(tot.cost)), tot.unpriced ? h('div', { class: 'muted small' }, tot.unpriced + ' unpriced') : null),
          h('td', { class: 'num' }, fmtDur(tot.dur)), h('td'))));
      p.appendChild(h('div', { class: 'table-wrap' }, table));
      if (rows.length > llmLimit) p.appendChild(h('button', { type: 'button', class: 'btn btn-small', onclick: () => { llmLimit = Infinity; renderLlm(); } }, 'Show all ' + fmtInt(rows.length)));
    }
    function renderLlmSelection() {
      if (!el.llm) return;
      for (const tr of el.llm.querySelectorAll('tr[data-span-id]')) tr.classList.toggle('selected', !!tv.selected && tr.dataset.spanId === tv.selected.id);
      if (logState.onlySpan) renderLogs();
    }

    function selectFromRoute(rr) {
      if (!tv.model) return;
      const sid = rr.params.get('span');
      if (sid && tv.model.byId.has(sid)) select(tv.model.byId.get(sid), { scroll: true });
    }
    return {
      name: 'trace',
      sameTrace: (rr) => rr.arg === traceId && (rr.params.get('tenant_id') || '') === tenantId && !!tv.model,
      selectFromRoute,
      searchBox: () => el.find,
      onEscape: () => {
        if (tv.selected && el.detail && !el.detail.hidden) { closeDetail(); return true; }
        return false;
      },
      onTrace: (t) => {
        if (t.trace_id === traceId && (!tenantId || t.tenant_id === tenantId) && tv.model) {
          if ((t.span_count ?? 0) !== (summary().span_count ?? 0) || t.end_time !== summary().end_time) {
            tv.updated = true;
            if (el.updateBanner) el.updateBanner.hidden = false;
          }
        }
      },
      destroy() { ctrl.abort(); if (tv.cleanupRuler) tv.cleanupRuler(); },
    };
  }

  // An attribute value; http(s) URLs (pr_url, repo_url) become links.
  function attrValue(v) {
    if (typeof v === 'string' && /^https?:\/\/\S+$/i.test(v)) {
      try {
        const u = new URL(v);
        if (u.protocol === 'http:' || u.protocol === 'https:') return h('a', { href: u.href, target: '_blank', rel: 'noopener noreferrer' }, v);
      } catch (e) { /* not a URL: plain text */ }
    }
    return fmtValue(v);
  }
  // A dotted attribute key with line-break opportunities after . and _
  function breakable(k) {
    const out = [];
    for (const part of String(k).split(/(?<=[._/])/)) { if (out.length) out.push(h('wbr')); out.push(part); }
    return out;
  }
  function copyButton(text, label) {
    return h('button', { type: 'button', class: 'btn btn-ghost icon-btn copy', 'aria-label': label, title: label, onclick: async (e) => {
      const b = e.currentTarget;
      try { await navigator.clipboard.writeText(text); b.textContent = 'copied'; } catch (err) { b.textContent = 'failed'; }
      setTimeout(() => { b.textContent = 'copy'; }, 1200);
    } }, 'copy');
  }

  // ---------------------------------------------------------------- ticket view
  async function fetchAllPages(path, params, signal, maxPages = 10) {
    const out = [];
    let cursor = null;
    for (let i = 0; i < maxPages; i++) {
      const r = await api(path, { ...params, limit: 200, cursor }, { signal });
      out.push(...(r.traces || []));
      cursor = r.next_cursor;
      if (!cursor) return { traces: out, more: false };
    }
    return { traces: out, more: true };
  }
  // Per-trace details a summary lacks (incomplete spans, cost): read the trace.
  async function traceFacts(t, signal) {
    const doc = await api('/api/traces/' + encodeURIComponent(t.trace_id), { tenant_id: t.tenant_id || '' }, { signal });
    const spans = doc.spans || [];
    let cost = 0, llm = 0, incomplete = 0, open = 0;
    for (const s of spans) {
      if (isLlm(s)) { llm++; cost += numAttr(s, LLM_KEYS.cost) || 0; }
      if (isIncomplete(s)) incomplete++;
      if (s.end_time == null) open++;
    }
    return { doc, cost: llm ? cost : null, incomplete, open };
  }

  function ticketView(ctx, r) {
    const ticketId = r.arg;
    const tenantId = isTenantKey() ? '' : (r.params.get('tenant_id') || '');
    document.title = 'Ticket ' + ticketId + ' · swarmscope';
    const ctrl = new AbortController();
    const picked = [];
    const facts = new Map();
    let traces = [];
    const body = h('div', { class: 'ticket-body' }, h('div', { class: 'loading' }, 'Loading ticket…'));
    append(ctx.main, h('div', { class: 'page-head' },
      h('a', { href: '#/search', class: 'back', 'aria-label': 'Back to search' }, '←'),
      h('h1', null, 'Ticket ', h('span', { class: 'mono' }, ticketId)),
      tenantId ? h('span', { class: 'badge' }, 'tenant ' + tenantId) : null,
      h('a', { class: 'btn btn-small', href: href('search', null, { ticket_id: ticketId, tenant_id: tenantId }) }, 'Search this ticket')), body);

    (async () => {
      try {
        const r2 = await fetchAllPages('/api/tickets/' + encodeURIComponent(ticketId) + '/traces', { tenant_id: tenantId }, ctrl.signal);
        if (!ctx.alive()) return;
        traces = r2.traces.slice().sort((a, b) => (parseTs(a.start_time) ?? 0) - (parseTs(b.start_time) ?? 0));
        render(r2.more);
        // fetch the details of small traces, four at a time
        const queue = traces.filter((t) => (t.span_count ?? 0) <= 3000).slice(0, 40);
        const worker = async () => {
          while (queue.length) {
            const t = queue.shift();
            try { facts.set(t, await traceFacts(t, ctrl.signal)); } catch (e) { if (isAbort(e)) return; facts.set(t, { failed: true }); }
            if (!ctx.alive()) return;
            render(r2.more);
          }
        };
        await Promise.all([worker(), worker(), worker(), worker()]);
      } catch (e) {
        if (isAbort(e) || !ctx.alive()) return;
        clear(body).appendChild(msg('error', 'Could not load ticket ' + ticketId + ': ' + errText(e)));
      }
    })();

    function outcome(t) {
      const f = facts.get(t);
      if (t.incomplete === true || t.incomplete_count > 0 || (f && f.incomplete > 0)) return 'incomplete';
      if (t.error_count > 0) return 'error';
      if (f && f.open > 0) return 'running';
      return 'ok';
    }
    function costOf(t) {
      if (t.cost_usd != null) return Number(t.cost_usd);
      const f = facts.get(t);
      return f && !f.failed ? f.cost : null;
    }
    function render(more) {
      const focusedId = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.pick : null;
      clear(body);
      if (!traces.length) { body.appendChild(msg('empty', 'No traces for ticket ' + ticketId + (tenantId ? ' in tenant ' + tenantId : '') + '.')); return; }
      const costs = traces.map(costOf);
      const known = costs.filter((c) => c != null);
      const totalCost = known.length ? known.reduce((a, b) => a + b, 0) : null;
      const starts = traces.map((t) => parseTs(t.start_time)).filter((x) => x != null);
      const ends = traces.map((t) => parseTs(t.end_time) ?? parseTs(t.start_time)).filter((x) => x != null);
      const first = Math.min(...starts), last = Math.max(...ends);
      const agents = [...new Set(traces.map((t) => t.agent_id).filter((a) => a != null))];
      const counts = { ok: 0, error: 0, incomplete: 0, running: 0 };
      for (const t of traces) counts[outcome(t)]++;
      const meta = (l, v) => h('div', { class: 'meta-item' }, h('dt', null, l), h('dd', null, v));
      body.appendChild(h('section', { class: 'card' }, h('dl', { class: 'meta' },
        meta('Attempts', fmtInt(traces.length) + (more ? '+' : '')),
        meta('Outcomes', [counts.ok + ' ok', counts.error + ' error', counts.incomplete + ' incomplete', counts.running ? counts.running + ' running' : null].filter(Boolean).join(' · ')),
        meta('First start', fmtTime(first)),
        meta('Wall time', fmtDur(last - first)),
        meta('LLM cost', h('span', { testid: 'ticket-cost' }, fmtCost(totalCost) + (known.length < traces.length && known.length ? ' (partial)' : ''))),
        meta('Agents', agents.join(', ') || '—'))));
      // attempt timeline
      body.appendChild(h('section', { class: 'card attempts-card', 'aria-label': 'Attempts on a time line' }, attemptsTimeline(traces, first, last, outcome)));
      const cmpBtn = h('button', { type: 'button', class: 'btn btn-primary', testid: 'compare-submit', disabled: picked.length !== 2, onclick: () => {
        const [a, b] = picked.slice().sort((x, y) => (parseTs(x.start_time) ?? 0) - (parseTs(y.start_time) ?? 0));
        go(href('compare', null, { a: a.trace_id, ta: a.tenant_id || '', b: b.trace_id, tb: b.tenant_id || '' }));
      } }, 'Compare selected (' + picked.length + '/2)');
      const rows = traces.map((t, i) => {
        const o = outcome(t);
        const c = costOf(t);
        const f = facts.get(t);
        const chk = h('input', { type: 'checkbox', 'aria-label': 'Select attempt ' + (i + 1) + ' for comparison', testid: 'compare-select', checked: picked.includes(t), dataset: { pick: t.trace_id, traceId: t.trace_id },
          onchange: (e) => {
            const k = picked.indexOf(t);
            if (e.target.checked && k < 0) { picked.push(t); if (picked.length > 2) picked.shift(); }
            else if (!e.target.checked && k >= 0) picked.splice(k, 1);
            render(more);
          } });
        const open = () => go(traceHref(t.trace_id, t.tenant_id));
        return h('tr', { class: 'clickable', tabindex: '0', testid: 'trace-row', dataset: { traceId: t.trace_id, outcome: o },
          onclick: (e) => { if (!e.target.closest('input,a,button,label')) open(); },
          onkeydown: (e) => { if (e.key === 'Enter' && e.target === e.currentTarget) { e.preventDefault(); open(); } } },
        h('td', null, chk),
        h('td', { class: 'num' }, '#' + (i + 1)),
        h('td', { class: 'nowrap' }, fmtTime(parseTs(t.start_time))),
        h('td', { class: 'num' }, t.duration_ms == null ? 'open' : fmtDur(t.duration_ms)),
        h('td', { class: 'num' }, fmtInt(t.span_count)),
        h('td', { class: 'num' + (t.error_count > 0 ? ' err-text' : '') }, fmtInt(t.error_count)),
        h('td', { class: 'num' }, c == null ? (f || t.cost_usd !== undefined ? '—' : '…') : fmtCost(c)),
        h('td', null, outcomeBadge(o)),
        h('td', null, String(t.agent_id ?? '—')),
        h('td', null, h('a', { href: traceHref(t.trace_id, t.tenant_id), 'aria-label': 'Open trace ' + t.trace_id }, h('span', { class: 'mono' }, shortId(t.trace_id))), ' ',
          h('span', { class: 'muted' }, String(t.root_name ?? ''))));
      });
      body.appendChild(h('section', { class: 'card' },
        h('div', { class: 'panel-head' }, h('h2', null, 'Attempts'), h('div', { class: 'panel-tools' }, h('span', { class: 'muted' }, 'Pick two attempts to compare them.'), cmpBtn)),
        h('div', { class: 'table-wrap' }, h('table', { class: 'data', 'aria-label': 'Traces of ticket ' + ticketId },
          h('thead', null, h('tr', null, ['Compare', 'Attempt', 'Start', 'Duration', 'Spans', 'Errors', 'LLM cost', 'Outcome', 'Agent', 'Trace'].map((c, i) => h('th', { scope: 'col', class: [1, 3, 4, 5, 6].includes(i) ? 'num' : null }, c)))),
          h('tbody', null, rows)))));
      if (more) body.appendChild(h('p', { class: 'muted' }, 'Only the first ' + traces.length + ' traces are shown.'));
      if (focusedId) { const f = body.querySelector('input[data-pick="' + CSS.escape(focusedId) + '"]'); if (f) f.focus(); }
    }
    return {
      name: 'ticket',
      onTrace: (t) => { if (String(t.ticket_id) === ticketId && (!tenantId || t.tenant_id === tenantId) && !traces.some((x) => x.trace_id === t.trace_id)) {
        if (!body.querySelector('.live-banner')) body.prepend(h('div', { class: 'live-banner' }, h('span', null, 'New attempt for this ticket.'), h('button', { type: 'button', class: 'btn btn-small', onclick: () => route() }, 'Reload')));
      } },
      destroy() { ctrl.abort(); },
    };
  }
  function attemptsTimeline(traces, first, last, outcome) {
    const span = Math.max(1, last - first);
    const P = (v) => ((v - first) / span) * 100;
    const rows = traces.map((t, i) => {
      const s = parseTs(t.start_time) ?? first, e = parseTs(t.end_time) ?? last;
      const o = outcome(t);
      const l = P(s), w = Math.max(0.4, P(e) - l);
      return h('div', { class: 'att-row' },
        h('span', { class: 'att-label mono' }, '#' + (i + 1) + ' ' + fmtTime(s, false).slice(0, 8)),
        h('div', { class: 'att-track' },
          h('a', { class: 'att-bar att-' + o, href: traceHref(t.trace_id, t.tenant_id), tabindex: '-1', style: { left: l + '%', width: w + '%' },
            title: '#' + (i + 1) + ' · ' + o + ' · ' + fmtDur(t.duration_ms) + ' · ' + fmtTime(s) })));
    });
    return h('div', { class: 'attempts', 'aria-hidden': 'true' }, rows,
      h('div', { class: 'att-row att-axis' }, h('span'), h('div', { class: 'att-axis-labels' }, h('span', null, fmtTime(first)), h('span', null, '+' + fmtDur(span)))));
  }

  // ---------------------------------------------------------------- compare view
  function compareView(ctx, r) {
    document.title = 'Compare · swarmscope';
    const a = r.params.get('a') || '', b = r.params.get('b') || '';
    const ta = r.params.get('ta') || r.params.get('tenant_id') || '', tb = r.params.get('tb') || r.params.get('tenant_id') || '';
    const ctrl = new AbortController();
    const ia = h('input', { id: 'cmp-a', type: 'text', value: a, placeholder: 'trace id', 'aria-label': 'Trace A id', testid: 'compare-a', autocomplete: 'off' });
    const ib = h('input', { id: 'cmp-b', type: 'text', value: b, placeholder: 'trace id', 'aria-label': 'Trace B id', testid: 'compare-b', autocomplete: 'off' });
    const form = h('form', { class: 'filters compare-form', onsubmit: (e) => {
      e.preventDefault();
      go(href('compare', null, { a: ia.value.trim(), ta, b: ib.value.trim(), tb }));
    } },
    h('div', { class: 'filter-grid' },
      h('div', { class: 'field' }, h('label', { for: 'cmp-a' }, 'Trace A'), ia),
      h('div', { class: 'field' }, h('label', { for: 'cmp-b' }, 'Trace B'), ib)),
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit', class: 'btn btn-primary' }, 'Compare')));
    const body = h('div');
    append(ctx.main, h('div', { class: 'page-head' }, h('h1', null, 'Compare traces')), form, body);
    if (!a || !b) { body.appendChild(msg('info', 'Enter two trace ids, or pick two attempts on a ticket page.')); return { name: 'compare', searchBox: () => ia, destroy() {} }; }
    body.appendChild(h('div', { class: 'loading' }, 'Loading both traces…'));
    let onlyDiff = false;
    (async () => {
      let A, B;
      try {
        [A, B] = await Promise.all([
          api('/api/traces/' + encodeURIComponent(a), { tenant_id: ta }, { signal: ctrl.signal }),
          api('/api/traces/' + encodeURIComponent(b), { tenant_id: tb }, { signal: ctrl.signal })]);
      } catch (e) {
        if (isAbort(e) || !ctx.alive()) return;
        clear(body).appendChild(msg('error', 'Could not load the traces: ' + errText(e)));
        return;
      }
      if (!ctx.alive()) return;
      const ma = buildModel(A), mb = buildModel(B);
      const agg = (m) => {
        const out = new Map();
        for (const n of m.nodes) {
          const x = out.get(n.name) || { count: 0, dur: 0, err: 0, cost: 0 };
          x.count++; x.dur += (n.end ?? m.t1) - n.start; if (n.status === 'error') x.err++;
          if (n.llm) x.cost += numAttr(n.s, LLM_KEYS.cost) || 0;
          out.set(n.name, x);
        }
        return out;
      };
      const ga = agg(ma), gb = agg(mb);
      const names = [...new Set([...ga.keys(), ...gb.keys()])];
      const zero = { count: 0, dur: 0, err: 0, cost: 0 };
      const rowsData = names.map((nm) => {
        const x = ga.get(nm) || zero, y = gb.get(nm) || zero;
        const countDiff = x.count !== y.count;
        const rel = x.dur > 0 ? (y.dur - x.dur) / x.dur : (y.dur > 0 ? Infinity : 0);
        const durDiff = Math.abs(rel) > 0.2;
        return { nm, x, y, rel, diff: countDiff || durDiff, countDiff, durDiff };
      }).sort((p, q) => Math.max(q.x.dur, q.y.dur) - Math.max(p.x.dur, p.y.dur));
      function card(label, doc, m, id, tenant) {
        const t = doc.trace || {};
        const llmCost = m.nodes.filter((n) => n.llm).reduce((s, n) => s + (numAttr(n.s, LLM_KEYS.cost) || 0), 0);
        const o = m.nodes.some((n) => n.incomplete) ? 'incomplete' : (t.error_count > 0 ? 'error' : m.nodes.some((n) => n.open) ? 'running' : 'ok');
        return h('section', { class: 'card cmp-card', 'aria-label': 'Trace ' + label },
          h('h2', null, label + ' ', h('a', { href: traceHref(id, t.tenant_id || tenant), class: 'mono' }, shortId(id)), ' ', outcomeBadge(o)),
          h('dl', { class: 'meta' },
            h('div', { class: 'meta-item' }, h('dt', null, 'Ticket'), h('dd', null, t.ticket_id != null ? h('a', { href: ticketHref(t.ticket_id, t.tenant_id) }, String(t.ticket_id)) : '—')),
            h('div', { class: 'meta-item' }, h('dt', null, 'Start'), h('dd', null, fmtTime(parseTs(t.start_time)))),
            h('div', { class: 'meta-item' }, h('dt', null, 'Duration'), h('dd', null, fmtDur(t.duration_ms ?? m.t1 - m.t0))),
            h('div', { class: 'meta-item' }, h('dt', null, 'Spans'), h('dd', null, fmtInt(t.span_count ?? m.nodes.length))),
            h('div', { class: 'meta-item' }, h('dt', null, 'Errors'), h('dd', null, fmtInt(t.error_count))),
            h('div', { class: 'meta-item' }, h('dt', null, 'LLM cost'), h('dd', null, fmtCost(t.cost_usd != null ? t.cost_usd : llmCost)))));
      }
      function renderTable() {
        const tbody = h('tbody', null, rowsData.filter((d) => !onlyDiff || d.diff).map((d) => h('tr', { class: d.diff ? 'diff' : null, testid: 'compare-row', dataset: { spanName: d.nm, diff: d.diff ? 'true' : 'false' } },
          h('th', { scope: 'row', class: 'mono' }, d.nm, d.diff ? h('span', { class: 'visually-hidden' }, ' (differs)') : null),
          h('td', { class: 'num' + (d.countDiff ? ' hl' : '') }, fmtInt(d.x.count)),
          h('td', { class: 'num' + (d.countDiff ? ' hl' : '') }, fmtInt(d.y.count)),
          h('td', { class: 'num' }, d.x.count ? fmtDur(d.x.dur) : '—'),
          h('td', { class: 'num' }, d.y.count ? fmtDur(d.y.dur) : '—'),
          h('td', { class: 'num' + (d.durDiff ? ' hl' : '') }, d.rel === Infinity ? 'new' : (d.x.count && !d.y.count ? 'gone' : (d.rel >= 0 ? '+' : '') + Math.round(d.rel * 100) + '%')),
          h('td', { class: 'num' + (d.x.err ? ' err-text' : '') }, fmtInt(d.x.err)),
          h('td', { class: 'num' + (d.y.err ? ' err-text' : '') }, fmtInt(d.y.err)))));
        return h('table', { class: 'data compare', 'aria-label': 'Span names compared' },
          h('thead', null, h('tr', null, ['Span name', 'Count A', 'Count B', 'Total A', 'Total B', 'Δ duration', 'Errors A', 'Errors B'].map((c, i) => h('th', { scope: 'col', class: i ? 'num' : null }, c)))), tbody);
      }
      const wrap = h('div', { class: 'table-wrap' });
      const redraw = () => { clear(wrap).appendChild(renderTable()); };
      const nDiff = rowsData.filter((d) => d.diff).length;
      clear(body);
      append(body, h('div', { class: 'cmp-cards' }, card('A', A, ma, a, ta), card('B', B, mb, b, tb)),
        h('section', { class: 'card panel' },
          h('div', { class: 'panel-head' }, h('h2', null, 'Spans by name ', h('span', { class: 'muted' }, '(' + nDiff + ' of ' + rowsData.length + ' differ)')),
            h('div', { class: 'panel-tools' },
              h('span', { class: 'legend' }, h('span', { class: 'swatch diff' }), ' count differs or total duration differs from A by more than 20%'),
              h('label', { class: 'check' }, h('input', { type: 'checkbox', onchange: (e) => { onlyDiff = e.target.checked; redraw(); } }), ' differences only'),
              h('button', { type: 'button', class: 'btn btn-small', onclick: () => go(href('compare', null, { a: b, ta: tb, b: a, tb: ta })) }, 'Swap A/B'))),
          wrap));
      redraw();
    })();
    return { name: 'compare', searchBox: () => ia, destroy() { ctrl.abort(); } };
  }

  // Pure helpers, exposed for tests and the console (no state behind them).
  window.swarmscope = Object.freeze({ fmtDur, fmtCost, fmtTime, parseTs, buildModel, criticalPath, parseDurInput, apiTime });

  // ---------------------------------------------------------------- boot
  window.addEventListener('hashchange', () => route());
  async function boot() {
    const key = loadKey();
    if (key == null) { renderSignIn(); return; }
    app.key = key;
    clear($('#app')).appendChild(h('p', { class: 'boot' }, 'Connecting…'));
    try {
      app.who = await fetchWho();
      await startApp();
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { signOut('Your API key was rejected (401). Sign in again.'); return; }
      if (app.key == null) return; // already signed out
      // keep the key; show the shell with the error
      app.who = app.who || { role: null, tenant_id: null, read: true };
      renderShell();
      $('#view').appendChild(msg('error', 'Could not reach the collector: ' + errText(e), h('p', null, h('button', { type: 'button', class: 'btn', onclick: () => location.reload() }, 'Retry'))));
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot); else boot();
})();
