// `lvs-xdp run` end to end in a namespace lab (src/lab): one client, a director started by `run`
// itself (native XDP), three LVS-DR realservers. Two services on VIPs that are routed to the
// director (it does not hold them, so that forwarding-path checks can leave toward a realserver):
//   S1 198.51.100.210:80  rs1 rs2 rs3, HTTP checks via the forwarding path, all-down: keep-last
//   S2 198.51.100.211:80  rs1 rs2,     HTTP checks direct, all-down: sorry-server rs3
// Steps (in order, one lab): a stopped server leaves the tables within a generous bound of
// interval x fall and no request fails afterwards; started again it comes back after rise; the
// forwarding-path check takes out a realserver whose VIP was removed although its own address
// answers, also with the VIP local on the director (the probe then builds its frames itself); every realserver down gives keep-last (S1) and the sorry server (S2); SIGHUP applies
// only the edited difference and a bad file keeps the running config; /metrics equals
// Director.readStats; the status page in headless Chromium shows the services, realservers and
// health and follows a change live; stopping run leaves the data plane forwarding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, checkIn, runIn, waitFor, sleep } from '../../src/lab/index.js';
import { startRun, startRunListening, NEEDS_ROOT, seriesLabels } from './helpers.js';
import { Director } from '../../src/director/director.js';
import { parseExposition } from '../../src/ops/metrics.js';
import { COUNTERS } from '../../src/abi/generated.js';

const CHROMIUM = '/usr/bin/chromium';
const PROMTOOL = '/usr/bin/promtool';
const V1 = '198.51.100.210';
const V2 = '198.51.100.211';
const S1 = `tcp ${V1}:80`;
const S2 = `tcp ${V2}:80`;
const INTERVAL = 0.5;
const FALL = 2;
const RISE = 2;
/** Generous bound for a state change to reach the tables (interval x fall is 1 s; 2 noisy cores). */
const BOUND_MS = 30_000;

let lab: Lab;
let run: ChildProcess | undefined;
const logs: Record<string, unknown>[] = [];
let file = '';

function config(opts: { s2weight1?: number; s1extra?: string } = {}): string {
  const [r1, r2, r3] = lab.realservers;
  return `# written by test/e2e/ops.test.ts
services:
  - vip: ${V1}
    port: 80
    scheduler: mh
    table-size: 251
    health-check: { type: http, path: /, interval: ${INTERVAL}, timeout: 0.4, rise: ${RISE}, fall: ${FALL}, via: forwarding, all-down: keep-last }
    realservers:
      - { address: ${r1!.v4} }
      - { address: ${r2!.v4} }
      - { address: ${r3!.v4} }
  - vip: ${V2}
    port: 80
    scheduler: mh
    table-size: 251
    health-check:
      type: http
      interval: ${INTERVAL}
      timeout: 0.4
      rise: ${RISE}
      fall: ${FALL}
      sorry-server: { address: ${r3!.v4} }
    realservers:
      - { address: ${r1!.v4}, weight: ${opts.s2weight1 ?? 1} }
      - { address: ${r2!.v4} }
${opts.s1extra ?? ''}`;
}

function paths(): { pinDir: string; stateDir: string } {
  const ns = lab.director.ns;
  return { pinDir: `/sys/fs/bpf/lvs-xdp@${ns}`, stateDir: `/run/lvs-xdp/lvs-xdp@${ns}` };
}

/** The tables as the kernel holds them, from a fresh Director (the test's own process). */
function tables(): Map<string, (string | null)[]> {
  const d = Director.open(paths());
  try {
    return d.readTables();
  } finally {
    d.close();
  }
}

function owners(service: string): Set<string> {
  return new Set((tables().get(service) ?? []).filter((x): x is string => x !== null));
}

function findLog(pred: (l: Record<string, unknown>) => boolean, from = 0): Record<string, unknown> | undefined {
  return logs.slice(from).find(pred);
}

function waitLog(what: string, pred: (l: Record<string, unknown>) => boolean, from = 0): Promise<Record<string, unknown>> {
  return waitFor(what, () => findLog(pred, from), BOUND_MS, 50);
}

