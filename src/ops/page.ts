/**
 * The status page served at `/` by `lvs-xdp run`: one self-contained HTML document (no external
 * resources) in the manner of HAProxy's stats page: a table per virtual service with a row per
 * realserver (weight configured and in force, health, check result, rates, connections,
 * totals). It polls /api/status every second and redraws; the document never reloads.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lvs-xdp status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 13px/1.35 system-ui, sans-serif; margin: 12px 18px; color: #222; background: #fafafa; }
  h1 { font-size: 18px; margin: 0 0 4px; }
  #meta { color: #555; margin-bottom: 10px; }
  #error { color: #fff; background: #b00; padding: 4px 8px; display: none; margin-bottom: 8px; }
  table { border-collapse: collapse; margin-bottom: 16px; min-width: 900px; background: #fff; }
  th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; white-space: nowrap; }
  th { background: #e8e8f0; }
  td.l, th.l { text-align: left; }
  tr.svc td { background: #dde6f5; font-weight: 600; }
  tr.up td.health { background: #bfeebf; }
  tr.down td.health { background: #f6b3b3; }
  tr.unchecked td.health { background: #eee; }
  tr.sorry td { background: #fff3c4; }
  tr.alldown td { background: #f6b3b3; }
  .small { color: #666; font-size: 11px; }
  #counters td { text-align: right; }
  #counters td.l { text-align: left; }
</style>
</head>
<body>
<h1>lvs-xdp director</h1>
<div id="meta">loading...</div>
<div id="error"></div>
<div id="services"></div>
<h2 style="font-size:15px">Data plane counters (non-zero)</h2>
<table id="counters"><thead><tr><th class="l">counter</th><th class="l">kind</th><th>total</th><th>per s</th></tr></thead><tbody></tbody></table>
<script>
'use strict';
function esc(s) { return String(s).replace(/[&<>"']/g, function (c) { return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]; }); }
function human(v) {
  v = Number(v);
  if (v < 10000) return String(Math.round(v));
  var u = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']];
  for (var i = 0; i < u.length; i++) if (v >= u[i][0]) return (v / u[i][0]).toFixed(v / u[i][0] < 100 ? 1 : 0) + u[i][1];
  return String(v);
}
function ago(since, now) {
  var s = Math.max(0, Math.round((Date.parse(now) - Date.parse(since)) / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor((s % 86400) / 3600) + 'h';
}
function cell(v, cls, attr) { return '<td' + (cls ? ' class="' + cls + '"' : '') + (attr || '') + '>' + esc(v) + '</td>'; }
function render(d) {
  document.getElementById('meta').textContent = 'file ' + d.file + ' \u00b7 interfaces ' +
    (d.interfaces.map(function (i) { return i.name + ' (' + i.mode + (i.linked ? '' : ', NOT linked') + ')'; }).join(', ') || 'none') +
    ' \u00b7 connection table ' + d.connections.entries + ' / ' + d.connections.max +
    ' \u00b7 reloads ' + d.reloads.ok + ' ok, ' + d.reloads.failed + ' failed \u00b7 updated ' + d.time;
  var html = '';
  d.services.forEach(function (s) {
    html += '<table class="service" data-service="' + esc(s.id) + '"><thead><tr>' +
      '<th class="l">' + esc(s.id) + '</th><th>weight</th><th>in force</th><th class="l">health</th><th class="l">last check</th>' +
      '<th>pps</th><th>bit/s</th><th>conn/s</th><th>active</th><th>inact</th><th>packets</th><th>bytes</th><th>conns</th></tr></thead><tbody>';
    html += '<tr class="svc' + (s.allDown ? ' alldown' : '') + '">' + cell(s.scheduler + (s.allDown ? ' \u00b7 ALL DOWN (' + s.policy + ')' : ''), 'l') +
      cell('') + cell('') + cell(s.allDown ? 'all down: ' + s.policy : '', 'l health') + cell('', 'l') +
      cell(human(s.rates.pps)) + cell(human(s.rates.bps * 8)) + cell(human(s.rates.cps)) + cell('') + cell('') +
      cell(human(s.packets)) + cell(human(s.bytes)) + cell(human(s.conns)) + '</tr>';
    s.realservers.forEach(function (r) {
      var cls = r.sorry ? 'sorry' : r.health;
      html += '<tr class="rs ' + cls + '" data-realserver="' + esc(r.address) + '" data-health="' + esc(r.health) + '"' + (r.drained ? ' data-drained="1" title="drained by hand since ' + esc(r.drained.since) + '"' : '') + (r.unresolved ? ' data-unresolved="1" title="unresolved since ' + esc(r.unresolved.since) + ': ' + esc(r.unresolved.problem) + '"' : '') + '>' +
        cell((r.sorry ? 'sorry ' : '') + r.address + ' (' + r.method + ')', 'l') +
        cell(r.weight) + cell((r.effectiveWeight === null ? 'removed' : r.effectiveWeight) + (r.drained ? ' DRAINED' : '') + (r.unresolved ? ' UNRESOLVED' : ''), 'inforce') +
        '<td class="l health"' + (r.since ? ' title="since ' + esc(r.since) + '"' : '') + '>' + esc(r.health.toUpperCase() + (r.since ? ' ' + ago(r.since, d.time) : '')) + '</td>' +
        '<td class="l small">' + esc(r.check || '') + (r.last ? '<br>' + esc(r.last) : '') + '</td>' +
        cell(human(r.rates.pps)) + cell(human(r.rates.bps * 8)) + cell(human(r.rates.cps)) + cell(r.active) + cell(r.inactive) +
        cell(human(r.packets)) + cell(human(r.bytes)) + cell(human(r.conns)) + '</tr>';
    });
    html += '</tbody></table>';
  });
  if (!d.services.length) html = '<p>no virtual services</p>';
  document.getElementById('services').innerHTML = html;
  var rows = '';
  Object.keys(d.counters).forEach(function (k) {
    var c = d.counters[k];
    rows += '<tr data-counter="' + esc(k) + '">' + cell(k, 'l') + cell(c.kind, 'l') + cell(c.value) + cell(human(c.rate)) + '</tr>';
  });
  document.querySelector('#counters tbody').innerHTML = rows;
}
function poll() {
  fetch('api/status', { cache: 'no-store' }).then(function (r) {
    if (!r.ok) throw new Error('HTTP ' + r.status);
    return r.json();
  }).then(function (d) {
    document.getElementById('error').style.display = 'none';
    render(d);
    document.body.setAttribute('data-polls', String(Number(document.body.getAttribute('data-polls') || 0) + 1));
  }).catch(function (e) {
    var el = document.getElementById('error');
    el.textContent = 'cannot reach lvs-xdp run: ' + e.message;
    el.style.display = 'block';
  }).finally(function () { setTimeout(poll, 1000); });
}
poll();
</script>
</body>
</html>
`;
