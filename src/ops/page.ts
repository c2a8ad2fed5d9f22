/**
 * The status page served at `/` by `lvs-xdp run`, in the manner of HAProxy's stats page: a
 * summary line, a table per virtual service with a row per realserver (weight configured and in
 * force, health, check result, rates with sparklines of the last minutes, connections, totals),
 * and the non-zero data-plane counters.
 *
 * Rendered complete on the server (pure functions of the status document), so the page reads
 * the same with JavaScript off, in a text browser or a headless screenshot; with JavaScript on
 * it fetches the same rendering of the content (GET /api/status.html) every second and swaps it
 * in: one renderer, no second copy of it in the browser. No external resources.
 * Problems never depend on colour alone: a failed reload, a service that is down or degraded, a
 * realserver that is down and a drop reason that counts carry a text marker ("!") as well.
 */
import { humanCount } from '../view/stats.js';
import type { StatusDoc, StatusService, StatusRealserver } from './status-doc.js';
import { HISTORY_MAX_REALSERVERS } from './history.js';

export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** "12s", "3m4s", "2h5m", "1d3h" from `since` to `now` (ISO). */
export function ago(since: string, now: string): string {
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(since)) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
}

export interface SparkOptions { width?: number; height?: number; label: string }

/**
 * Pure: an inline SVG polyline of `values` (oldest first), the newest at the right edge and one
 * step per point of a full history (`capacity` samples), scaled to the largest value (all zero:
 * a flat line at the bottom). The label (and its maximum and last value) is the SVG's title and
 * accessible name.
 */
export function sparkline(values: readonly number[], capacity: number, o: SparkOptions): string {
  const w = o.width ?? 180;
  const h = o.height ?? 18;
  const n = Math.min(values.length, capacity);
  const raw = values.slice(values.length - n);
  const max = Math.max(0, ...raw);
  const title = `${o.label}: max ${humanCount(max)}, now ${humanCount(raw[raw.length - 1] ?? 0)}`;
  // At most one point per SPARK_PX pixels, each the largest of the samples it covers (a peak
  // stays visible): a page of thousands of realservers stays a few bytes per sparkline point.
  const per = Math.max(1, Math.ceil((capacity * SPARK_PX) / w));
  const slots = Math.ceil(capacity / per);
  const vs: number[] = [];
  for (let end = raw.length; end > 0 && vs.length < slots; end -= per) vs.unshift(Math.max(...raw.slice(Math.max(0, end - per), end)));
  const step = slots > 1 ? (w - 1) / (slots - 1) : 0;
  const x0 = w - 1 - (vs.length - 1) * step;
  const d1 = (x: number): number => Math.round(x * 10) / 10;
  const pts = vs.map((v, i) => `${d1(x0 + i * step)},${d1(max > 0 ? h - 1 - ((h - 2) * v) / max : h - 1)}`).join(' ');
  const n2 = vs.length;
  return `<svg class="spark" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img" aria-label="${esc(title)}"><title>${esc(title)}</title>` +
    (n2 > 1 ? `<polyline fill="none" stroke="currentColor" stroke-width="1.2" points="${pts}"/>` : '') + '</svg>';
}

/** Pixels per sparkline point, at least. */
const SPARK_PX = 3;
/** Above this many realservers there are no sparklines (see history.ts). */
export const SPARK_MAX_REALSERVERS = HISTORY_MAX_REALSERVERS;

const td = (v: string | number, cls = '', attr = ''): string => `<td${cls ? ` class="${cls}"` : ''}${attr}>${esc(v)}</td>`;

function historyWindow(doc: StatusDoc): string {
  const h = doc.history;
  return h ? `last ${Math.round((h.intervalMs * h.capacity) / 60_000)} min` : '';
}

