// The status page as HTML: a pure function of a StatusSnapshot (status.ts).
// Everything on it that is not this file's own text (file names and URLs
// come from mirrors and clients, the Host header from the browser) goes
// through escapeHtml: the page is built only with the `html` template tag,
// which escapes every value put in it unless it is already Html (made by
// the tag itself), so a value cannot reach the page unescaped by mistake.
// The chart is inline SVG and there is no script: the page works offline
// and under a Content-Security-Policy that allows no script at all.
import { SOURCES, type Source } from './answer-path.js';
import { HOURS, HOUR_MS, type HourTally, type RecentDownload, type StatusSnapshot, type Tally } from './status.js';

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text made safe for HTML, both as element content and inside a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Markup of this file's own, made by `html` (or from one of its constants); never exported as a value. */
class Html {
  constructor(readonly text: string) {}
}
export type { Html };

type Value = Html | string | number | null | undefined | false | readonly Value[];

function piece(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (v instanceof Html) return v.text;
  if (typeof v === 'string' || typeof v === 'number') return escapeHtml(String(v));
  return v.map(piece).join('');
}

/** A template of this file's own markup; every interpolated value is escaped unless it is Html. */
export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => (out += piece(v) + strings[i + 1]!));
  return new Html(out);
}

const COLORS: Record<Source, string> = { peers: '#2e7d32', mirror: '#e65100', store: '#1565c0', direct: '#8d8d8d' };
const SOURCE_TEXT: Record<Source, string> = {
  peers: 'the fleet, over BitTorrent',
  mirror: 'the mirror, for BitTorrent downloads (pieces, origin seeder, fallback)',
  store: "this proxy's store",
  direct: 'straight from the mirror (not over BitTorrent)',
};

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h} h ${m % 60} min` : `${Math.floor(h / 24)} days ${h % 24} h`;
}

function percent(share: number | null): string {
  return share === null ? '-' : `${(share * 100).toFixed(1)} %`;
}

/** "12:34:56" of an ISO time (UTC, as the log). */
function clock(iso: string): string {
  return iso.slice(11, 19);
}

function tallyCells(t: Tally): Html {
  return html`<td class="num">${t.requests}</td>${SOURCES.map((s) => html`<td class="num">${formatBytes(t.bytes[s])}</td>`)}<td class="num">${formatBytes(t.delivered)}</td><td class="num">${percent(t.mirrorSpared)}</td>`;
}

function totalsTable(s: StatusSnapshot): Html {
  const hours = [...s.hours].reverse();
  return html`<table class="totals">
<thead><tr><th></th><th>requests</th>${SOURCES.map((src) => html`<th><span class="key" style="background:${COLORS[src]}"></span>${src}</th>`)}<th>delivered</th><th>mirror spared</th></tr></thead>
<tbody>
<tr class="total"><th>since start</th>${tallyCells(s.totals)}</tr>
${hours.map((h) => html`<tr><th>${h.start.slice(0, 10)} ${h.start.slice(11, 16)} UTC</th>${tallyCells(h)}</tr>\n`)}</tbody>
</table>`;
}

/** Bytes by source per hour, stacked bars, the last HOURS hours up to the snapshot's. */
export function chart(s: StatusSnapshot): Html {
  const W = 720;
  const H = 200;
  const left = 64;
  const bottom = 24;
  const top = 10;
  const plotH = H - bottom - top;
  const slot = (W - left - 8) / HOURS;
  const lastHour = Math.floor(Date.parse(s.generatedAt) / HOUR_MS);
  const byHour = new Map<number, HourTally>(s.hours.map((h) => [Math.floor(Date.parse(h.start) / HOUR_MS), h]));
  const sum = (h: HourTally) => SOURCES.reduce((n, src) => n + h.bytes[src], 0);
  const max = Math.max(0, ...s.hours.map(sum));
  const bars: Html[] = [];
  for (let i = 0; i < HOURS; i++) {
    const h = byHour.get(lastHour - (HOURS - 1) + i);
    if (!h || max === 0) continue;
    let y = top + plotH;
    for (const src of SOURCES) {
      const n = h.bytes[src];
      if (n <= 0) continue;
      // At least a pixel: a source that sent anything shows.
      const height = Math.max(1, (n / max) * plotH);
      y -= height;
      bars.push(
        html`<rect class="bar" data-source="${src}" x="${(left + i * slot + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(1, slot - 2).toFixed(1)}" height="${height.toFixed(1)}" fill="${COLORS[src]}"><title>${h.start.slice(11, 16)} UTC ${src}: ${formatBytes(n)}</title></rect>`,
      );
    }
  }
  const label = `bytes by source per hour, last ${HOURS} hours`;
  return html`<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="${label}">
