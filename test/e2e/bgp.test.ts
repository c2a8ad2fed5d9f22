// VIP announcement through BIRD 2 (README "Several directors: announcing VIPs with BIRD"): a router
// namespace runs BIRD (BGP, hold 3 s, keepalive 1 s), the director namespace runs BIRD with the
// configuration `lvs-xdp announce bird-config` prints (kernel table 201 learnt, exported over an
// IPv4 and an IPv6 session) and `lvs-xdp run` with settings.announce and two DR services (dr4:80,
// dr6:80; one realserver, HTTP checks every 0.5 s, fall 2, rise 2), resync every 1 s. The
// router's BIRD (`birdc show route`) must show a VIP exactly while it should be announced:
//   - run up, realserver healthy: both VIPs announced (time from run's first apply);
//   - the realserver's server stopped: both withdrawn (no-healthy-realserver); back: announced;
//   - `lvs-xdp drain -t dr4:80`: dr4 withdrawn (drained), dr6 stays; undrain: back;
//   - SIGKILL of run: both withdrawn within WITHDRAW_BOUND_MS (the guard flushes the table);
//   - a new run announces again; SIGTERM: withdrawn (stopped);
//   - `lvs-xdp detach` under a running run: withdrawn (detached) at its next resync.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab, installCleanupHandlers, testPrefix, runIn, checkIn, waitFor, spawnIn, cliArgv, sleep, run as runCmd } from '../../src/lab/index.js';
import { startRun as spawnRun, NEEDS_ROOT } from './helpers.js';
import { parseExposition } from '../../src/ops/metrics.js';

const BOUND_MS = 30_000;
/** The stated bound: run SIGKILLed -> the router has no route to its VIPs. */
const WITHDRAW_BOUND_MS = 1000;
const LISTEN = '127.0.0.1:9473';
const RT = { v4: '192.0.2.1', v6: '2001:db8:bb::1' };
const DIR = { v4: '192.0.2.2', v6: '2001:db8:bb::2' };

let lab: Lab;
let routerNs = '';
let runChild: ChildProcess | undefined;
const birds: ChildProcess[] = [];
const logs: Record<string, unknown>[] = [];
let file = '';
let rtSock = '';
let dirSock = '';
const times: Record<string, number> = {};

function config(): string {
  return `# written by test/e2e/bgp.test.ts
settings:
  announce: { table: 201 }
services:
${[lab.vips.dr4, lab.vips.dr6].map((vip) => `  - vip: ${vip}
    port: 80
    scheduler: mh
    table-size: 251
    health-check: { type: http, path: /, via: direct, interval: 0.5, timeout: 0.4, rise: 2, fall: 2 }
    realservers:
      - { address: ${vip.includes(':') ? lab.realservers[0]!.v6 : lab.realservers[0]!.v4} }`).join('\n')}
`;
}

/** The VIP prefixes the router's BIRD has a route to. */
async function routerRoutes(): Promise<Set<string>> {
  const r = await runCmd('birdc', ['-s', rtSock, 'show', 'route']);
  assert.equal(r.code, 0, r.stderr);
  return new Set([...r.stdout.matchAll(/^(\S+)\/(?:32|128)\s/gm)].map((m) => m[1]!));
}

/** Polls the router until `want` holds for both VIPs; returns the ms it took. */
async function routerUntil(what: string, want: { v4: boolean; v6: boolean }, boundMs = BOUND_MS): Promise<number> {
  const t0 = Date.now();
  await waitFor(what, async () => {
    const s = await routerRoutes();
    return s.has(lab.vips.dr4) === want.v4 && s.has(lab.vips.dr6) === want.v6;
  }, boundMs, 10);
  return Date.now() - t0;
}