async function stopServer(role: string): Promise<void> {
  const r = lab.realservers.find((x) => x.role === role)!;
  const pids = execFileSync('ip', ['netns', 'pids', r.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) process.kill(p, 'SIGKILL');
  await waitFor(`${role}'s server gone`, () => execFileSync('ip', ['netns', 'pids', r.ns], { encoding: 'utf8' }).trim() === '', 10_000);
}

async function burst(vip: string, count = 8): Promise<{ failed: number; counts: Record<string, number>; errors: string[] }> {
  return lab.burst({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, count, concurrency: 4, timeoutMs: 5000 });
}

/** promtool check metrics says nothing about `text` (exit 0, no lint). */
function promtoolClean(text: string, what: string): void {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', what);
  assert.equal(r.status, 0, what);
}

async function curlIn(ns: string, url: string): Promise<{ code: number; body: string }> {
  const r = await runIn(ns, 'curl', ['-sS', '--max-time', '5', url]);
  return { code: r.code, body: r.stdout };
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('ops'), clients: 1, clientAddresses: 4, realservers: 3 });
  try {
    const c = lab.clients[0]!;
    for (const v of [V1, V2]) await checkIn(c.ns, 'ip', ['route', 'add', `${v}/32`, 'via', lab.director.v4]);
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [V1, V2])));
    await lab.startServers({ httpPort: 80 });
    file = join(lab.dir, 'ops.yaml');
    writeFileSync(file, config());
    // LVS_XDP_LISTEN: the environment form of --listen.
    run = await startRunListening(lab, ['-f', file, '-i', 'eth0', '--mode', 'native', '--log-format', 'json', '--resync', '5'], { LVS_XDP_LISTEN: '127.0.0.1:9469' }, logs, BOUND_MS);
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  run?.kill('SIGKILL');
  lab?.destroy();
});

test('ops: run attaches, applies the file and every realserver serves', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  assert.ok(findLog((l) => l.event === 'attached' && l.interface === 'eth0'), JSON.stringify(logs.slice(0, 5)));
  assert.ok(findLog((l) => l.event === 'applied' && l.reason === 'start'));
  const r = await burst(V1, 12);
  assert.equal(r.failed, 0, r.errors.join('; '));
  assert.deepEqual(Object.keys(r.counts).sort(), ['rs1', 'rs2', 'rs3']);
  // Every check passes: each realserver is up (a one-off slow answer may not take it down).
  const r2 = await curlIn(lab.director.ns, 'http://127.0.0.1:9469/api/status');
  const doc = JSON.parse(r2.body) as { services: { realservers: { health: string }[] }[] };
  assert.deepEqual(doc.services.map((x) => x.realservers.map((y) => y.health)), [['up', 'up', 'up'], ['up', 'up']]);
});

test('ops: a stopped server leaves the tables (bound: interval x fall + slack) and no request fails afterwards; back after rise', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const [rs1] = lab.realservers;
  const mark = logs.length;
  const t0 = Date.now();
  await stopServer('rs1');
  await waitLog('rs1 down in S1', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs1!.v4 && l.to === 'down', mark);
  await waitFor('rs1 out of the S1 and S2 tables', () => !owners(S1).has(rs1!.v4) && !owners(S2).has(rs1!.v4), BOUND_MS);
  const took = Date.now() - t0;
  assert.ok(took < BOUND_MS, `took ${took} ms`);
  for (const vip of [V1, V2]) {
    const r = await burst(vip, 10);
    assert.equal(r.failed, 0, `${vip}: ${r.errors.join('; ')}`);
    assert.equal(r.counts.rs1, undefined);
  }
  // finish (default on-down): weight 0, the slot stays for flows that were on it.
  const d = Director.open(paths());
  try {
    const rs = d.config.services.find((s) => s.vip === V1)!.realservers.find((x) => x.address === rs1!.v4);
    assert.equal(rs?.weight, 0);
  } finally {
    d.close();
  }
  const mark2 = logs.length;
  await lab.startServers({ httpPort: 80 }, [rs1!]);
  const up = await waitLog('rs1 up again', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs1!.v4 && l.to === 'up', mark2);
  assert.ok(up);
  await waitFor('rs1 back in the S1 table', () => owners(S1).has(rs1!.v4), BOUND_MS);
  const r = await burst(V1, 12);
  assert.equal(r.failed, 0, r.errors.join('; '));
  assert.ok((r.counts.rs1 ?? 0) > 0, JSON.stringify(r.counts));
});