<line x1="${left}" y1="${top + plotH}" x2="${W - 8}" y2="${top + plotH}" stroke="#999"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#999"/>
<text x="${left - 6}" y="${top + 10}" text-anchor="end" font-size="11">${formatBytes(max)}</text>
<text x="${left - 6}" y="${top + plotH}" text-anchor="end" font-size="11">0</text>
<text x="${left}" y="${H - 6}" font-size="11">-${HOURS} h</text>
<text x="${left + (W - left - 8) / 2}" y="${H - 6}" font-size="11" text-anchor="middle">-${HOURS / 2} h</text>
<text x="${W - 8}" y="${H - 6}" font-size="11" text-anchor="end">now</text>
${max === 0 ? html`<text x="${left + (W - left) / 2}" y="${top + plotH / 2}" text-anchor="middle" font-size="13" fill="#777">no bytes yet</text>` : bars}
</svg>`;
}

function recentTable(recent: RecentDownload[]): Html {
  if (recent.length === 0) return html`<p class="none">No package downloaded yet.</p>`;
  return html`<table class="recent">
<thead><tr><th>ended (UTC)</th><th>package</th><th>size</th><th>path</th>${SOURCES.map((src) => html`<th>${src}</th>`)}<th>duration</th><th>peers seen</th><th>status</th></tr></thead>
<tbody>
${recent.map(
  (r) => html`<tr class="download" data-path="${r.path}">
<td>${clock(r.at)}</td><td class="name" title="${r.url}">${r.name}</td><td class="num size">${r.size === null ? '-' : formatBytes(r.size)}</td><td class="path">${r.path}${r.fallback ? html`<br><small>fallback: ${r.fallback}</small>` : ''}</td>${SOURCES.map(
    (src) => html`<td class="num ${src}">${r.from[src] ? formatBytes(r.from[src]) : '-'}</td>`,
  )}<td class="num duration">${formatDuration(r.durationMs)}</td><td class="num seen">${r.peers ? `${r.peers.connections} (${r.peers.seeders} seeds)` : '-'}</td><td class="num status">${r.status}</td>
</tr>\n`,
)}</tbody>
</table>`;
}

function storeAndEngine(s: StatusSnapshot): Html {
  const e = s.engine;
  const st = s.store;
  return html`<div class="cards">
<section class="card"><h3>Store</h3><dl>
${st ? html`<dt>stored</dt><dd>${formatBytes(st.bytes)} of ${formatBytes(st.limitBytes)}, ${st.packages} package${st.packages === 1 ? '' : 's'}</dd><dt>seeding now</dt><dd>${st.seeding}</dd>` : html`<dt>stored</dt><dd>cannot be read now</dd>`}
<dt>uploaded to peers</dt><dd>${e.uploaded === null ? '-' : formatBytes(e.uploaded)} <small>(since the engine started)</small></dd>
</dl></section>
<section class="card"><h3>BitTorrent engine</h3><dl>
<dt>libtorrent</dt><dd>${e.version || '-'}</dd>
<dt>state</dt><dd>${e.answering ? 'answering' : 'not answering (restarting?)'}</dd>
<dt>restarts</dt><dd>${e.restarts}</dd>
<dt>torrents</dt><dd>${e.torrents ?? '-'}</dd>
<dt>peers connected</dt><dd>${e.peers ?? '-'}</dd>
</dl></section>
</div>`;
}

function mirrorsTable(s: StatusSnapshot): Html {
  if (s.mirrors.length === 0) return html`<p class="none">No mirror asked yet.</p>`;
  return html`<table class="mirrors">
