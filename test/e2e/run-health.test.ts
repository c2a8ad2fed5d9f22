// `lvs-xdp run` keeps health through everything (namespace lab, real TCP): one client, three
// LVS-DR realservers behind VIP dr4:80 with direct HTTP checks (interval 0.5 s, fall 2, rise 2,
// initial up), run started with a 2 s resync. In order, one lab:
//   - a second run on the same director is refused, naming the first (pid, since);
//   - with rs1's server stopped (down), a reload whose file cannot be applied keeps rs1 down:
//     its state and `since` unchanged, 0 requests to it across the next resyncs;
//   - a restart of run seeds health from the last run's state: rs1 stays down from the first
//     apply on (the log says so), 0 requests fail across the restart;
//   - `lvs-xdp drain` (a realserver) and `-e -w 0` survive resyncs, show in `status`, the
//     status document and /metrics, and undrain / `-e -w 1` give the realservers back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, runIn, waitFor, sleep, cliArgv, spawnIn, labEnv } from '../../src/lab/index.js';
import { startRunListening, NEEDS_ROOT, seriesLabels } from './helpers.js';
import { Director } from '../../src/director/director.js';
import { parseExposition } from '../../src/ops/metrics.js';

const BOUND_MS = 30_000;
const LISTEN = '127.0.0.1:9471';

let lab: Lab;
let run: ChildProcess | undefined;
const logs: Record<string, unknown>[] = [];
let file = '';
let vip = '';
let S = '';

function config(extra = '', drop?: string): string {
  return `# written by test/e2e/run-health.test.ts
services:
  - vip: ${vip}
    port: 80
    scheduler: mh
    table-size: 251
    health-check: { type: http, path: /, interval: 0.5, timeout: 0.4, rise: 2, fall: 2, via: direct }
    realservers:
${lab.realservers.filter((r) => r.v4 !== drop).map((r) => `      - { address: ${r.v4} }`).join('\n')}
${extra}`;
}

function paths(): { pinDir: string; stateDir: string } {
  const ns = lab.director.ns;
  return { pinDir: `/sys/fs/bpf/lvs-xdp@${ns}`, stateDir: `/run/lvs-xdp/lvs-xdp@${ns}` };
}

function owners(): Set<string> {
  const d = Director.open(paths());
  try {
    return new Set((d.readTables().get(S) ?? []).filter((x): x is string => x !== null));
  } finally {
    d.close();
  }
}

function waitLog(what: string, pred: (l: Record<string, unknown>) => boolean, from = 0): Promise<Record<string, unknown>> {
  return waitFor(what, () => logs.slice(from).find(pred), BOUND_MS, 50);
}

interface StatusRs { address: string; health: string; since?: string; effectiveWeight: number | null; drained?: { since: string } }
async function status(): Promise<StatusRs[]> {
  const r = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${LISTEN}/api/status`]);
  return (JSON.parse(r.stdout) as { services: { realservers: StatusRs[] }[] }).services[0]!.realservers;
}

async function metrics(): Promise<Map<string, number>> {
  const r = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${LISTEN}/metrics`]);
  return parseExposition(r.stdout);
}

async function stopServer(role: string): Promise<void> {
  const r = lab.realservers.find((x) => x.role === role)!;
  const pids = execFileSync('ip', ['netns', 'pids', r.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean).map(Number);
  for (const p of pids) process.kill(p, 'SIGKILL');
  await waitFor(`${role}'s server gone`, () => execFileSync('ip', ['netns', 'pids', r.ns], { encoding: 'utf8' }).trim() === '', 10_000);
}

function startRun(): Promise<ChildProcess> {
  return startRunListening(lab, ['-f', file, '--log-format', 'json', '--resync', '2', '--listen', LISTEN], {}, logs, BOUND_MS);
}

async function stopRun(): Promise<void> {
  const r = run!;
  const exited = new Promise<void>((resolve) => r.once('exit', () => resolve()));
  r.kill('SIGTERM');
  await exited;
  run = undefined;
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('runh'), clients: 1, clientAddresses: 4, realservers: 3 });
  try {
    vip = lab.vips.dr4;
    S = `tcp ${vip}:80`;
    await lab.attachDirector({ mode: 'native' });
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [vip])));
    await lab.startServers({ httpPort: 80 });
    file = join(lab.dir, 'run-health.yaml');
    writeFileSync(file, config());
    run = await startRun();
    await waitLog('applied at start', (l) => l.event === 'applied' && l.reason === 'start');
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  run?.kill('SIGKILL');
  lab?.destroy();
});

test('run-health: a second run on the same director is refused, naming the first', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const [node, argv] = cliArgv(['run', '-f', file, '--no-listen']);
  const child = spawnIn(lab.director.ns, node, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: labEnv({}) });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.notEqual(code, 0);
  assert.match(err, /another lvs-xdp run is running on this director \(pid \d+, since \d{4}-\d\d-\d\dT[\d:.]+Z, file .*run-health\.yaml\)/);
  // The first one is untouched: it still serves its status page, every realserver up.
  assert.deepEqual((await status()).map((r) => r.health), ['up', 'up', 'up']);
});