test('ops: the forwarding-path check takes out a realserver whose VIP is missing although its own address answers', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const rs3 = lab.realservers[2]!;
  const mark = logs.length;
  await checkIn(rs3.ns, 'ip', ['addr', 'del', `${V1}/32`, 'dev', 'lo']);
  await waitLog('rs3 down in S1', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs3.v4 && l.to === 'down', mark);
  await waitFor('rs3 out of the S1 table', () => !owners(S1).has(rs3.v4), BOUND_MS);
  // Its own address still answers: a direct check would have kept it.
  const direct = await curlIn(lab.director.ns, `http://${rs3.v4}/`);
  assert.equal(direct.code, 0);
  assert.equal(direct.body.trim(), 'rs3');
  const r = await burst(V1, 10);
  assert.equal(r.failed, 0, r.errors.join('; '));
  assert.equal(r.counts.rs3, undefined);
  // S2 (direct checks, VIP .211 still there) keeps rs3 out of it: rs3 is only S2's sorry server.
  assert.ok(!owners(S2).has(rs3.v4));
});

test('ops: every realserver down: S1 keeps the last set, S2 sends to its sorry server', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const [rs1, rs2, rs3] = lab.realservers;
  const mark = logs.length;
  await stopServer('rs1');
  await waitLog('rs1 down', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs1!.v4 && l.to === 'down', mark);
  await stopServer('rs2');
  await waitLog('S1 all down', (l) => l.event === 'all-down' && l.service === S1, mark);
  await waitLog('S2 all down', (l) => l.event === 'all-down' && l.service === S2, mark);
  const s1 = findLog((l) => l.event === 'all-down' && l.service === S1, mark)!;
  assert.equal(s1.policy, 'keep-last');
  assert.deepEqual(s1.kept, [rs2!.v4]);
  await waitFor('S1 table = the last one up (rs2)', () => {
    const o = owners(S1);
    return o.size === 1 && o.has(rs2!.v4);
  }, BOUND_MS);
  await waitFor('S2 table = the sorry server', () => {
    const o = owners(S2);
    return o.size === 1 && o.has(rs3!.v4);
  }, BOUND_MS);
  const r = await burst(V2, 10);
  assert.equal(r.failed, 0, r.errors.join('; '));
  assert.deepEqual(Object.keys(r.counts), ['rs3']);
  // Everything back: servers, rs3's VIP.
  const mark2 = logs.length;
  await lab.startServers({ httpPort: 80 }, [rs1!, rs2!]);
  await checkIn(rs3!.ns, 'ip', ['addr', 'add', `${V1}/32`, 'dev', 'lo']);
  await waitLog('S2 recovered', (l) => l.event === 'service-recovered' && l.service === S2, mark2);
  await waitFor('every realserver back in S1', () => owners(S1).size === 3, BOUND_MS);
  await waitFor('S2 without the sorry server', () => {
    const o = owners(S2);
    return o.size === 2 && !o.has(rs3!.v4);
  }, BOUND_MS);
});

test('ops: SIGHUP applies only the edited difference; a bad file is logged and the running config kept', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs1 = lab.realservers[0]!;
  const before1 = tables().get(S1);
  const mark = logs.length;
  writeFileSync(file, config({ s2weight1: 3 }));
  run!.kill('SIGHUP');
  await waitLog('reloaded', (l) => l.event === 'reloaded', mark);
  const applied = findLog((l) => l.event === 'applied' && l.reason === 'reload', mark);
  assert.ok(applied, 'an apply on reload');
  assert.deepEqual(applied.changes, [
    { kind: 'service-edited', service: S2, fields: [] },
    { kind: 'realserver-edited', service: S2, realserver: rs1.v4, fields: [{ field: 'weight', from: 1, to: 3 }] },
  ]);
  assert.deepEqual(tables().get(S1), before1, 'S1 untouched');
  const d = Director.open(paths());
  try {
    assert.equal(d.config.services.find((s) => s.vip === V2)!.realservers.find((x) => x.address === rs1.v4)!.weight, 3);
  } finally {
    d.close();
  }
  // A bad file: logged, nothing changes, run goes on.
  const mark2 = logs.length;
  writeFileSync(file, `${config({ s2weight1: 5 })}\n  - vip: not-an-address\n    port: 80\n`);
  run!.kill('SIGHUP');
  const failed = await waitLog('reload failed', (l) => l.event === 'reload-failed', mark2);
  assert.match(String(failed.error), /not-an-address|vip/);
  const d2 = Director.open(paths());
  try {
    assert.equal(d2.config.services.find((s) => s.vip === V2)!.realservers.find((x) => x.address === rs1.v4)!.weight, 3);
  } finally {
    d2.close();
  }
  writeFileSync(file, config({ s2weight1: 3 }));
});