<thead><tr><th>mirror</th><th>requests</th><th>delivered</th><th>pkgtorrent service</th></tr></thead>
<tbody>
${s.mirrors.map(
  (m) => html`<tr><td>${m.origin}</td><td class="num">${m.requests}</td><td class="num">${formatBytes(m.delivered)}</td><td>${
    m.service.length === 0
      ? 'not asked yet (no package)'
      : m.service.map((p, i) => html`${i ? ', ' : ''}${p.prefix}: <span class="${p.runs ? 'yes' : 'no'}">${p.runs ? 'runs' : 'none (packages go direct)'}</span>`)
  }</td></tr>\n`,
)}</tbody>
</table>`;
}

/** The clients' settings, as README's quick start has them, with this proxy's address. */
export function clientConfig(proxyUrl: string): Array<{ client: string; where: string; text: string }> {
  return [
    { client: 'apt', where: '/etc/apt/apt.conf.d/90pkgtorrent', text: `echo 'Acquire::http::Proxy "${proxyUrl}/";' > /etc/apt/apt.conf.d/90pkgtorrent` },
    { client: 'dnf (and yum)', where: '/etc/dnf/dnf.conf, in [main]', text: `proxy=${proxyUrl}` },
    { client: 'zypper', where: 'the environment of the command', text: `http_proxy=${proxyUrl} zypper refresh` },
    { client: 'pacman', where: 'the environment of the command', text: `http_proxy=${proxyUrl} pacman -Syu` },
  ];
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}h3{margin:0 0 .4em;font-size:1em}
.sub{color:#666;margin:0}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
thead th{background:#f5f5f5}td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
tr.total{font-weight:600}td.name{word-break:break-all;font-family:ui-monospace,monospace}
.key{display:inline-block;width:.8em;height:.8em;margin-right:.3em;vertical-align:-1px}
.legend span{margin-right:1.2em;white-space:nowrap}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{flex:1 1 300px;border:1px solid #ddd;border-radius:6px;padding:.7em 1em}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}dt{color:#555}dd{margin:0}
pre{background:#f5f5f5;padding:.5em .8em;overflow-x:auto;margin:.2em 0 .8em}
.yes{color:#2e7d32}.no{color:#b71c1c}.none{color:#777}
.big{font-size:1.8em;font-weight:600}
`;

/** The whole page. */
export function renderStatusPage(s: StatusSnapshot): string {
  const current = s.hours.at(-1);
  const thisHour = current && Math.floor(Date.parse(current.start) / HOUR_MS) === Math.floor(Date.parse(s.generatedAt) / HOUR_MS) ? current : null;
  const page = html`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pkgtorrent proxy ${s.proxyUrl}</title>
<style>${new Html(STYLE)}</style>
</head>
<body>
<h1>pkgtorrent proxy</h1>
<p class="sub">${s.proxyUrl} · pkgtorrent ${s.version} · up ${formatDuration(s.uptimeMs)} (since ${s.startedAt.replace('T', ' ').slice(0, 19)} UTC) · as of ${s.generatedAt.replace('T', ' ').slice(0, 19)} UTC · <a href="?format=json">JSON</a></p>

<h2>Traffic</h2>
<div class="cards">
<section class="card"><h3>Mirror spared, since start</h3><div class="big" id="spared">${percent(s.totals.mirrorSpared)}</div><small>of the bytes by source, those from peers and the store</small></section>
<section class="card"><h3>Requests</h3><div class="big">${s.totals.requests}</div><small>${thisHour ? thisHour.requests : 0} this hour; ${s.totals.paths.bittorrent} bittorrent, ${s.totals.paths.store} store, ${s.totals.paths.direct} direct, ${s.totals.paths.tunnel} tunnel, ${s.totals.paths.refused} refused</small></section>
<section class="card"><h3>Delivered</h3><div class="big">${formatBytes(s.totals.delivered)}</div><small>${formatBytes(thisHour ? thisHour.delivered : 0)} this hour</small></section>
</div>
<h3 style="margin-top:1em">Bytes by source, per hour</h3>
${chart(s)}
<p class="legend">${SOURCES.map((src) => html`<span><span class="key" style="background:${COLORS[src]}"></span>${src}: ${SOURCE_TEXT[src]}</span>`)}</p>
${totalsTable(s)}

<h2>Last downloads</h2>
${recentTable(s.recent)}

<h2>Store and engine</h2>
${storeAndEngine(s)}

<h2>Mirrors seen</h2>
${mirrorsTable(s)}

<h2>Client configuration</h2>
<p>Package managers need only their proxy setting (https repositories pass through as plain tunnels, without BitTorrent):</p>
${clientConfig(s.proxyUrl).map((c) => html`<h3>${c.client} <small>(${c.where})</small></h3><pre class="config" data-client="${c.client}">${c.text}</pre>\n`)}
</body>
</html>
`;
  return page.text;
}