interface Ann { vip: string; announced: boolean; reason: string }
async function announcements(): Promise<Record<string, string>> {
  const r = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${LISTEN}/api/status`]);
  const doc = JSON.parse(r.stdout) as { announcements?: Ann[] };
  return Object.fromEntries((doc.announcements ?? []).map((a) => [a.vip, `${a.announced ? '+' : '-'}${a.reason}`]));
}

/** Starts run and waits until this one listens (the log holds the earlier runs' lines too). */
async function startRun(extra: string[] = []): Promise<ChildProcess> {
  const mark = logs.length;
  const r = spawnRun(lab, ['-f', file, '--log-format', 'json', '--resync', '1', '--listen', LISTEN, ...extra], {}, logs);
  const l = await waitFor('run listening', () => logs.slice(mark).find((x) => x.event === 'listening' || x.event === 'exited'), BOUND_MS, 20);
  assert.equal(l.event, 'listening', `run exited: ${r.stderr()}`);
  return r.child;
}

function startBird(ns: string, conf: string, sock: string): void {
  const b = spawnIn(ns, 'bird', ['-f', '-c', conf, '-s', sock, '-P', `${sock}.pid`], { stdio: 'ignore' });
  birds.push(b);
}

async function stopServer(): Promise<void> {
  const rs = lab.realservers[0]!;
  for (const p of execFileSync('ip', ['netns', 'pids', rs.ns], { encoding: 'utf8' }).split(/\s+/).filter(Boolean)) process.kill(Number(p), 'SIGKILL');
  await waitFor('rs1 server gone', () => execFileSync('ip', ['netns', 'pids', rs.ns], { encoding: 'utf8' }).trim() === '', 10_000);
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('bgp'), clients: 1, realservers: 1 });
  try {
    await lab.attachDirector({ mode: 'native' });
    await lab.setupRealserver(lab.realservers[0]!, 'dr', [lab.vips.dr4, lab.vips.dr6]);
    await lab.startServers({ httpPort: 80 });
    // The router: a namespace of this lab (removed with it), one link to the director.
    routerNs = `${lab.prefix}-bgprt`;
    const veth = `${lab.prefix.slice(-6)}bg`;
    execFileSync('ip', ['netns', 'add', routerNs]);
    execFileSync('ip', ['link', 'add', `${veth}r`, 'netns', routerNs, 'type', 'veth', 'peer', 'name', `${veth}d`, 'netns', lab.director.ns]);
    await checkIn(routerNs, 'sh', ['-c', `ip link set lo up && ip link set ${veth}r up && ip addr add ${RT.v4}/30 dev ${veth}r && ip -6 addr add ${RT.v6}/126 dev ${veth}r nodad`]);
    await checkIn(lab.director.ns, 'sh', ['-c', `ip link set ${veth}d up && ip addr add ${DIR.v4}/30 dev ${veth}d && ip -6 addr add ${DIR.v6}/126 dev ${veth}d nodad`]);
    rtSock = join(lab.dir, 'bird-rt.sock');
    dirSock = join(lab.dir, 'bird-dir.sock');
    const rtConf = join(lab.dir, 'bird-rt.conf');
    const dirConf = join(lab.dir, 'bird-dir.conf');
    const session = (n: string, local: string, peer: string, f: 4 | 6) => `protocol bgp ${n} {
  local ${local} as 65000; neighbor ${peer} as 65001;
  hold time 3; keepalive time 1; connect retry time 1;
  ipv${f} { import all; export none; };
}
`;
    writeFileSync(rtConf, `router id ${RT.v4};\nprotocol device { scan time 10; }\n${session('dir4', RT.v4, DIR.v4, 4)}${session('dir6', RT.v6, DIR.v6, 6)}`);
    // The director's BIRD configuration is the one lvs-xdp generates.
    const [node, argv] = cliArgv(['announce', 'bird-config', '--router-id', DIR.v4, '--asn', '65001', '--neighbor', RT.v4, '--neighbor', RT.v6,
      '--neighbor-as', '65000', '--hold-time', '3', '--keepalive-time', '1']);
    writeFileSync(dirConf, execFileSync(node, argv, { encoding: 'utf8' }));
    startBird(routerNs, rtConf, rtSock);
    startBird(lab.director.ns, dirConf, dirSock);
    await waitFor('BGP sessions established', async () => {
      const r = await runCmd('birdc', ['-s', rtSock, 'show', 'protocols']);
      return (r.stdout.match(/Established/g) ?? []).length === 2;
    }, BOUND_MS, 100);
    file = join(lab.dir, 'bgp.yaml');
    writeFileSync(file, config());
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  runChild?.kill('SIGKILL');
  for (const b of birds) b.kill('SIGKILL');
  lab?.destroy();
  if (Object.keys(times).length) console.log(`bgp: ${JSON.stringify(times)}`);
});

test('bgp: the router learns both VIPs while run runs and the realserver is healthy', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  assert.deepEqual([...await routerRoutes()], [], 'nothing announced before run');
  runChild = await startRun();
  const applied = await waitFor('applied at start', () => logs.find((l) => l.event === 'applied' && l.reason === 'start'), BOUND_MS, 10);
  const since = Date.parse(applied.time as string);
  await routerUntil('both VIPs at the router', { v4: true, v6: true });
  times.announceMs = Date.now() - since;
  assert.deepEqual(await announcements(), { [lab.vips.dr4]: '+serving', [lab.vips.dr6]: '+serving' });
  const r = await runIn(lab.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${LISTEN}/metrics`]);
  const m = parseExposition(r.stdout);
  assert.equal(m.get(`lvs_xdp_vip_announced{vip="${lab.vips.dr4}",reason="serving"}`), 1);
  assert.equal(m.get(`lvs_xdp_vip_announced{vip="${lab.vips.dr6}",reason="serving"}`), 1);
  // Only lvs-xdp's routes, in its own table: the main table has no route to a VIP via lo.
  assert.match(await checkIn(lab.director.ns, 'ip', ['route', 'show', 'table', '201']), new RegExp(`^${lab.vips.dr4.replace(/\./g, '\\.')} dev lo proto 201`, 'm'));
  assert.doesNotMatch(await checkIn(lab.director.ns, 'ip', ['route', 'show', 'table', 'main']), /dev lo/);
});

