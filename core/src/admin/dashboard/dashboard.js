// The Tether dashboard: plain browser JavaScript, no build step, no library. It polls the admin
// API's own routes (GET /status, /backends, /table, /stats, /metrics) every POLL_MS while the page
// is visible, one round at a time, and changes things only through the admin API's routes, as
// JSON, from this origin: the admin guard (Host, Origin, token, Content-Type) checks the page's
// requests as it checks curl's. The token, when one is set, is sent by the browser itself (Basic
// credentials from its login prompt); this code never sees it. Values from the balancer are put
// on the page as text (textContent), never as HTML.
'use strict';

const POLL_MS = 2000;
/** Samples kept for the sparklines: 150 × 2 s = the last 5 minutes. */
const HISTORY = 150;
/** Entries read per poll to find the keys with most reconnects (one page of GET /table). */
const TOP_SCAN = 500;
const TOP_SHOWN = 10;
/** Reconnects in a minute from which a key is flagged: two clients with one id kick each other out. */
const KICK_LOOP_PER_MIN = 6;
const STATES = ['ready', 'drain', 'maint'];

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'for') node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
};
const SVG = 'http://www.w3.org/2000/svg';

// ---- talking to the admin API ----

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' };
  if (method !== 'GET') {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  const res = await fetch(path, init);
  const type = res.headers.get('content-type') ?? '';
  const payload = type.startsWith('application/json') ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof payload === 'object' && payload?.error ? payload.error : `${res.status} ${res.statusText}`);
  return payload;
}

/** After a 404 (metrics.enabled: false), /metrics is asked again only this much later (a reload may turn them on). */
const METRICS_OFF_RETRY_MS = 60_000;
let metricsOffUntil = 0;

/** GET /metrics as { name → [{ labels, value }] }; undefined when metrics are turned off (404). */
async function metrics() {
  if (performance.now() < metricsOffUntil) return undefined;
  try {
    return parseExposition(await api('GET', '/metrics'));
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    metricsOffUntil = performance.now() + METRICS_OFF_RETRY_MS;
    return undefined;
  }
}

/** The Prometheus text format, as much of it as the page needs: samples with labels; comments skipped. */
function parseExposition(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of a metric's samples whose labels include `match`. */
function sum(samples, name, match = {}) {
  let total = 0;
  for (const s of samples?.get(name) ?? []) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) total += s.value;
  }
  return total;
}

// ---- rates and history ----

/** Per-second rates of counters between two polls; a counter that went down (a worker restarted) counts from 0. */
class Rates {
  #last = new Map();
  rate(key, value, now) {
    const prev = this.#last.get(key);
    this.#last.set(key, { value, at: now });
    if (!prev || now <= prev.at) return undefined;
    const delta = value >= prev.value ? value - prev.value : value;
    return delta / ((now - prev.at) / 1000);
  }
}