test('run-health: a reload that cannot be applied keeps a down realserver down (0 requests to it)', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs1 = lab.realservers[0]!;
  const mark = logs.length;
  await stopServer('rs1');
  await waitLog('rs1 down', (l) => l.event === 'health' && l.realserver === rs1.v4 && l.to === 'down', mark);
  await waitFor('rs1 out of the table', () => !owners().has(rs1.v4), BOUND_MS);
  const before = (await status()).find((r) => r.address === rs1.v4)!;
  assert.equal(before.health, 'down');
  // The new file drops rs1 and adds a realserver with no route at all: a configuration error.
  writeFileSync(file, config('      - { address: 192.0.2.77 }\n', rs1.v4).replace(/\n$/, ''));
  const m2 = logs.length;
  run!.kill('SIGHUP');
  await waitLog('reload failed', (l) => l.event === 'reload-failed', m2);
  const after = (await status()).find((r) => r.address === rs1.v4)!;
  assert.equal(after.health, 'down', 'the failed reload changed no health state');
  assert.equal(after.since, before.since);
  // Across the next resyncs (every 2 s): not one new request goes to rs1, none fails.
  const loop = lab.startLoop({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, workers: 4, perConnection: 1, maxSeconds: 6, pauseMs: 20, timeoutMs: 3000 });
  await sleep(5000);
  const res = await loop.stop();
  assert.ok(res.requests > 50, `only ${res.requests} requests`);
  assert.equal(res.failures.length, 0, JSON.stringify(res.failures.slice(0, 3)));
  assert.equal(res.counts.rs1 ?? 0, 0, JSON.stringify(res.counts));
  assert.equal(logs.slice(m2).find((l) => l.event === 'drift'), undefined, 'nothing to restore');
  writeFileSync(file, config());
});

test('run-health: a restart of run seeds health from the last known state (rs1 stays down, 0 requests fail)', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs1 = lab.realservers[0]!;
  const loop = lab.startLoop({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, workers: 4, perConnection: 1, maxSeconds: 30, pauseMs: 20, timeoutMs: 3000 });
  await stopRun();
  const mark = logs.length;
  run = await startRun();
  const seeded = await waitLog('health seeded', (l) => l.event === 'health-seeded', mark);
  assert.equal(seeded.from, 'health file');
  assert.deepEqual(seeded.down, [`${S}/${rs1.v4}`]);
  await waitLog('applied at start', (l) => l.event === 'applied' || l.event === 'listening', mark);
  assert.equal((await status()).find((r) => r.address === rs1.v4)!.health, 'down');
  await sleep(3000);
  const res = await loop.stop();
  assert.ok(res.requests > 50, `only ${res.requests} requests`);
  assert.equal(res.failures.length, 0, JSON.stringify(res.failures.slice(0, 3)));
  assert.equal(res.counts.rs1 ?? 0, 0, JSON.stringify(res.counts));
  assert.ok(!owners().has(rs1.v4));
  // Back up: it rejoins after `rise` checks.
  await lab.startServers({ httpPort: 80 }, [rs1]);
  await waitFor('rs1 back in the table', () => owners().has(rs1.v4), BOUND_MS);
});

test('run-health: a manual drain (drain, -e -w 0) survives resyncs and shows in status and metrics; undrain gives it back', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const [, rs2, rs3] = lab.realservers;
  const mark = logs.length;
  await lab.lvsOk(['drain', '-t', `${vip}:80`, '-r', rs2!.v4]);
  await lab.lvsOk(['-e', '-t', `${vip}:80`, '-r', rs3!.v4, '-g', '-w', '0']);
  // Three resyncs go by: neither is reverted.
  await sleep(6500);
  assert.equal(logs.slice(mark).find((l) => l.event === 'drift'), undefined, JSON.stringify(logs.slice(mark).filter((l) => l.event === 'drift')));
  const own = owners();
  assert.ok(!own.has(rs2!.v4) && !own.has(rs3!.v4), [...own].join(' '));
  const st = await lab.lvsOk(['status']);
  assert.match(st, new RegExp(`drained +${S} -> ${rs2!.v4.replace(/\./g, '\\.')} since`));
  assert.match(st, new RegExp(`drained +${S} -> ${rs3!.v4.replace(/\./g, '\\.')} since`));
  const doc = await status();
  assert.ok(doc.find((r) => r.address === rs2!.v4)!.drained);
  assert.equal(doc.find((r) => r.address === rs2!.v4)!.effectiveWeight, 0);
  const m = await metrics();
  assert.equal(m.get(`lvs_xdp_realserver_drained${seriesLabels(S, rs2!.v4)}`), 1);
  assert.equal(m.get(`lvs_xdp_realserver_drained${seriesLabels(S, rs3!.v4)}`), 1);
  assert.equal(m.get(`lvs_xdp_realserver_drained${seriesLabels(S, lab.realservers[0]!.v4)}`), 0);
  const r = await lab.burst({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, count: 20, concurrency: 4, timeoutMs: 5000 });
  assert.equal(r.failed, 0, r.errors.join('; '));
  assert.deepEqual(Object.keys(r.counts), ['rs1']);
  await lab.lvsOk(['undrain', '-t', `${vip}:80`, '-r', rs2!.v4]);
  await lab.lvsOk(['-e', '-t', `${vip}:80`, '-r', rs3!.v4, '-g', '-w', '1']);
  await waitFor('rs2 and rs3 back', () => owners().size === 3, BOUND_MS);
  assert.equal((await metrics()).get(`lvs_xdp_realserver_drained${seriesLabels(S, rs2!.v4)}`), 0);
  assert.doesNotMatch(await lab.lvsOk(['status']), /drained/);
});