test('ops: /metrics values equal Director.readStats (services, realservers, named counters)', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  await burst(V1, 10);
  await burst(V2, 10);
  await sleep(300);
  const metrics = async (): Promise<Map<string, number>> => {
    const r = await curlIn(lab.director.ns, 'http://127.0.0.1:9469/metrics');
    assert.equal(r.code, 0);
    return parseExposition(r.body);
  };
  // /metrics, readStats, /metrics: every counter read directly lies between the two scrapes (the
  // health checks' answers keep pass_not_vip moving); the services' numbers are quiet: equal.
  const m1 = await metrics();
  const d = Director.open(paths());
  let s: ReturnType<Director['readStats']>;
  try {
    s = d.readStats();
  } finally {
    d.close();
  }
  const m2 = await metrics();
  const m = m2;
  const same = (name: string, v: bigint | number): void => {
    assert.equal(m1.get(name), Number(v), name);
    assert.equal(m2.get(name), Number(v), name);
  };
  for (const svc of s.services) {
    same(`lvs_xdp_service_packets_total${seriesLabels(svc.id)}`, svc.packets);
    same(`lvs_xdp_service_bytes_total${seriesLabels(svc.id)}`, svc.bytes);
    same(`lvs_xdp_service_connections_total${seriesLabels(svc.id)}`, svc.conns);
    assert.ok(svc.packets > 0n);
    for (const r of svc.realservers) {
      const l = seriesLabels(svc.id, r.address);
      same(`lvs_xdp_realserver_packets_total${l}`, r.packets);
      same(`lvs_xdp_realserver_bytes_total${l}`, r.bytes);
      same(`lvs_xdp_realserver_connections_total${l}`, r.conns);
      assert.equal(m.get(`lvs_xdp_realserver_weight${l}`), r.weight, l);
      assert.equal(m.get(`lvs_xdp_realserver_up${l}`), 1, l);
    }
  }
  for (const c of COUNTERS) {
    const name = c.name.toLowerCase();
    const key = `lvs_xdp_datapath_events_total{counter="${name}",kind="${c.kind}"}`;
    const v = Number(s.counters[name]);
    assert.ok(m1.get(key)! <= v && v <= m2.get(key)!, `${name}: ${m1.get(key)} <= ${v} <= ${m2.get(key)}`);
  }
  assert.ok(Number(s.counters.fwd_dr) > 0);
  assert.equal(m.get('lvs_xdp_conntrack_max_entries'), s.connections.max);
  assert.ok(m.has('lvs_xdp_interface_info{interface="eth0",mode="native",linked="1"}'), [...m.keys()].filter((k) => k.includes('interface')).join(' '));
  assert.equal(m.get(`lvs_xdp_service_all_down${seriesLabels(S1)}`), 0);
  assert.ok(m.get(`lvs_xdp_realserver_health_since_timestamp_seconds${seriesLabels(S1, lab.realservers[0]!.v4)}`)! * 1000 <= Date.now());
  assert.ok(m.get('lvs_xdp_config_last_reload_success_timestamp_seconds')! * 1000 <= Date.now());
  assert.equal(m.get('lvs_xdp_config_last_reload_successful'), 0, 'the last reload (a bad file, above) failed');
});