export function renderSummary(doc: StatusDoc): string {
  const s = doc.summary;
  const part = (text: string, bad: boolean, attr: string): string => `<span class="part${bad ? ' bad' : ''}" ${attr}>${bad ? '<b class="mark">!</b> ' : ''}${esc(text)}</span>`;
  const svc = `services: ${s.services.up} up, ${s.services.degraded} degraded, ${s.services.down} down`;
  const r = s.lastReload;
  const reload = r ? `last reload ${r.ok ? 'ok' : 'FAILED'} ${ago(r.at, doc.time)} ago${r.ok ? '' : `: ${r.error ?? ''} (the running configuration was kept)`}` : `no reload since the start ${ago(doc.startedAt, doc.time)} ago`;
  return `<p id="summary">${[
    part(svc, s.services.down + s.services.degraded > 0, `data-up="${s.services.up}" data-degraded="${s.services.degraded}" data-down="${s.services.down}"`),
    part(`realservers down: ${s.realserversDown}`, s.realserversDown > 0, `data-realservers-down="${s.realserversDown}"`),
    part(`drops: ${humanCount(s.dropsPerSecond)}/s`, s.dropsPerSecond > 0, `data-drops="${s.dropsPerSecond}"`),
    part(reload, r?.ok === false, `data-reload="${r ? (r.ok ? 'ok' : 'failed') : 'none'}"`),
  ].join(' \u00b7 ')}</p>`;
}

function realserverRow(doc: StatusDoc, r: StatusRealserver, sparks: boolean): string {
  const cls = r.sorry ? 'sorry' : r.health;
  const title = r.drained ? ` title="drained by hand since ${esc(r.drained.since)}"` : r.unresolved ? ` title="unresolved since ${esc(r.unresolved.since)}: ${esc(r.unresolved.problem)}"` : '';
  const inforce = `${r.effectiveWeight === null ? 'removed' : r.effectiveWeight}${r.drained ? ' DRAINED' : ''}${r.unresolved ? ' UNRESOLVED' : ''}`;
  const health = `${r.health === 'down' ? '! ' : ''}${r.health.toUpperCase()}${r.since ? ` ${ago(r.since, doc.time)}` : ''}`;
  const cap = doc.history?.capacity ?? 1;
  const win = historyWindow(doc);
  const spark = sparks && r.history
    ? `<td class="hist">${sparkline(r.history.pps, cap, { label: `${r.address} packets/s, ${win}` })}<br>${sparkline(r.history.cps, cap, { label: `${r.address} new connections/s, ${win}` })}</td>`
    : td('');
  return `<tr class="rs ${cls}" data-realserver="${esc(r.address)}" data-health="${esc(r.health)}"${r.drained ? ' data-drained="1"' : ''}${r.unresolved ? ' data-unresolved="1"' : ''}${title}>` +
    td(`${r.sorry ? 'sorry ' : ''}${r.address} (${r.method})`, 'l') + td(r.weight) + td(inforce, 'inforce') +
    td(health, 'l health', r.since ? ` title="since ${esc(r.since)}"` : '') +
    `<td class="l small">${esc(r.check ?? '')}${r.last ? `<br>${esc(r.last)}` : ''}</td>` +
    td(humanCount(r.rates.pps)) + td(humanCount(r.rates.bps * 8)) + td(humanCount(r.rates.cps)) + td(r.active) + td(r.inactive) +
    td(humanCount(BigInt(r.packets))) + td(humanCount(BigInt(r.bytes))) + td(humanCount(BigInt(r.conns))) + spark + '</tr>';
}

function serviceTable(doc: StatusDoc, s: StatusService, sparks: boolean): string {
  const win = sparks ? historyWindow(doc) : `none above ${SPARK_MAX_REALSERVERS} realservers (see /metrics)`;
  const head = `<thead><tr><th class="l">${esc(s.id)}</th><th>weight</th><th>in force</th><th class="l">health</th><th class="l">last check</th>` +
    `<th>pps</th><th>bit/s</th><th>conn/s</th><th>active</th><th>inact</th><th>packets</th><th>bytes</th><th>conns</th><th class="l">pps / new conn/s${win ? `, ${win}` : ''}</th></tr></thead>`;
  const down = s.realservers.filter((r) => !r.sorry && r.health === 'down').length;
  const state = s.allDown ? `! ALL DOWN (${s.policy})${s.sorryActive ? ', sorry server active' : ''}` : down ? `! degraded: ${down} down` : '';
  const svc = `<tr class="svc${s.allDown ? ' alldown' : down ? ' degraded' : ''}">` + td(s.scheduler, 'l') + td('') + td('') + td(state, 'l health') + td('', 'l') +
    td(humanCount(s.rates.pps)) + td(humanCount(s.rates.bps * 8)) + td(humanCount(s.rates.cps)) + td('') + td('') +
    td(humanCount(BigInt(s.packets))) + td(humanCount(BigInt(s.bytes))) + td(humanCount(BigInt(s.conns))) + td('') + '</tr>';
  return `<table class="service" data-service="${esc(s.id)}">${head}<tbody>${svc}${s.realservers.map((r) => realserverRow(doc, r, sparks)).join('')}</tbody></table>`;
}

