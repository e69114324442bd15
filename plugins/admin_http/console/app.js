// The Sluice web console: a read-only page over the admin API (docs/ADMIN.md).
//
// Every 2 s it reads /v1/cluster/health, /v1/brokers, /v1/topics, /v1/groups, the detail
// of every expanded topic and group, and /metrics: its counters give the throughput (rate =
// counter delta / time between polls) and sluice_kafka_group_lag each group's lag. Without
// that gauge the lag column comes from the groups' details (the first MAX_GROUP_DETAILS).
// URLs are relative (the page is served by the admin API itself, with the browser's
// credentials); nothing is fetched from anywhere else. Strings from the API are user data
// (topic and group names): they only ever reach the page as text nodes or attribute
// values, never as markup.
'use strict';

(function () {
  const POLL_MS = 2000;
  const CHART_POINTS = 150;        // 5 minutes at one point per poll
  const MAX_GROUP_DETAILS = 50;    // details fetched per poll for the lag column without the gauge

  // ---------------------------------------------------------------- DOM helpers

  // el('td', {class: 'num'}, 'text', child, ...): strings become text nodes.
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      e.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  const $ = sel => document.querySelector(sel);

  function setError(section, msg) {
    const box = $(`#${section} > .error`);
    if (!box) return;
    box.hidden = !msg;
    box.textContent = msg || '';
  }

  // ---------------------------------------------------------------- formatting

  function fmtBytes(n) {
    if (n === null || n === undefined || !isFinite(n)) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let i = 0;
    let v = Math.abs(n);
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
    const s = i === 0 ? String(Math.round(v)) : v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0);
    return (n < 0 ? '-' : '') + s + ' ' + units[i];
  }
  function fmtCount(n) {
    if (n === null || n === undefined || !isFinite(n)) return '—';
    if (Math.abs(n) < 1000) return String(Number(n.toFixed(Math.abs(n) < 10 ? 2 : 1)));
    const units = ['', 'k', 'M', 'G', 'T', 'P'];
    let i = 0;
    let v = Math.abs(n);
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (n < 0 ? '-' : '') + v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0) + units[i];
  }
  function fmtInt(n) {
    return typeof n === 'number' && isFinite(n) ? n.toLocaleString('en-US') : '—';
  }
  function fmtRate(n, bytes) {
    if (n === null || n === undefined) return '—';
    return bytes ? fmtBytes(n) + '/s' : fmtCount(n) + '/s';
  }
  function fmtDuration(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms < 0) return '—';
    let s = Math.floor(ms / 1000);
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60); s -= m * 60;
    if (d) return `${d}d ${h}h ${m}m`;
    if (h) return `${h}h ${m}m ${s}s`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  }
  const orDash = v => (v === null || v === undefined || v === '' ? '—' : String(v));

  // ---------------------------------------------------------------- fetching

  class ApiError extends Error {
    constructor(message, status, unreachable) {
      super(message);
      this.status = status;
      this.unreachable = unreachable;
    }
  }

  // GET a relative URL; JSON unless text is asked for. Throws ApiError.
  async function get(url, text) {
    let res;
    try {
      res = await fetch(url, { headers: { Accept: text ? 'text/plain' : 'application/json' },
                               cache: 'no-store', credentials: 'same-origin' });
    } catch (e) {
      throw new ApiError('admin API unreachable', 0, true);
    }
    const body = await res.text().catch(() => '');
    if (!res.ok) {
      let msg = '';
      try { msg = JSON.parse(body).message || ''; } catch (e) { /* not JSON */ }
      if (res.status === 401) msg = 'the admin API needs credentials (401 Unauthorized)';
      throw new ApiError(`${url}: HTTP ${res.status}${msg ? ': ' + msg : ''}`, res.status, false);
    }
    if (text) return body;
    try {
      return JSON.parse(body);
    } catch (e) {
      throw new ApiError(`${url}: the answer is not JSON`, res.status, false);
    }
  }

  // Settles every promise; returns {ok, value | error} per key.
  async function settleAll(obj) {
    const keys = Object.keys(obj);
    const results = await Promise.allSettled(keys.map(k => obj[k]));
    const out = {};
    keys.forEach((k, i) => {
      const r = results[i];
      out[k] = r.status === 'fulfilled' ? { ok: true, value: r.value } : { ok: false, error: r.reason };
    });
    return out;
  }

  // ---------------------------------------------------------------- Prometheus text format

  // Parses the text exposition format 0.0.4 into [{name, labels, value}]; comments and
  // malformed lines are skipped. Label values may contain \\, \" and \n escapes.
  function parsePrometheus(text) {
    const out = [];
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
      if (!m) continue;
      const name = m[1];
      let i = name.length;
      const labels = {};
      if (line[i] === '{') {
        i++;
        let ok = false;
        for (;;) {
          while (line[i] === ' ' || line[i] === ',') i++;
          if (line[i] === '}') { i++; ok = true; break; }
          const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"/.exec(line.slice(i));
          if (!lm) break;
          i += lm[0].length;
          let v = '';
          while (i < line.length && line[i] !== '"') {
            if (line[i] === '\\' && i + 1 < line.length) {
              const c = line[i + 1];
              v += c === 'n' ? '\n' : c;
              i += 2;
            } else {
              v += line[i++];
            }
          }
          if (line[i] !== '"') break;
          i++;
          labels[lm[1]] = v;
        }
        if (!ok) continue;
      }
      const rest = line.slice(i).trim().split(/\s+/);
      if (!rest[0]) continue;
      const value = rest[0] === '+Inf' ? Infinity : rest[0] === '-Inf' ? -Infinity : Number(rest[0]);
      if (Number.isNaN(value) && rest[0] !== 'NaN') continue;
      out.push({ name, labels, value });
    }
    return out;
  }

  // One scrape, indexed: sum(name) over all members, byLabel(name, label) -> Map(value -> sum).
  class Scrape {
    constructor(samples, time) {
      this.time = time;
      this.samples = samples;
      this.names = new Set(samples.map(s => s.name));
    }
    has(name) { return this.names.has(name); }
    sum(name, match) {
      let total = 0;
      let found = false;
      for (const s of this.samples) {
        if (s.name !== name) continue;
        if (match && !Object.entries(match).every(([k, v]) => s.labels[k] === v)) continue;
        total += s.value;
        found = true;
      }
      return found ? total : null;
    }
    byLabel(name, label) {
      const m = new Map();
      for (const s of this.samples) {
        if (s.name !== name || !(label in s.labels)) continue;
        m.set(s.labels[label], (m.get(s.labels[label]) || 0) + s.value);
      }
      return m;
    }
  }

  // Per-second rate of a counter between two scrapes; null when either lacks it. A
  // counter that went down was reset (a broker restart): its new value is the increase.
  function rate(prev, cur, valueOf) {
    if (!prev || !cur) return null;
    const a = valueOf(prev);
    const b = valueOf(cur);
    if (a === null || b === null || a === undefined || b === undefined) return null;
    return counterRate(a, b, (cur.time - prev.time) / 1000);
  }
  function counterRate(a, b, dt) {
    return dt > 0 ? (b >= a ? b - a : b) / dt : null;
  }

  // ---------------------------------------------------------------- charts

  class Chart {
    constructor(canvas, legend, series, bytes) {
      this.canvas = canvas;
      this.legend = legend;
      this.series = series;     // [{name, color}]
      this.bytes = bytes;
      this.points = [];         // {t, values: [number|null]}
      this.drawLegend();
    }
    push(t, values) {
      this.points.push({ t, values });
      if (this.points.length > CHART_POINTS) this.points.shift();
      this.canvas.dataset.points = String(this.points.length);
      this.drawLegend();
      this.draw();
    }
    drawLegend() {
      const last = this.points.length ? this.points[this.points.length - 1].values : [];
      this.legend.replaceChildren(...this.series.map((s, i) =>
        el('span', { class: 'legend-item' },
           el('span', { class: 'swatch', style: `background:${s.color}` }),
           `${s.name} ${last[i] === null || last[i] === undefined ? '—' : fmtRate(last[i], this.bytes)}`)));
    }
    draw() {
      const c = this.canvas;
      const dpr = window.devicePixelRatio || 1;
      const cssW = c.clientWidth || 600;
      const cssH = c.clientHeight || 200;
      if (c.width !== Math.round(cssW * dpr) || c.height !== Math.round(cssH * dpr)) {
        c.width = Math.round(cssW * dpr);
        c.height = Math.round(cssH * dpr);
      }
      const g = c.getContext('2d');
      if (!g) return;
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, cssW, cssH);
      const padL = 72, padR = 8, padT = 8, padB = 20;
      const w = cssW - padL - padR, h = cssH - padT - padB;
      let max = 0;
      for (const p of this.points) for (const v of p.values) if (v !== null && v > max) max = v;
      max = this.bytes ? niceBytes(max) : niceCeil(max);
      const style = getComputedStyle(document.body);
      const fg = style.getPropertyValue('--muted').trim() || '#666';
      const grid = style.getPropertyValue('--grid').trim() || '#ddd';
      g.font = '11px system-ui, sans-serif';
      g.lineWidth = 1;
      // horizontal grid and y labels
      for (let i = 0; i <= 4; i++) {
        const y = padT + h - (h * i) / 4;
        g.strokeStyle = grid;
        g.beginPath(); g.moveTo(padL, Math.round(y) + 0.5); g.lineTo(padL + w, Math.round(y) + 0.5); g.stroke();
        g.fillStyle = fg;
        g.textAlign = 'right';
        g.textBaseline = 'middle';
        g.fillText(fmtRate((max * i) / 4, this.bytes), padL - 6, y);
      }
      // x axis: time before the last point; the span grows with the data from 1 to 5 minutes
      const now = this.points.length ? this.points[this.points.length - 1].t : Date.now();
      const first = this.points.length ? this.points[0].t : now;
      const span = Math.min(Math.max(now - first, 60000), CHART_POINTS * POLL_MS);
      const tick = span <= 60000 ? 15000 : span <= 150000 ? 30000 : 60000;
      const xOf = t => padL + w - ((now - t) / span) * w;
      g.textAlign = 'center';
      g.textBaseline = 'top';
      g.fillStyle = fg;
      for (let ago = 0; ago <= span + 1; ago += tick) {
        const x = xOf(now - ago);
        const label = ago === 0 ? 'now' : ago % 60000 ? `-${ago / 1000}s` : `-${ago / 60000}m`;
        g.fillText(label, Math.min(Math.max(x, padL + 12), padL + w - 12), padT + h + 4);
      }
      if (!this.points.length) {
        g.fillStyle = fg;
        g.textBaseline = 'middle';
        g.fillText('waiting for data…', padL + w / 2, padT + h / 2);
        return;
      }
      // series
      this.series.forEach((s, i) => {
        g.strokeStyle = s.color;
        g.lineWidth = 2;
        g.beginPath();
        let pen = false;
        for (const p of this.points) {
          const v = p.values[i];
          if (v === null || v === undefined) { pen = false; continue; }
          const x = xOf(p.t);
          const y = padT + h - (max > 0 ? (v / max) * h : 0);
          if (pen) g.lineTo(x, y); else g.moveTo(x, y);
          pen = true;
        }
        g.stroke();
        // a lone point is still visible
        const last = this.points[this.points.length - 1];
        if (last.values[i] !== null && last.values[i] !== undefined) {
          g.fillStyle = s.color;
          g.beginPath();
          g.arc(xOf(last.t), padT + h - (max > 0 ? (last.values[i] / max) * h : 0), 2.5, 0, 2 * Math.PI);
          g.fill();
        }
      });
    }
  }

  // The smallest 1/2/4/5/8 x 10^k at or above v (at least 1): a chart's top, in quarters.
  function niceCeil(v) {
    if (!(v > 1)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 5, 8, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }
  // The same for bytes, in the unit fmtBytes prints (KiB, MiB, ...), so the labels stay round.
  function niceBytes(v) {
    if (!(v > 1)) return 1;
    const unit = Math.pow(1024, Math.min(5, Math.floor(Math.log(v) / Math.log(1024))));
    return niceCeil(v / unit) * unit;
  }

  // ---------------------------------------------------------------- state

  const state = {
    paused: false,
    expandedTopics: new Set(),
    expandedGroups: new Set(),
    topicDetails: new Map(),   // name -> topic object or {error}
    groupDetails: new Map(),   // id -> group object or {error}
    prevScrape: null,
    topicRates: new Map(),     // topic -> {in, out, records}
    groupLag: null,            // group -> lag from sluice_kafka_group_lag, null without the gauge
    lastTopics: null,
    lastGroups: null,
    timer: null,
  };

  const COLORS = { in: '#2f7ed8', out: '#e4572e', produce: '#2f7ed8', fetch: '#e4572e' };
  const bytesChart = new Chart($('#chart-bytes'), $('#legend-bytes'),
                               [{ name: 'in (produce)', color: COLORS.in },
                                { name: 'out (fetch)', color: COLORS.out }], true);
  const requestsChart = new Chart($('#chart-requests'), $('#legend-requests'),
                                  [{ name: 'Produce', color: COLORS.produce },
                                   { name: 'Fetch', color: COLORS.fetch }], false);

  // ---------------------------------------------------------------- rendering

  function renderHealth(r) {
    const badge = $('#health-badge');
    const list = $('#health-list');
    if (!r.ok) {
      setError('health', r.error.message);
      badge.textContent = r.error.unreachable ? 'unreachable' : 'unknown';
      badge.className = 'badge bad';
      list.replaceChildren();
      return;
    }
    setError('health', null);
    const h = r.value || {};
    badge.textContent = h.is_healthy ? 'healthy' : 'unhealthy';
    badge.className = 'badge ' + (h.is_healthy ? 'good' : 'bad');
    $('#cluster-id').textContent = h.cluster_id ? `cluster ${h.cluster_id}` : '';
    const parts = list => (Array.isArray(list) && list.length
      ? list.slice(0, 20).map(p => `${p.topic}[${p.partition}]`).join(', ') + (list.length > 20 ? ', …' : '')
      : 'none');
    const facts = [
      ['Status', h.is_healthy ? 'healthy' : 'unhealthy'],
      ['Cluster ID', orDash(h.cluster_id)],
      ['Controller', orDash(h.controller_id)],
      ['Nodes', Array.isArray(h.all_nodes) ? h.all_nodes.join(', ') || 'none' : '—'],
      ['Nodes down', Array.isArray(h.nodes_down) ? h.nodes_down.join(', ') || 'none' : '—'],
      ['Leaderless partitions', `${fmtInt(h.leaderless_count)}${h.leaderless_count ? ': ' + parts(h.leaderless_partitions) : ''}`],
      ['Under-replicated partitions',
       `${fmtInt(h.under_replicated_count)}${h.under_replicated_count ? ': ' + parts(h.under_replicated_partitions) : ''}`],
    ];
    list.replaceChildren(...facts.flatMap(([k, v]) => [el('dt', null, k), el('dd', { dataset: { fact: k } }, v)]));
  }

  // A table section's rows from a settled fetch, or null once the section shows its error
  // ("no data") or emptiness instead.
  function sectionList(section, r, cols, emptyText, keep = () => true) {
    const body = $(`#${section} > table > tbody`);
    if (!r.ok) {
      setError(section, r.error.message);
      body.replaceChildren(emptyRow(cols, 'no data'));
      return null;
    }
    setError(section, null);
    const list = (Array.isArray(r.value) ? r.value : []).filter(keep);
    if (!list.length) {
      body.replaceChildren(emptyRow(cols, emptyText));
      return null;
    }
    return list;
  }

  function renderBrokers(r) {
    const brokers = sectionList('brokers', r, 7, 'no brokers');
    if (!brokers) return;
    $('#brokers tbody').replaceChildren(...brokers.map(b => el('tr', { dataset: { broker: String(b.node_id) } },
      el('td', { class: 'c-id' }, orDash(b.node_id), b.is_controller ? el('span', { class: 'tag' }, 'controller') : null),
      el('td', { class: 'c-address' }, b.host !== undefined ? `${b.host}:${b.port}` : '—'),
      el('td', { class: 'c-rack' }, orDash(b.rack)),
      el('td', { class: 'num c-shards' }, orDash(b.shards)),
      el('td', { class: 'c-version' }, orDash(b.version)),
      el('td', { class: 'num c-uptime' }, fmtDuration(b.uptime_ms)),
      el('td', { class: 'c-status' }, el('span', { class: 'badge ' + (b.is_alive === false ? 'bad' : 'good') },
                                         b.is_alive === false ? 'down' : 'alive')))));
  }

  function emptyRow(cols, text) {
    return el('tr', { class: 'empty' }, el('td', { colspan: cols }, text));
  }

  function toggle(set, key) {
    if (set.has(key)) set.delete(key); else set.add(key);
  }

  // The rows of a table whose rows expand: per item, sorted by key, a row (attribute data-ATTR=key;
  // a button with the key, then cells(item)) and, when expanded, a detail row (data-ATTR-detail=key).
  function expandableRows(section, items, { key, attr, expanded, cells, tag, detail, refresh, render }) {
    const cols = $(`#${section} > table > thead > tr`).children.length;
    items.sort((a, b) => key(a).localeCompare(key(b)));
    $(`#${section} > table > tbody`).replaceChildren(...items.flatMap(item => {
      const k = key(item);
      const open = expanded.has(k);
      const row = el('tr', { class: 'expandable' + (open ? ' open' : ''), dataset: { [attr]: k },
                             onclick: () => { toggle(expanded, k); render(); if (!open) refresh(k); } },
        el('td', { class: 'c-name' }, el('button', { type: 'button', class: 'link', 'aria-expanded': String(open) },
                                         open ? '▾ ' : '▸ ', k), tag ? tag(item) : null),
        cells(item, k));
      return open ? [row, el('tr', { class: 'detail', dataset: { [attr + 'Detail']: k } },
                             el('td', { colspan: cols }, detail(k)))] : [row];
    }));
  }

  function renderTopics() {
    if (!state.lastTopics) return;
    const showInternal = $('#show-internal').checked;
    const topics = sectionList('topics', state.lastTopics, 8, 'no topics', t => showInternal || !t.internal);
    if (!topics) return;
    expandableRows('topics', topics, {
      key: t => String(t.name), attr: 'topic', expanded: state.expandedTopics,
      tag: t => (t.internal ? el('span', { class: 'tag' }, 'internal') : null),
      cells: (t, name) => {
        const rt = state.topicRates.get(name) || {};
        return [
          el('td', { class: 'num c-partitions' }, fmtInt(t.partition_count)),
          el('td', { class: 'num c-replicas' }, fmtInt(t.replication_factor)),
          el('td', { class: 'num c-size' }, fmtBytes(t.size_bytes)),
          el('td', { class: 'num c-messages' }, fmtInt(t.messages)),
          el('td', { class: 'num c-in' }, fmtRate(rt.in, true)),
          el('td', { class: 'num c-out' }, fmtRate(rt.out, true)),
          el('td', { class: 'num c-records' }, fmtRate(rt.records, false)),
        ];
      },
      detail: topicDetail, refresh: refreshTopicDetail, render: renderTopics,
    });
  }

  function topicDetail(name) {
    const d = state.topicDetails.get(name);
    if (!d) return el('p', { class: 'muted' }, 'loading…');
    if (d.error) return el('p', { class: 'error' }, d.error);
    const parts = (Array.isArray(d.partitions) ? d.partitions : []).slice().sort((a, b) => a.partition - b.partition);
    const table = el('table', { class: 'inner partitions' },
      el('thead', null, el('tr', null, ['Partition', 'Leader', 'Replicas', 'ISR', 'Shard', 'Start offset',
                                         'High watermark', 'Size'].map((h, i) => el('th', { class: i ? 'num' : null }, h)))),
      el('tbody', null, parts.length ? parts.map(p => el('tr', { dataset: { partition: String(p.partition) } },
        el('td', { class: 'c-partition' }, orDash(p.partition)),
        el('td', { class: 'num c-leader' }, orDash(p.leader)),
        el('td', { class: 'num c-replicas' }, Array.isArray(p.replicas) ? p.replicas.join(', ') : '—'),
        el('td', { class: 'num c-isr' }, Array.isArray(p.isr) ? p.isr.join(', ') : '—'),
        el('td', { class: 'num c-shard' }, orDash(p.shard)),
        el('td', { class: 'num c-start' }, fmtInt(p.log_start_offset)),
        el('td', { class: 'num c-hwm' }, fmtInt(p.high_watermark)),
        el('td', { class: 'num c-size' }, fmtBytes(p.size_bytes)))) : emptyRow(8, 'no partitions')));
    const configs = (Array.isArray(d.configs) ? d.configs : []).filter(c => c.source && c.source !== 'default');
    return el('div', null, table,
      configs.length ? el('p', { class: 'muted configs' }, 'Configs set: ',
                          configs.map(c => `${c.name}=${c.value} (${c.source})`).join(', ')) : null);
  }

  function renderGroups() {
    if (!state.lastGroups) return;
    const groups = sectionList('groups', state.lastGroups, 6, 'no consumer groups');
    if (!groups) return;
    expandableRows('groups', groups, {
      key: g => String(g.group_id), attr: 'group', expanded: state.expandedGroups,
      cells: (g, id) => {
        const d = state.groupDetails.get(id);
        const lag = d && !d.error ? d.total_lag : state.groupLag ? state.groupLag.get(id) || 0 : undefined;
        return [
          el('td', { class: 'c-state' }, el('span', { class: 'badge ' + stateClass(g.state) }, orDash(g.state))),
          el('td', { class: 'c-protocol' }, orDash(g.protocol_type)),
          el('td', { class: 'num c-members' }, fmtInt(g.member_count)),
          el('td', { class: 'num c-coordinator' }, orDash(g.coordinator)),
          el('td', { class: 'num c-lag' + (lag > 0 ? ' warn' : '') },
             lag === undefined && d && d.error ? '?' : fmtInt(lag)),
        ];
      },
      detail: groupDetail, refresh: refreshGroupDetail, render: renderGroups,
    });
  }

  function stateClass(s) {
    if (s === 'Stable') return 'good';
    if (s === 'Dead') return 'bad';
    if (s === 'Empty') return 'neutral';
    return 'warn';
  }

  function groupDetail(id) {
    const d = state.groupDetails.get(id);
    if (!d) return el('p', { class: 'muted' }, 'loading…');
    if (d.error) return el('p', { class: 'error' }, d.error);
    const members = Array.isArray(d.members) ? d.members : [];
    const offsets = (Array.isArray(d.offsets) ? d.offsets : []).slice()
      .sort((a, b) => String(a.topic).localeCompare(String(b.topic)) || a.partition - b.partition);
    return el('div', null,
      el('p', { class: 'muted' }, `Protocol: ${orDash(d.protocol)} · coordinator ${orDash(d.coordinator)} · total lag `,
         el('strong', { class: 'c-total-lag' }, fmtInt(d.total_lag))),
      el('h3', null, `Members (${members.length})`),
      members.length ? el('table', { class: 'inner members' },
        el('thead', null, el('tr', null, ['Member', 'Client', 'Host', 'Assignments'].map(h => el('th', null, h)))),
        el('tbody', null, members.map(m => el('tr', null,
          el('td', { class: 'mono' }, orDash(m.member_id)),
          el('td', null, orDash(m.client_id), m.instance_id ? ` (instance ${m.instance_id})` : ''),
          el('td', null, orDash(m.client_host)),
          el('td', null, Array.isArray(m.assignments) && m.assignments.length
            ? m.assignments.map(a => `${a.topic}[${a.partition}]`).join(', ') : 'none')))))
        : el('p', { class: 'muted' }, 'no members'),
      el('h3', null, 'Committed offsets'),
      offsets.length ? el('table', { class: 'inner offsets' },
        el('thead', null, el('tr', null, ['Topic', 'Partition', 'Committed', 'High watermark', 'Lag', 'Member']
          .map((h, i) => el('th', { class: i && i < 5 ? 'num' : null }, h)))),
        el('tbody', null, offsets.map(o => el('tr', { dataset: { topic: String(o.topic), partition: String(o.partition) } },
          el('td', null, orDash(o.topic)),
          el('td', { class: 'num' }, orDash(o.partition)),
          el('td', { class: 'num c-committed' }, fmtInt(o.committed_offset)),
          el('td', { class: 'num c-hwm' }, fmtInt(o.high_watermark)),
          el('td', { class: 'num c-lag' + (o.lag > 0 ? ' warn' : '') }, fmtInt(o.lag)),
          el('td', { class: 'mono' }, orDash(o.member_id))))))
        : el('p', { class: 'muted' }, 'no committed offsets'));
  }

  // ---------------------------------------------------------------- metrics

  function renderMetrics(r) {
    const note = $('#throughput-note');
    if (!r.ok) {
      setError('throughput', `/metrics: ${r.error.message}`);
      state.groupLag = null;
      return;
    }
    setError('throughput', null);
    const cur = new Scrape(parsePrometheus(r.value), Date.now());
    const prev = state.prevScrape;
    state.prevScrape = cur;
    state.groupLag = cur.has('sluice_kafka_group_lag') ? cur.byLabel('sluice_kafka_group_lag', 'group') : null;

    // Whole-broker bytes: the per-topic counters when the broker has them (record bytes),
    // else every Kafka request and response byte.
    const hasTopicCounters = cur.has('sluice_kafka_topic_bytes_in_total');
    const inName = hasTopicCounters ? 'sluice_kafka_topic_bytes_in_total' : 'sluice_kafka_request_bytes_total';
    const outName = cur.has('sluice_kafka_topic_bytes_out_total') ? 'sluice_kafka_topic_bytes_out_total'
      : 'sluice_kafka_response_bytes_total';
    note.textContent = (hasTopicCounters ? 'Bytes: record bytes produced and fetched (per-topic counters).'
      : 'Bytes: all Kafka request and response bytes (this broker has no per-topic counters).') +
      ' Rates are counter deltas between polls.';

    state.topicRates = new Map();
    if (prev) {
      const dt = (cur.time - prev.time) / 1000;
      const perTopic = name => {
        const a = prev.byLabel(name, 'topic');
        const b = cur.byLabel(name, 'topic');
        return topic => (a.has(topic) && b.has(topic) ? counterRate(a.get(topic), b.get(topic), dt) : null);
      };
      const inRate = perTopic('sluice_kafka_topic_bytes_in_total');
      const outRate = perTopic('sluice_kafka_topic_bytes_out_total');
      const recRate = perTopic('sluice_kafka_topic_records_in_total');
      const names = new Set(['sluice_kafka_topic_bytes_in_total', 'sluice_kafka_topic_bytes_out_total',
                             'sluice_kafka_topic_records_in_total'].flatMap(n => [...cur.byLabel(n, 'topic').keys()]));
      for (const n of names) state.topicRates.set(n, { in: inRate(n), out: outRate(n), records: recRate(n) });
      bytesChart.push(cur.time, [rate(prev, cur, s => s.sum(inName)), rate(prev, cur, s => s.sum(outName))]);
      requestsChart.push(cur.time, [rate(prev, cur, s => s.sum('sluice_kafka_requests_total', { api: 'Produce' })),
                                    rate(prev, cur, s => s.sum('sluice_kafka_requests_total', { api: 'Fetch' }))]);
    }
  }

  // ---------------------------------------------------------------- polling

  // An expanded row's detail (a topic's or a group's) into its map, then its table again.
  async function refreshDetail(details, key, url, render) {
    try {
      details.set(key, await get(url));
    } catch (e) {
      details.set(key, { error: e.message });
    }
    render();
  }
  const refreshTopicDetail = name =>
    refreshDetail(state.topicDetails, name, `v1/topics/${encodeURIComponent(name)}`, renderTopics);
  const refreshGroupDetail = id =>
    refreshDetail(state.groupDetails, id, `v1/groups/${encodeURIComponent(id)}`, renderGroups);

  // The expanded groups' details, and without the lag gauge the first groups' too (their lag).
  async function refreshGroupDetails(groups) {
    const all = groups.map(g => String(g.group_id));
    const ids = all.filter(id => state.expandedGroups.has(id));
    if (!state.groupLag) for (const id of all.slice(0, MAX_GROUP_DETAILS)) if (!ids.includes(id)) ids.push(id);
    const res = await settleAll(Object.fromEntries(ids.map(id => [id, get(`v1/groups/${encodeURIComponent(id)}`)])));
    for (const id of [...state.groupDetails.keys()]) if (!ids.includes(id)) state.groupDetails.delete(id);
    for (const id of ids) state.groupDetails.set(id, res[id].ok ? res[id].value : { error: res[id].error.message });
  }

  function banner(msg) {
    const b = $('#banner');
    b.hidden = !msg;
    b.textContent = msg || '';
  }

  let inFlight = false;
  async function poll() {
    if (inFlight) return;
    inFlight = true;
    try {
      const r = await settleAll({
        health: get('v1/cluster/health'),
        brokers: get('v1/brokers'),
        topics: get('v1/topics'),
        groups: get('v1/groups'),
        metrics: get('metrics', true),
      });
      const all = Object.values(r);
      if (all.every(x => !x.ok && x.error.unreachable)) {
        banner('Admin API unreachable: the broker may be down or restarting. Retrying every 2 s…');
      } else if (all.some(x => !x.ok && x.error.status === 401)) {
        banner('The admin API refused the credentials (401): reload the page to log in again.');
      } else {
        banner(null);
      }
      renderHealth(r.health);
      renderBrokers(r.brokers);
      renderMetrics(r.metrics);
      state.lastTopics = r.topics;
      state.lastGroups = r.groups;
      // Details: every expanded topic and group (and more groups without the lag gauge).
      const details = [...state.expandedTopics].map(n => refreshTopicDetail(n));
      if (r.groups.ok && Array.isArray(r.groups.value)) {
        const known = new Set(r.groups.value.map(g => String(g.group_id)));
        for (const id of state.expandedGroups) if (!known.has(id)) state.expandedGroups.delete(id);
        details.push(refreshGroupDetails(r.groups.value));
      }
      if (r.topics.ok && Array.isArray(r.topics.value)) {
        const known = new Set(r.topics.value.map(t => String(t.name)));
        for (const n of state.expandedTopics) if (!known.has(n)) state.expandedTopics.delete(n);
      }
      await Promise.allSettled(details);
      renderTopics();
      renderGroups();
      $('#updated').textContent = `updated ${new Date().toLocaleTimeString()}`;
      document.body.dataset.polls = String(Number(document.body.dataset.polls || 0) + 1);
    } finally {
      inFlight = false;
    }
  }

  function schedule() {
    clearTimeout(state.timer);
    if (state.paused) return;
    state.timer = setTimeout(async () => {
      await poll().catch(e => banner(`Console error: ${e.message}`));
      schedule();
    }, POLL_MS);
  }

  $('#pause').addEventListener('click', () => {
    state.paused = !state.paused;
    const b = $('#pause');
    b.textContent = state.paused ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', String(state.paused));
    if (!state.paused) {
      state.prevScrape = null;   // a rate across the pause would be an average, not live
      poll().catch(e => banner(`Console error: ${e.message}`));
    }
    schedule();
  });
  $('#show-internal').addEventListener('change', renderTopics);
  window.addEventListener('resize', () => { bytesChart.draw(); requestsChart.draw(); });

  bytesChart.draw();
  requestsChart.draw();
  poll().catch(e => banner(`Console error: ${e.message}`)).finally(schedule);

  // For tests and the browser's devtools.
  window.sluiceConsole = { state, parsePrometheus, charts: { bytes: bytesChart, requests: requestsChart }, poll };
})();