/** The last HISTORY values of a series. */
class Series {
  #values = [];
  push(v) {
    this.#values.push(v);
    if (this.#values.length > HISTORY) this.#values.shift();
  }
  get values() {
    return this.#values;
  }
}

const rates = new Rates();
const activeHistory = new Map();
/** When each backend went to drain or maint, and with how many live connections: drain progress. */
const drainStart = new Map();
/** Per backend, the health check counters of the previous poll and the last result seen. */
const lastChecks = new Map();
/** Per key, the reconnect counts seen over the last minute: [{ at, hits }]. */
const keyHits = new Map();

// ---- formatting ----

const fmtRate = (v) => (v === undefined ? '…' : v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en'));
function fmtBytes(v) {
  if (v === undefined) return '…';
  const units = ['B', 'kB', 'MB', 'GB'];
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 && i > 0 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
const fmtTime = (iso) => new Date(iso).toLocaleString();
const pct = (n, d) => (d > 0 ? `${((100 * n) / d).toFixed(1)} %` : '–');

// ---- rendering helpers ----

/** Keeps one row per key in `tbody`, in the order of `items`; rows are made once and updated in place (focus stays). */
function syncRows(tbody, items, keyOf, make, update) {
  const existing = new Map([...tbody.rows].map((r) => [r.dataset.key, r]));
  const wanted = new Set();
  let before = tbody.firstElementChild;
  for (const item of items) {
    const key = keyOf(item);
    wanted.add(key);
    let row = existing.get(key);
    if (!row) {
      row = make(item);
      row.dataset.key = key;
    }
    update(row, item);
    if (row !== before) tbody.insertBefore(row, before);
    else before = before.nextElementSibling;
  }
  for (const [key, row] of existing) if (!wanted.has(key)) row.remove();
}

/** A cell with a label for the narrow (card) layout, which hides the table header. */
const cell = (label, ...children) => el('td', { 'data-label': label }, ...children);

function sparkline(values, label) {
  const w = 120;
  const h = 28;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('width', String(w));
  svg.setAttribute('height', String(h));
  svg.setAttribute('role', 'img');
  const max = Math.max(1, ...values);
  const min = values.length ? Math.min(...values) : 0;
  svg.setAttribute('aria-label', `${label}: ${values.length ? `now ${values.at(-1)}, lowest ${min}, highest ${Math.max(...values)}` : 'no samples yet'}`);
  const title = document.createElementNS(SVG, 'title');
  title.textContent = svg.getAttribute('aria-label');
  svg.append(title);
  if (values.length > 1) {
    const step = w / (HISTORY - 1);
    const offset = w - step * (values.length - 1);
    const points = values.map((v, i) => `${(offset + i * step).toFixed(1)},${(h - 2 - ((h - 4) * v) / max).toFixed(1)}`).join(' ');
    const line = document.createElementNS(SVG, 'polyline');
    line.setAttribute('points', points);
    line.setAttribute('class', 'spark');
    svg.append(line);
  }
  return svg;
}

function say(message, ok = true) {
  const out = $('action-result');
  out.textContent = message;
  out.className = `action-result ${ok ? 'ok' : 'failed'}`;
}

async function act(what, method, path, body) {
  try {
    await api(method, path, body);
    say(`${what}: done`);
  } catch (err) {
    say(`${what}: refused: ${err.message}`, false);
  }
  poll.now();
}

// ---- backends ----

function makeBackendRow(b) {
  const id = b.id;
  // The label wraps its field: no id to derive from a backend name (which may hold any character).
  const weightInput = el('input', { id: `weight-${id}`, type: 'number', min: 1, max: 256, step: 1, required: true, class: 'weight' });
  const weightForm = el('form', { class: 'weight-form' },
    el('label', {}, el('span', { class: 'visually-hidden', text: `Weight of ${id}` }), weightInput),
    el('button', { type: 'submit', text: 'Set', 'aria-label': `Set the weight of ${id}` }));
  weightForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const weight = Number(weightInput.value);
    delete weightInput.dataset.dirty;
    void act(`weight of ${id} → ${weight}`, 'POST', `/backends/${encodeURIComponent(id)}/weight`, { weight });
  });
  weightInput.addEventListener('input', () => (weightInput.dataset.dirty = '1'));
  const buttons = el('div', { class: 'state-buttons', role: 'group', 'aria-label': `Set the state of ${id}` });
  for (const state of STATES) {
    const button = el('button', { type: 'button', text: state[0].toUpperCase() + state.slice(1), 'data-state': state, 'aria-label': `${state} ${id}` });
    button.addEventListener('click', () => act(`${id} → ${state}`, 'POST', `/backends/${encodeURIComponent(id)}/state`, { state }));
    buttons.append(button);
  }
  return el('tr', {},
    el('th', { scope: 'row', 'data-label': 'Backend' }, el('span', { class: 'name' }), el('span', { class: 'address' }), el('span', { class: 'source' })),
    cell('State', el('span', { class: 'badge state' }), el('span', { class: 'drain' })),
    cell('Health', el('span', { class: 'health' })),
    cell('Weight', el('span', { class: 'weight-now' }), weightForm),
    cell('Active', el('span', { class: 'active' })),
    cell('Conn/s', el('span', { class: 'cps' })),
    cell('Bytes/s in · out', el('span', { class: 'bps' })),
    cell('Stickiness misses', el('span', { class: 'misses' })),
    cell('Active, last minutes', el('span', { class: 'trend' })),
    cell('Set state', buttons));
}

function updateBackendRow(row, b, m, now) {
  const q = (cls) => row.querySelector(`.${cls}`);
  q('name').textContent = b.id;
  q('address').textContent = `${b.host}:${b.port}`;
  q('source').textContent = b.source ? `source: ${typeof b.source === 'string' ? b.source : JSON.stringify(b.source)}` : 'source: static';
  const state = q('state');
  state.textContent = b.state + (b.adminState && b.adminState !== b.state ? ` (admin ${b.adminState})` : '') + (b.removed ? ' · removed' : '');
  state.dataset.state = b.state;
  if (b.workerStates) state.textContent += ` · per worker: ${Object.entries(b.workerStates).map(([w, s]) => `${w}=${s}`).join(', ')}`;
  for (const button of row.querySelectorAll('.state-buttons button')) button.setAttribute('aria-pressed', String(button.dataset.state === b.adminState));

  // Up or down is the pool's verdict (rise and fall applied); the last check's own result is read
  // from which of the pass and fail counters moved since the previous poll.
  const health = q('health');
  const verdict = b.healthy === false ? 'DOWN' : 'up';
  if (m) {
    const pass = sum(m, 'tether_health_checks_total', { backend: b.id, result: 'pass' });
    const fail = sum(m, 'tether_health_checks_total', { backend: b.id, result: 'fail' });
    const before = lastChecks.get(b.id);
    let last = before?.last;
    if (before && fail > before.fail) last = 'failed';
    else if (before && pass > before.pass) last = 'passed';
    lastChecks.set(b.id, { pass, fail, last });
    health.textContent = pass + fail === 0
      ? `${verdict} (no check result yet, or checks off)`
      : `${verdict}${last ? `: last check ${last}` : ''} (${pass} passed, ${fail} failed)`;
  } else {
    health.textContent = verdict;
  }
  health.dataset.healthy = String(b.healthy !== false);

  q('weight-now').textContent = b.weight === b.configWeight || b.configWeight === undefined ? String(b.weight) : `${b.weight} (config ${b.configWeight})`;
  if (b.workerWeights) q('weight-now').textContent += ` · per worker: ${Object.entries(b.workerWeights).map(([w, v]) => `${w}=${v}`).join(', ')}`;
  const input = row.querySelector('input.weight');
  if (document.activeElement !== input && !input.dataset.dirty) input.value = String(b.weight);

  q('active').textContent = String(b.activeConnections ?? 0);
  let history = activeHistory.get(b.id);
  if (!history) activeHistory.set(b.id, (history = new Series()));
  history.push(b.activeConnections ?? 0);
  q('trend').replaceChildren(sparkline(history.values, `active connections on ${b.id}, last ${Math.round((HISTORY * POLL_MS) / 60000)} minutes`));

  // Drain progress: how many of the connections live when the drain began are still there.
  const drain = q('drain');
  if (b.adminState === 'drain' || b.adminState === 'maint') {
    if (!drainStart.has(b.id)) drainStart.set(b.id, { from: b.activeConnections ?? 0, at: now });
    const { from } = drainStart.get(b.id);
    const left = b.activeConnections ?? 0;
    drain.textContent = left === 0 ? ' · drained: no live connection' : ` · ${left} live connection${left === 1 ? '' : 's'} left${from > 0 ? ` of ${from} (${pct(from - Math.min(left, from), from)} gone)` : ''}`;
  } else {
    drainStart.delete(b.id);
    drain.textContent = '';
  }

  if (m) {
    q('cps').textContent = fmtRate(rates.rate(`conn:${b.id}`, sum(m, 'tether_backend_connections_total', { backend: b.id }), now));
    const bin = rates.rate(`in:${b.id}`, sum(m, 'tether_backend_bytes_in_total', { backend: b.id }), now);
    const bout = rates.rate(`out:${b.id}`, sum(m, 'tether_backend_bytes_out_total', { backend: b.id }), now);
    q('bps').textContent = `${fmtBytes(bin)}/s · ${fmtBytes(bout)}/s`;
    const misses = sum(m, 'tether_stickiness_misses_total', { backend: b.id });
    const checks = sum(m, 'tether_stickiness_checks_total', { backend: b.id });
    q('misses').textContent = `${misses} of ${checks} checked${checks ? ` (${pct(misses, checks)})` : ''}`;
  } else {
    for (const cls of ['cps', 'bps', 'misses']) q(cls).textContent = 'n/a';
  }
}

function renderBackends(backends, m, now) {
  syncRows($('backends').tBodies[0], backends, (b) => b.id, makeBackendRow, (row, b) => updateBackendRow(row, b, m, now));
  $('metrics-note').hidden = m !== undefined;
}

// ---- the stick table ----

function deleteButton(key) {
  const button = el('button', { type: 'button', text: 'Delete', 'aria-label': `Delete the stick entry of ${key}` });
  button.addEventListener('click', () => act(`delete ${key}`, 'DELETE', `/table/entries/${encodeURIComponent(key)}`));
  return button;
}

const STORE_FAILURES = ['stick_table_store_errors', 'stick_table_store_timeouts', 'stick_table_store_unavailable', 'stick_table_store_overloaded'];
/** Store failures counted, with when: healthy means none in the last minute. */
const storeFailures = [];

function storeHealth(store, stats, now) {
  const total = STORE_FAILURES.reduce((n, name) => n + (stats[name] ?? 0), 0);
  storeFailures.push({ at: now, total });
  while (storeFailures.length > 1 && now - storeFailures[0].at > 60_000) storeFailures.shift();
  const recent = total - storeFailures[0].total;
  const parts = STORE_FAILURES.map((name) => `${stats[name] ?? 0} ${name.slice('stick_table_store_'.length)}`).join(', ');
  // The table's own description says whether the store answers now: "(connected)" or why not.
  if (!/\(connected\)$/.test(store)) return { ok: false, text: `DOWN: ${/\(([^)]*)/.exec(store)?.[1] ?? 'not connected'} (since start: ${parts})` };
  return recent > 0
    ? { ok: false, text: `FAILING: ${recent} failed requests in the last minute (since start: ${parts})` }
    : { ok: true, text: `healthy: no failed request in the last minute (since start: ${parts})` };
}

function renderTables(tables, stats, now) {
  const box = $('tables');
  if (tables === undefined) return;
  if (tables.length === 0) {
    box.replaceChildren(el('p', { class: 'note', text: 'No strategy of the chain keeps a table.' }));
    $('search').hidden = true;
    return;
  }
  $('search').hidden = false;
  const hits = stats.stick_table_hits ?? 0;
  const misses = stats.stick_table_misses ?? 0;
  box.replaceChildren(...tables.map((t) => {
    const dl = el('dl', { class: 'facts' });
    const fact = (k, v) => dl.append(el('dt', { text: k }), el('dd', { text: v }));
    fact('Table', t.name);
    const shared = t.store !== undefined && t.store !== 'memory';
    // A shared store lists its own entries (one page); `used` and `size` are this instance's cache.
    fact('Entries', shared
      ? `${t.entries.length.toLocaleString('en')}${t.cursor ? ' or more' : ''} in the shared store; ${t.used.toLocaleString('en')} cached on this instance (cache size ${t.size.toLocaleString('en')})`
      : `${t.used.toLocaleString('en')} of ${t.size.toLocaleString('en')} (${pct(t.used, t.size)})`);
    // With a shared store, a key missing from this instance's cache may be found in the store (a store hit).
    const storeHits = shared ? stats.stick_table_store_hits ?? 0 : 0;
    fact('Hit rate', `${pct(hits + storeHits, hits + misses)} (${hits} hits${shared ? `, ${storeHits} of the ${misses} cache misses found in the store` : `, ${misses} misses`})`);
    fact('Store', t.store ?? 'memory');
    if (shared) {
      const state = storeHealth(t.store, stats, now);
      const health = el('dd', { class: 'badge', text: state.text });
      health.dataset.state = state.ok ? 'ready' : 'down';
      dl.append(el('dt', { text: 'Store health' }), health);
    }
    return dl;
  }));
}

function renderTopKeys(tables, now) {
  // The stick table, not an admission table (connect-guard lists keys in a kick loop, with no backend).
  const table = tables?.find((t) => t.name === 'stick-table') ?? tables?.find((t) => t.name !== 'connect-guard');
  const entries = table?.entries ?? [];
  // Keys connect-guard found in a kick loop (and is refusing): flagged as such, not as suspects.
  const looping = new Set((tables ?? []).flatMap((t) => t.entries.filter((e) => e.flags?.includes('kick-loop')).map((e) => e.key)));
  for (const e of entries) {
    let seen = keyHits.get(e.key);
    if (!seen) keyHits.set(e.key, (seen = []));
    seen.push({ at: now, hits: e.hits });
    while (seen.length > 1 && now - seen[0].at > 60_000) seen.shift();
  }
  // Reconnects counted, not extrapolated: the growth of the entry's count over the last minute the page has seen.
  const lastMinute = (e) => {
    const seen = keyHits.get(e.key) ?? [];
    return seen.length < 2 ? 0 : Math.max(0, seen.at(-1).hits - seen[0].hits);
  };
  const top = [...entries].sort((a, b) => lastMinute(b) - lastMinute(a) || b.hits - a.hits || a.key.localeCompare(b.key)).slice(0, TOP_SHOWN);
  const rule = `Sorted by reconnects in the last minute, then by connections. A key with ${KICK_LOOP_PER_MIN} or more reconnects in a minute is flagged: two clients with one client id kick each other out.`;
  $('top-note').textContent = !table ? '' : table.cursor ? `Among the first ${entries.length} entries (the table is read one page at a time). ${rule}` : rule;
  syncRows($('top-keys').tBodies[0], top, (e) => e.key, (e) => el('tr', {},
    el('th', { scope: 'row', 'data-label': 'Key' }, el('span', { class: 'key' }), el('span', { class: 'flag' })),
    cell('Backend', el('span', { class: 'backend' })),
    cell('Connections', el('span', { class: 'hits' })),
    cell('Reconnects, last minute', el('span', { class: 'rpm' })),
    cell('Live', el('span', { class: 'use' })),
    cell('Action', deleteButton(e.key))), (row, e) => {
    row.querySelector('.key').textContent = e.key;
    row.querySelector('.backend').textContent = e.backend;
    row.querySelector('.hits').textContent = String(e.hits);
    const recent = lastMinute(e);
    row.querySelector('.rpm').textContent = String(recent);
    const flag = row.querySelector('.flag');
    flag.textContent = looping.has(e.key) ? 'kick loop (connect-guard)' : recent >= KICK_LOOP_PER_MIN ? 'kick-loop suspect' : '';
    flag.className = flag.textContent ? 'flag badge' : 'flag';
    if (flag.textContent) flag.dataset.state = 'down';
    row.querySelector('.use').textContent = String(e.use);
  });
  const listed = new Set(entries.map((e) => e.key));
  for (const key of keyHits.keys()) if (!listed.has(key)) keyHits.delete(key);
}

async function search(key) {
  const out = $('search-result');
  try {
    const { tables } = await api('GET', `/table?key=${encodeURIComponent(key)}`);
    const found = tables.flatMap((t) => t.entries.map((e) => ({ ...e, table: t.name })));
    if (found.length === 0) {
      out.replaceChildren(el('p', { text: `No entry for “${key}”.` }));
      return;
    }
    out.replaceChildren(...found.map((e) => el('p', { class: 'found' },
      el('span', { text: `${e.key} → ${e.backend} (table ${e.table}; ${e.hits} connections, ${e.use} live, expires ${Math.round(e.expiresInMs / 1000)} s after its last use) ` }),
      deleteButton(e.key))));
  } catch (err) {
    out.replaceChildren(el('p', { class: 'failed', text: `Search refused: ${err.message}` }));
  }
}

// ---- listeners ----

function renderListeners(m, now) {
  const names = [...new Set((m?.get('tether_connections_accepted_total') ?? []).map((s) => s.labels.listener))];
  syncRows($('listeners').tBodies[0], names, (n) => n, () => el('tr', {},
    el('th', { scope: 'row', 'data-label': 'Listener', class: 'name' }),
    cell('Accepted', el('span', { class: 'accepted' })),
    cell('Accepted/s', el('span', { class: 'aps' })),
    cell('Rejected, by reason', el('span', { class: 'rejected' }))), (row, name) => {
    const accepted = sum(m, 'tether_connections_accepted_total', { listener: name });
    row.querySelector('.name').textContent = name;
    row.querySelector('.accepted').textContent = accepted.toLocaleString('en');
    row.querySelector('.aps').textContent = fmtRate(rates.rate(`acc:${name}`, accepted, now));
    const reasons = new Map();
    for (const s of m.get('tether_connections_rejected_total') ?? []) {
      if (s.labels.listener === name && s.value > 0) reasons.set(s.labels.reason, (reasons.get(s.labels.reason) ?? 0) + s.value);
    }
    row.querySelector('.rejected').textContent = reasons.size ? [...reasons].map(([r, n]) => `${r}: ${n}`).join(', ') : 'none';
  });
}

// ---- configuration, reloads, workers ----

function renderStatus(status) {
  const workers = status.workers ?? [];
  $('instance').textContent = `${location.host} · pid ${status.pid}${workers.length ? ` · ${workers.length} workers` : ''} · up ${Math.round(status.uptimeSeconds)} s · node ${status.node}`;
  const dl = $('config');
  const facts = [
    ['Generation', `${status.generation}, loaded ${fmtTime(status.loadedAt)} (${status.trigger})`],
    ['Configuration file', status.file ?? 'none (flags and environment)'],
    ['Last reload', status.lastFailure ? `FAILED at ${fmtTime(status.lastFailure.at)}: ${status.lastFailure.errors.join(' ')}` : 'succeeded (or none yet)'],
  ];
  dl.replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));
  $('workers').hidden = workers.length === 0;
  syncRows($('workers').tBodies[0], workers, (w) => String(w.worker), () => el('tr', {},
    el('th', { scope: 'row', 'data-label': 'Worker' }), cell('PID'), cell('Generation'), cell('Loaded')), (row, w) => {
    const [id, pid, gen, at] = row.cells;
    id.textContent = `worker ${w.worker}`;
    pid.textContent = String(w.pid);
    gen.textContent = String(w.generation) + (w.generation !== status.generation ? ' (differs from the primary)' : '');
    at.textContent = fmtTime(w.loadedAt);
  });
}