function countersTable(doc: StatusDoc): string {
  const rows = Object.entries(doc.counters).map(([k, c]) => {
    const drop = c.kind === 'drop';
    return `<tr data-counter="${esc(k)}"${drop ? ' class="drop"' : ''}>${td(`${drop ? '! ' : ''}${k}`, 'l')}${td(c.kind, 'l')}${td(c.value)}${td(humanCount(c.rate))}</tr>`;
  }).join('');
  return `<h2>Data plane counters (non-zero; "!" marks a drop reason)</h2><table id="counters"><thead><tr><th class="l">counter</th><th class="l">kind</th><th>total</th><th>per s</th></tr></thead><tbody>${rows}</tbody></table>`;
}

/** Pure: everything that changes, i.e. what /api/status.html answers and the page swaps in. */
export function renderContent(doc: StatusDoc): string {
  const ifaces = doc.interfaces.map((i) => `${i.name} (${i.mode}${i.linked ? '' : ', NOT linked'})`).join(', ') || 'none';
  const meta = `file ${doc.file} \u00b7 interfaces ${ifaces} \u00b7 connection table ${doc.connections.entries} / ${doc.connections.max} \u00b7 reloads ${doc.reloads.ok} ok, ${doc.reloads.failed} failed \u00b7 updated ${doc.time}`;
  const sparks = doc.services.reduce((n, s) => n + s.realservers.length, 0) <= SPARK_MAX_REALSERVERS;
  const services = doc.services.length ? doc.services.map((s) => serviceTable(doc, s, sparks)).join('') : '<p>no virtual services</p>';
  return `${renderSummary(doc)}<div id="meta">${esc(meta)}</div><div id="services">${services}</div>${countersTable(doc)}`;
}

const STYLE = `
  body { font: 13px/1.35 system-ui, sans-serif; margin: 12px 18px; color: #222; background: #fafafa; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  h2 { font-size: 15px; }
  #summary { font-size: 14px; margin: 4px 0 6px; }
  #summary .part { padding: 1px 4px; }
  .bad { background: #b00; color: #fff; font-weight: 700; }
  .mark { font-weight: 900; }
  #meta { color: #555; margin-bottom: 10px; }
  #error { color: #fff; background: #b00; padding: 4px 8px; margin-bottom: 8px; }
  #error:empty { display: none; }
  table { border-collapse: collapse; margin-bottom: 16px; min-width: 900px; background: #fff; }
  th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
  th { background: #e8e8f0; }
  td.l, th.l { text-align: left; }
  tr.svc td { background: #dde6f5; font-weight: 600; }
  tr.svc.degraded td.health { background: #ffe08a; }
  tr.up td.health { background: #bfeebf; }
  tr.down td.health { background: #f6b3b3; font-weight: 700; }
  tr.unchecked td.health { background: #eee; }
  tr.sorry td { background: #fff3c4; }
  tr.alldown td { background: #f6b3b3; }
  tr.drop td { background: #f6b3b3; font-weight: 700; }
  td.hist { color: #2a5db0; line-height: 0; padding: 1px 4px; }
  .small { color: #666; font-size: 11px; }
`;

/** Swaps in a fresh server rendering every second; the document itself never reloads. */
const SCRIPT = `
'use strict';
function poll() {
  fetch('api/status.html', { cache: 'no-store' }).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.text();
  }).then(function (html) {
    document.getElementById('error').textContent = '';
    document.getElementById('content').innerHTML = html;
    document.body.setAttribute('data-polls', String(Number(document.body.getAttribute('data-polls') || 0) + 1));
  }).catch(function (e) {
    document.getElementById('error').textContent = '! cannot reach lvs-xdp run: ' + e.message + ' (the figures below are from before)';
  }).finally(function () { setTimeout(poll, 1000); });
}
document.body.setAttribute('data-live', '1');
setTimeout(poll, 1000);
`;

/** Pure: the whole page for `doc`. */
export function renderPage(doc: StatusDoc): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lvs-xdp status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style>
</head>
<body data-polls="0">
<h1>lvs-xdp director</h1>
<noscript><p class="small">JavaScript is off: this page shows the state when it was loaded; reload it for a fresh one.</p></noscript>
<div id="error" role="alert"></div>
<main id="content">${renderContent(doc)}</main>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