test('ops: promtool check metrics is clean on a live scrape of run and on lvs-xdp metrics (stdout and --textfile)', { skip: NEEDS_ROOT || (!existsSync(PROMTOOL) && 'needs promtool (scripts/setup-test.sh installs Debian\'s prometheus)'), timeout: 60_000 }, async () => {
  const scrape = await curlIn(lab.director.ns, 'http://127.0.0.1:9469/metrics');
  assert.equal(scrape.code, 0);
  promtoolClean(scrape.body, 'live scrape');
  assert.match(scrape.body, /^lvs_xdp_build_info\{version="[^"]+",abi="\d+"\} 1$/m);
  assert.match(scrape.body, /^lvs_xdp_nodejs_heap_size_used_bytes /m, 'process metrics in run');
  // One shot, beside a run: the same series names from the pinned maps, health from the run.
  const one = await lab.lvs(['metrics']);
  assert.equal(one.code, 0, one.stderr);
  promtoolClean(one.stdout, 'lvs-xdp metrics');
  const live = parseExposition(scrape.body);
  const shot = parseExposition(one.stdout);
  const rs1 = seriesLabels(S1, lab.realservers[0]!.v4);
  for (const k of [`lvs_xdp_realserver_up${rs1}`, `lvs_xdp_realserver_configured_weight${rs1}`, `lvs_xdp_realserver_weight${rs1}`, 'lvs_xdp_conntrack_max_entries']) {
    assert.equal(shot.get(k), live.get(k), k);
  }
  assert.ok(shot.get(`lvs_xdp_realserver_packets_total${rs1}`)! >= live.get(`lvs_xdp_realserver_packets_total${rs1}`)!);
  assert.doesNotMatch(one.stdout, /lvs_xdp_process_|lvs_xdp_nodejs_|lvs_xdp_config_reloads_total/, 'no process or reload series without run\'s own process');
  const textfile = join(lab.dir, 'lvs_xdp.prom');
  const w = await lab.lvs(['metrics', '--textfile', textfile]);
  assert.equal(w.code, 0, w.stderr);
  assert.equal(w.stdout, '');
  const text = readFileSync(textfile, 'utf8');
  promtoolClean(text, 'textfile');
  assert.deepEqual([...parseExposition(text).keys()].sort(), [...shot.keys()].sort());
  assert.deepEqual(readdirSync(lab.dir).filter((f) => f.includes('lvs_xdp.prom') && f !== 'lvs_xdp.prom'), [], 'no temporary file left');
});

test('ops: the status page in headless Chromium shows services, realservers and health, and follows a change live', { skip: NEEDS_ROOT || (!existsSync(CHROMIUM) && 'needs Debian\'s chromium (scripts/setup-test.sh installs it)'), timeout: 180_000 }, async () => {
  const { chromium } = await import('playwright-core');
  // Chromium runs in the director's namespace, where run listens on loopback.
  const wrapper = join(lab.dir, 'chromium-in-director');
  writeFileSync(wrapper, `#!/bin/sh\nexec nsenter --net=/run/netns/${lab.director.ns} ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const browser = await chromium.launch({ executablePath: wrapper, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    // JavaScript off: the server's page is complete (every row, the summary, the sparklines) and
    // the failed reload above (a bad file) stands out with its text marker.
    const off = await browser.newContext({ javaScriptEnabled: false });
    const still = await off.newPage();
    await still.goto('http://127.0.0.1:9469/');
    assert.equal(await still.getAttribute('body', 'data-live'), null, 'no script ran');
    const offRows = await still.$$eval(`table[data-service="${S1}"] tr.rs`, (trs) => trs.map((tr) => [tr.getAttribute('data-realserver'), tr.getAttribute('data-health'), tr.querySelectorAll('td.hist svg.spark').length]));
    assert.deepEqual(offRows, lab.realservers.map((r) => [r.v4, 'up', 2]));
    assert.equal(await still.locator(`table[data-service="${S2}"] tr.rs`).count(), 2);
    assert.match(await still.textContent('#summary') ?? '', /services: 2 up, 0 degraded, 0 down · realservers down: 0 · (! )?drops: [\d.]+[KMGT]?\/s · ! last reload FAILED \S+ ago: /);
    assert.equal(await still.getAttribute('#summary [data-reload]', 'class'), 'part bad');
    assert.doesNotMatch(await still.textContent('body') ?? '', /loading/i);
    await off.close();
    const page = await browser.newPage();
    await page.goto('http://127.0.0.1:9469/');
    assert.equal(await page.getAttribute('body', 'data-live'), '1');
    const rows = async (svc: string) => page.$$eval(`table[data-service="${svc}"] tr.rs`, (trs) => trs.map((tr) => ({
      address: tr.getAttribute('data-realserver'), health: tr.getAttribute('data-health'), inforce: tr.querySelector('td.inforce')?.textContent,
    })));
    const s1 = await rows(S1);
    assert.deepEqual(s1.map((r) => r.address), lab.realservers.map((r) => r.v4));
    assert.ok(s1.every((r) => r.health === 'up'), JSON.stringify(s1));
    assert.match(await page.textContent('body') ?? '', /eth0 \(native\)/);
    // Traffic shows as rates; then rs2 goes down and the page follows without a reload.
    const polls0 = Number(await page.getAttribute('body', 'data-polls'));
    const traffic = burst(V1, 30);
    await page.waitForFunction((svc) => {
      const td = document.querySelectorAll(`table[data-service="${svc}"] tr.svc td`)[5];
      return td !== undefined && td.textContent !== '0';
    }, S1, { timeout: 30_000 });
    await traffic;
    await stopServer('rs2');
    await page.waitForFunction(([svc, addr]) => document.querySelector(`table[data-service="${svc}"] tr[data-realserver="${addr}"]`)?.getAttribute('data-health') === 'down',
      [S1, lab.realservers[1]!.v4], { timeout: BOUND_MS });
    const after = await rows(S1);
    assert.equal(after.find((r) => r.address === lab.realservers[1]!.v4)?.inforce, '0');
    assert.ok(Number(await page.getAttribute('body', 'data-polls')) > polls0);
    // The summary follows: rs2 is down in S1 and in S2, both degraded, marked in text as well.
    await page.waitForFunction(() => document.querySelector('#summary [data-realservers-down]')?.getAttribute('data-realservers-down') === '2', undefined, { timeout: BOUND_MS });
    assert.match(await page.textContent('#summary') ?? '', /! services: 0 up, 2 degraded, 0 down · ! realservers down: 2/);
    assert.match(await page.textContent(`table[data-service="${S1}"] tr[data-realserver="${lab.realservers[1]!.v4}"] td.health`) ?? '', /^! DOWN /);
    // The burst above is in rs1's sparkline (a sample every 2 s): a line with a peak above the baseline.
    await page.waitForFunction((svc) => [...document.querySelectorAll(`table[data-service="${svc}"] tr.rs td.hist svg:first-child polyline`)]
      .some((p) => (p.getAttribute('points') ?? '').split(' ').some((xy) => Number(xy.split(',')[1]) < 16)), S1, { timeout: 20_000 });
    await page.screenshot({ path: join(lab.dir, 'status-page.png'), fullPage: true });
  } finally {
    await browser.close();
  }
  await lab.startServers({ httpPort: 80 }, [lab.realservers[1]!]);
  await waitFor('rs2 back in S1', () => owners(S1).has(lab.realservers[1]!.v4), BOUND_MS);
});

test('ops: lvs-xdp top shows rates and the health that run publishes, sorted and filtered, without colour on a pipe', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const r = await lab.lvs(['top', '-n', '1', '-i', '0.3']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /health: from run \(pid \d+\)/);
  assert.match(r.stdout, new RegExp(`${S1.replace(/\./g, '\\.')}`));
  assert.match(r.stdout, /198\.51\.100\.101:80\s+1\s+up/);
  assert.doesNotMatch(r.stdout, /\x1b/);
  const one = await lab.lvs(['top', '-n', '1', '-i', '0.3', '--service', `${V2}:80`, '--sort', 'name', '--reverse']);
  assert.equal(one.code, 0, one.stderr);
  assert.doesNotMatch(one.stdout, new RegExp(V1.replace(/\./g, '\\.')));
  const reals = [...one.stdout.matchAll(/^ {2}(\S+):80 /gm)].map((m) => m[1]);
  assert.deepEqual(reals, [lab.realservers[1]!.v4, lab.realservers[0]!.v4], one.stdout);
  const bad = await lab.lvs(['top', '-n', '1', '--sort', 'nonsense']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--sort "nonsense": one of name, weight/);
});

test('ops: with the VIP local on the director (one-armed DR as usual) the forwarding-path check still works', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  // The local table would keep a kernel socket's probe at home and the realserver's answer from
  // the VIP is a martian here: the probe builds the frame itself and reads the answer off eth0.
  const rs3 = lab.realservers[2]!;
  await checkIn(lab.director.ns, 'ip', ['addr', 'add', `${V1}/32`, 'dev', 'eth0']);
  try {
    const mark = logs.length;
    await sleep(4000); // 8 intervals of checks through the raw path
    assert.equal(findLog((l) => l.event === 'health' && l.service === S1 && l.to === 'down', mark), undefined,
      JSON.stringify(findLog((l) => l.event === 'health', mark)));
    assert.equal(owners(S1).size, 3);
    await checkIn(rs3.ns, 'ip', ['addr', 'del', `${V1}/32`, 'dev', 'lo']);
    const down = await waitLog('rs3 down in S1 with the VIP local', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs3.v4 && l.to === 'down', mark);
    assert.match(String(down.detail), new RegExp(`no SYN-ACK from ${V1.replace(/\./g, '\\.')}:80 via ${rs3.v4.replace(/\./g, '\\.')} \\([0-9a-f:]{17}\\) on eth0`));
    await waitFor('rs3 out of the S1 table', () => !owners(S1).has(rs3.v4), BOUND_MS);
    const mark2 = logs.length;
    await checkIn(rs3.ns, 'ip', ['addr', 'add', `${V1}/32`, 'dev', 'lo']);
    const up = await waitLog('rs3 up again', (l) => l.event === 'health' && l.service === S1 && l.realserver === rs3.v4 && l.to === 'up', mark2);
    assert.match(String(up.detail), /tcp via .* on eth0: SYN-ACK from .*; http \/: status 200/);
    await waitFor('rs3 back in the S1 table', () => owners(S1).has(rs3.v4), BOUND_MS);
    const r = await burst(V1, 12);
    assert.equal(r.failed, 0, r.errors.join('; '));
  } finally {
    await runIn(lab.director.ns, 'ip', ['addr', 'del', `${V1}/32`, 'dev', 'eth0']);
  }
});

test('ops: SIGTERM stops run; the data plane keeps forwarding with the last configuration', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const mark = logs.length;
  run!.kill('SIGTERM');
  await waitLog('stopped', (l) => l.event === 'stopped', mark);
  await waitFor('run exited', () => run!.exitCode !== null, 20_000);
  assert.equal(run!.exitCode, 0);
  const r = await burst(V1, 10);
  assert.equal(r.failed, 0, r.errors.join('; '));
  // Its policy routing for the forwarding-path checks is gone.
  const rules = await checkIn(lab.director.ns, 'ip', ['rule', 'show']);
  assert.doesNotMatch(rules, /sport 61/);
  assert.equal(Director.exists(paths()), true);
  // Metrics without run: the data plane's series, no health from a stopped run.
  const m = await lab.lvs(['metrics']);
  assert.equal(m.code, 0, m.stderr);
  const shot = parseExposition(m.stdout);
  assert.ok(shot.get(`lvs_xdp_realserver_packets_total${seriesLabels(S1, lab.realservers[0]!.v4)}`)! > 0);
  assert.equal([...shot.keys()].some((k) => k.startsWith('lvs_xdp_realserver_up')), false);
  if (existsSync(PROMTOOL)) promtoolClean(m.stdout, 'lvs-xdp metrics without run');
});

test('ops: a SIGHUP sent the moment run says "listening" reloads, a SIGTERM stops it cleanly (neither lost nor fatal)', { skip: NEEDS_ROOT, timeout: 90_000 }, async () => {
  if (run && run.exitCode === null && run.signalCode === null) {
    run.kill('SIGTERM');
    await new Promise((r) => run!.once('exit', r));
  }
  for (let i = 0; i < 3; i++) {
    const own: Record<string, unknown>[] = [];
    const started = startRun(lab, ['-f', file, '--log-format', 'json', '--listen', '127.0.0.1:9470'], {}, own);
    const exited = new Promise((r) => started.child.once('exit', r));
    try {
      await waitFor('listening', () => own.find((l) => l.event === 'listening' || l.event === 'exited'), BOUND_MS, 1);
      assert.equal(own.find((l) => l.event === 'exited'), undefined, started.stderr());
      started.child.kill('SIGHUP');
      await waitFor(`reloaded (try ${i + 1})`, () => own.find((l) => l.event === 'reloaded' || l.event === 'exited'), 10_000, 20);
      assert.equal(own.find((l) => l.event === 'exited'), undefined, started.stderr());
    } finally {
      started.child.kill('SIGKILL');
      await exited;
    }
  }
  // A SIGTERM at the same moment stops it cleanly (its log says so, exit 0), not Node's default.
  const own: Record<string, unknown>[] = [];
  const started = startRun(lab, ['-f', file, '--log-format', 'json', '--listen', '127.0.0.1:9470'], {}, own);
  const exited = new Promise<number | null>((r) => started.child.once('exit', (code) => r(code)));
  await waitFor('listening', () => own.find((l) => l.event === 'listening' || l.event === 'exited'), BOUND_MS, 1);
  started.child.kill('SIGTERM');
  assert.equal(await exited, 0, started.stderr());
  await waitFor('stopped', () => own.some((l) => l.event === 'stopped'), 5000, 20);
});