// ---- the poll loop ----

const poll = {
  paused: false,
  timer: undefined,
  running: false,
  /** Polls now (after an action), unless a round is running: the next one comes POLL_MS after it. */
  now() {
    clearTimeout(this.timer);
    if (!this.running) void this.round();
  },
  schedule() {
    clearTimeout(this.timer);
    if (!this.paused && !document.hidden) this.timer = setTimeout(() => this.round(), POLL_MS);
  },
  async round() {
    this.running = true;
    try {
      await refresh();
    } finally {
      this.running = false;
      this.schedule();
    }
  },
};

async function refresh() {
  try {
    const [status, backends, m, tables, stats] = await Promise.all([
      api('GET', '/status'),
      api('GET', '/backends').then((r) => r.backends),
      metrics(),
      api('GET', `/table?limit=${TOP_SCAN}`).then((r) => r.tables, (err) => ({ error: err })),
      api('GET', '/stats').then((r) => r.counters),
    ]);
    const now = performance.now();
    renderStatus(status);
    renderBackends(backends, m, now);
    renderListeners(m, now);
    if (tables.error) {
      $('tables').replaceChildren(el('p', { class: 'failed', text: `The table could not be read: ${tables.error.message}` }));
    } else {
      renderTables(tables, stats, now);
      renderTopKeys(tables, now);
    }
    $('problem').hidden = true;
    $('freshness').textContent = `live: updated ${new Date().toLocaleTimeString()} (every ${POLL_MS / 1000} s)`;
    document.body.dataset.loaded = 'true';
  } catch (err) {
    const problem = $('problem');
    problem.hidden = false;
    problem.textContent = err instanceof ApiError && err.status === 401
      ? 'The admin API refused the token: reload the page and give the admin token as the password.'
      : `Could not read the admin API: ${err.message}`;
    $('freshness').textContent = 'not updating';
  }
}

function start() {
  $('pause').addEventListener('click', () => {
    poll.paused = !poll.paused;
    $('pause').setAttribute('aria-pressed', String(poll.paused));
    $('pause').textContent = poll.paused ? 'Resume updates' : 'Pause updates';
    $('freshness').textContent = poll.paused ? 'paused' : $('freshness').textContent;
    if (poll.paused) clearTimeout(poll.timer);
    else poll.now();
  });
  // A hidden tab asks nothing: the balancer does no work for a page nobody looks at.
  document.addEventListener('visibilitychange', () => (document.hidden ? clearTimeout(poll.timer) : poll.paused || poll.now()));
  $('search').addEventListener('submit', (e) => {
    e.preventDefault();
    void search($('search-key').value);
  });
  poll.now();
}

start();