test('bgp: every realserver down -> withdrawn (no-healthy-realserver); back up -> announced', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const mark = logs.length;
  await stopServer();
  const down = await waitFor('rs1 down', () => logs.slice(mark).find((l) => l.event === 'health' && l.to === 'down'), BOUND_MS, 10);
  await routerUntil('both VIPs withdrawn', { v4: false, v6: false });
  times.healthDownWithdrawMs = Date.now() - Date.parse(down.time as string);
  assert.deepEqual(await announcements(), { [lab.vips.dr4]: '-no-healthy-realserver', [lab.vips.dr6]: '-no-healthy-realserver' });
  await lab.startServers({ httpPort: 80 });
  await routerUntil('both VIPs back', { v4: true, v6: true });
});

test('bgp: lvs-xdp drain of a service withdraws its VIP (drained), undrain announces it again', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  const t0 = Date.now();
  await lab.lvsOk(['drain', '-t', `${lab.vips.dr4}:80`]);
  await routerUntil('dr4 withdrawn, dr6 kept', { v4: false, v6: true });
  times.drainWithdrawMs = Date.now() - t0;
  assert.equal((await announcements())[lab.vips.dr4], '-drained');
  await lab.lvsOk(['undrain', '-t', `${lab.vips.dr4}:80`]);
  await routerUntil('dr4 back', { v4: true, v6: true });
});

test(`bgp: SIGKILL of run -> both VIPs withdrawn within ${WITHDRAW_BOUND_MS} ms; a new run announces; stop withdraws`, { skip: NEEDS_ROOT, timeout: 90_000 }, async () => {
  await routerUntil('both announced', { v4: true, v6: true });
  const r = runChild!;
  const exited = new Promise<void>((resolve) => r.once('exit', () => resolve()));
  const t0 = Date.now();
  r.kill('SIGKILL');
  await routerUntil('both VIPs withdrawn after SIGKILL', { v4: false, v6: false }, 10_000);
  const ms = Date.now() - t0;
  times.sigkillWithdrawMs = ms;
  await exited;
  runChild = undefined;
  assert.ok(ms <= WITHDRAW_BOUND_MS, `withdrawn after ${ms} ms, the bound is ${WITHDRAW_BOUND_MS} ms`);
  assert.equal((await checkIn(lab.director.ns, 'ip', ['route', 'show', 'table', '201'])).trim(), '');
  // The data plane still forwards (run's death does not detach it): only the announcement went.
  const b = await lab.burst({ url: `http://${lab.vips.dr4}/`, sources: lab.clients[0]!.v4s, count: 4, concurrency: 2, timeoutMs: 5000 });
  assert.equal(b.failed, 0, b.errors.join('; '));

  const mark = logs.length;
  const t2 = Date.now();
  runChild = await startRun();
  await routerUntil('announced by the new run', { v4: true, v6: true });
  times.restartAnnounceMs = Date.now() - t2;
  // The router may hear the route before run's log line reaches this process.
  await waitFor('the new run says it announced', () => logs.slice(mark).some((l) => l.event === 'announced' && l.vip === lab.vips.dr6), 5000, 20);
  const stopping = runChild;
  const gone = new Promise<void>((resolve) => stopping.once('exit', () => resolve()));
  const t1 = Date.now();
  stopping.kill('SIGTERM');
  await gone;
  runChild = undefined;
  await routerUntil('withdrawn at stop', { v4: false, v6: false }, 5000);
  times.stopWithdrawMs = Date.now() - t1;
  // The child's last lines may reach this process after its exit event.
  await waitFor('the log says why (withdrawn: stopped)', () => logs.slice(mark).some((l) => l.event === 'withdrawn' && l.reason === 'stopped'), 5000, 20);
});

test('bgp: run --takeover replaces a running run without a route flap; a handover without a new run withdraws after the grace time', { skip: NEEDS_ROOT, timeout: 90_000 }, async () => {
  const GRACE_S = 2;
  runChild = await startRun(['--handover-grace', String(GRACE_S)]);
  await routerUntil('announced', { v4: true, v6: true });
  // The router's kernel routes: a withdrawal, even a short one, shows as a "Deleted" line.
  const mon = spawnIn(routerNs, 'ip', ['-o', 'monitor', 'route'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let monitored = '';
  mon.stdout!.setEncoding('utf8').on('data', (d: string) => { monitored += d; });
  try {
    await sleep(300);
    const old = runChild;
    const oldExit = new Promise<number | null>((resolve) => old.once('exit', (code) => resolve(code)));
    const mark = logs.length;
    const t0 = Date.now();
    runChild = await startRun(['--takeover', '--handover-grace', String(GRACE_S)]);
    assert.equal(await oldExit, 0, 'the old run exits cleanly');
    times.takeoverMs = Date.now() - t0;
    assert.ok(logs.slice(mark).some((l) => l.event === 'stopped' && l.handover === true), 'the old run handed over');
    assert.ok(logs.slice(mark).some((l) => l.event === 'took-over-routes'), 'the new run ended the old guard');
    // Past the old guard's grace: had it not been ended, it would have flushed the routes now.
    await sleep((GRACE_S + 1.5) * 1000);
    assert.deepEqual([...await routerRoutes()].sort(), [lab.vips.dr4, lab.vips.dr6].sort());
    assert.doesNotMatch(monitored, /Deleted/, `no withdrawal at the router during the takeover:\n${monitored}`);
    assert.deepEqual(logs.slice(mark).filter((l) => l.event === "withdrawn"), [], "nothing withdrawn");
    // A handover that nobody takes: the routes stay for the grace time, then go.
    const r = runChild;
    const exited = new Promise<void>((resolve) => r.once('exit', () => resolve()));
    const t1 = Date.now();
    r.kill('SIGUSR2');
    await exited;
    runChild = undefined;
    await routerUntil('withdrawn after the grace', { v4: false, v6: false }, 15_000);
    const ms = Date.now() - t1;
    times.handoverNobodyWithdrawMs = ms;
    assert.ok(ms >= GRACE_S * 1000 - 200 && ms <= GRACE_S * 1000 + 2000, `withdrawn after ${ms} ms; the grace is ${GRACE_S} s`);
  } finally {
    mon.kill();
  }
});

test('bgp: lvs-xdp detach while run runs -> withdrawn (detached) at run\'s next resync', { skip: NEEDS_ROOT, timeout: 60_000 }, async () => {
  runChild = await startRun();
  await routerUntil('announced', { v4: true, v6: true });
  const t0 = Date.now();
  await lab.lvsOk(['detach']);
  await routerUntil('withdrawn after detach', { v4: false, v6: false });
  times.detachWithdrawMs = Date.now() - t0;
  assert.deepEqual(await announcements(), { [lab.vips.dr4]: '-detached', [lab.vips.dr6]: '-detached' });
});
