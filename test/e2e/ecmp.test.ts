// Active/active directors behind an ECMP router (README "Several directors"): src/lab/ha.ts builds
// a client, a router (BIRD, BGP to every director with BFD, multipath routes hashed on L4), three
// directors (lvs-xdp attach + run with settings.announce, BIRD with the configuration lvs-xdp
// generates), four realservers (three configured, one spare), LVS-DR services mh4, sh4 (IPv4)
// and mh6 (IPv6). Each event runs under 24 long-lived connections (HTTP /stream, a line every
// 50 ms, 8 client addresses per VIP) and must break none of them: no reset, no timeout, no
// stall, never two realservers on one connection. The failover times are printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HaLab, type HaStream, type HaDirector } from '../../src/lab/ha.js';
import { installCleanupHandlers, testPrefix, runIn, sleep, waitFor } from '../../src/lab/index.js';
import { NEEDS_ROOT } from './helpers.js';
import { streamsThrough, unbroken, forwardedDuring, closeStreams } from './ecmp-helpers.js';

let lab: HaLab;
const times: Record<string, number | number[]> = {};
const BFD_MS = 100;

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await HaLab.create({ prefix: testPrefix('ecmp'), directors: 3, realservers: 4, bfdMs: BFD_MS, ...(process.env.LVS_TEST_VERBOSE ? { log: console.log } : {}) });
  lab.configured = 3;
}, { timeout: 120_000 });

after(() => {
  lab?.stopAll();
  lab?.destroy();
  console.log(`ecmp: ${JSON.stringify(times)}`);
});

const d = (i: number): HaDirector => lab.directors[i - 1]!;

const openStreams = (): Promise<HaStream[]> => streamsThrough(lab);
const assertUnbroken = (what: string, streams: HaStream[], since: number): Promise<void> => unbroken(what, streams, since, times);
const forwardingRate = (x: HaDirector, ms = 1000): Promise<number> => forwardedDuring(lab, x, ms);

test('ecmp: three directors announce every VIP; the router spreads flows over them; the tables agree', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  await Promise.all(lab.directors.map((x) => lab.startDirector(x)));
  times.announceAllMs = await lab.routerUntil(lab.directors);
  const digests = await Promise.all(lab.directors.map(async (x) => (await lab.lvsOk(x.ns, ['config', '--digest'])).split('\n')[0]));
  assert.equal(new Set(digests).size, 1, `digests differ: ${digests.join(' | ')}`);
  for (const s of lab.services) {
    const names = await lab.names(s.vip, s.vip.includes(':') ? lab.client.v6s : lab.client.v4s);
    assert.ok(names.every((n) => /^rs[123]$/.test(n)), `${s.name}: ${names.join(',')}`);
  }
  // BGP as BIRD reports it, in run's status document and metrics.
  // (run asks BIRD every second: the first answers may predate the sessions.)
  const sessions = async (): Promise<string> => {
    const doc = JSON.parse((await runIn(d(1).ns, 'curl', ['-sS', `http://${d(1).listen}/api/status`])).stdout) as { bgp: { name: string; bgp: string }[] };
    return JSON.stringify(doc.bgp.map((s) => [s.name, s.bgp]));
  };
  await waitFor('both sessions Established in the status document', async () => (await sessions()) === JSON.stringify([['upstream1', 'Established'], ['upstream2', 'Established']]), 10_000, 200)
    .catch(async (e: Error) => assert.fail(`${e.message}: ${await sessions()}`));
  const metrics = (await runIn(d(1).ns, 'curl', ['-sS', `http://${d(1).listen}/metrics`])).stdout;
  assert.match(metrics, /^lvs_xdp_bgp_session_established\{session="upstream1"\} 1$/m);
  assert.match(metrics, /^lvs_xdp_director_drained 0$/m);
  const streams = await openStreams();
  try {
    const rates = await Promise.all(lab.directors.map((x) => forwardingRate(x)));
    assert.ok(rates.every((r) => r > 0), `every director forwards a share: ${rates.join(',')}`);
  } finally {
    closeStreams(streams);
  }
});

test('ecmp: a director dies (SIGKILL of run, detach): 0 connections broken; it joins again: 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const streams = await openStreams();
  try {
    assert.ok(await forwardingRate(d(1)) > 0, 'd1 carries connections before it dies');
    const t0 = Date.now();
    // The router's route loses d1 while d1's data plane is being detached (both at once).
    const [ms] = await Promise.all([lab.routerUntil([d(2), d(3)]), lab.killDirector(d(1))]);
    times.sigkillFailoverMs = ms;
    await assertUnbroken('director-dies', streams, t0);
    const t1 = Date.now();
    await lab.startDirector(d(1));
    await lab.routerUntil(lab.directors);
    times.joinAnnounceMs = Date.now() - t1;
    assert.ok(await forwardingRate(d(1)) > 0, 'the returning director carries moved connections');
    await assertUnbroken('director-joins', streams, t1);
  } finally {
    closeStreams(streams);
  }
});

test(`ecmp: a director's link is cut: BFD (${BFD_MS} ms x 3) withdraws it, 0 broken; the link is back: 0 broken`, { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const streams = await openStreams();
  try {
    assert.ok(await forwardingRate(d(2)) > 0, 'd2 carries connections before its link is cut');
    const t0 = Date.now();
    await lab.cable(d(2), false);
    await lab.routerUntil([d(1), d(3)]);
    times.linkCutFailoverMs = Date.now() - t0;
    await assertUnbroken('link-cut', streams, t0);
    const t1 = Date.now();
    await lab.cable(d(2), true);
    await lab.routerUntil(lab.directors);
    times.linkBackMs = Date.now() - t1;
    await assertUnbroken('link-back', streams, t1);
  } finally {
    closeStreams(streams);
  }
});

test('ecmp: drain a director (withdraw, wait for its flows to move, detach): 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await lab.routerUntil(lab.directors);
  const streams = await openStreams();
  try {
    assert.ok(await forwardingRate(d(3)) > 0, 'd3 carries connections before the drain');
    const t0 = Date.now();
    const first = await lab.lvsOk(d(3).ns, ['drain', '--director']);
    assert.match(first, /every VIP withdrawn by lvs-xdp run/);
    assert.match(await lab.lvsOk(d(3).ns, ['status']), /drained\s+the whole director since/);
    const doc = JSON.parse((await runIn(d(3).ns, 'curl', ['-sS', `http://${d(3).listen}/api/status`])).stdout) as { directorDrain: unknown; announcements: { reason: string }[] };
    assert.ok(doc.directorDrain, 'the status document has the drain');
    assert.deepEqual([...new Set(doc.announcements.map((a) => a.reason))], ['director-drained']);
    // Drained already: --detach waits for the quiet period and detaches.
    const out = await lab.lvsOk(d(3).ns, ['drain', '--director', '--detach', '--quiet', '1', '--timeout', '60']);
    times.drainDetachMs = Date.now() - t0;
    console.log(out.trim());
    assert.match(out, /every VIP withdrawn by lvs-xdp run/);
    assert.match(out, /detached from eth0/);
    // Detached, it stays withdrawn (the drain record went with its state: that is no undrain).
    for (const end = Date.now() + 2500; Date.now() < end; await sleep(50)) {
      assert.deepEqual(await lab.routerPaths(lab.services[0]!.vip), [d(1).v4, d(2).v4].sort(), 'd3 announced again after its detach');
    }
    await assertUnbroken('drain', streams, t0);
    const why = d(3).logs.filter((l) => l.event === 'withdrawn').map((l) => l.reason);
    assert.ok(why.includes('director-drained'), `run says why: ${why.join(',')}`);
    // Back into service: attach again (the drain ended with the detach that removed its state).
    const t1 = Date.now();
    await lab.attach(d(3));
    await lab.routerUntil(lab.directors);
    times.reattachAnnounceMs = Date.now() - t1;
    await assertUnbroken('after-drain-rejoin', streams, t1);
  } finally {
    closeStreams(streams);
  }
});

test('ecmp: a realserver added on every director (one after the other) while connections run: 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await lab.routerUntil(lab.directors);
  const streams = await openStreams();
  try {
    const t0 = Date.now();
    for (const x of lab.directors) await lab.reload(x, 4);
    lab.configured = 4;
    times.addRealserverAllMs = Date.now() - t0;
    await assertUnbroken('realserver-added', streams, t0);
    const digests = await Promise.all(lab.directors.map(async (x) => (await lab.lvsOk(x.ns, ['config', '--digest'])).split('\n')[0]));
    assert.equal(new Set(digests).size, 1, `the directors agree again: ${digests.join(' | ')}`);
    // New connections reach the new realserver through any director.
    const names = (await Promise.all(lab.services.map((s) => lab.names(s.vip, s.vip.includes(':') ? lab.client.v6s : lab.client.v4s)))).flat();
    assert.ok(names.every((n) => /^rs[1-4]$/.test(n)), names.join(','));
    assert.ok(names.includes('rs4'), `rs4 takes new flows: ${names.join(',')}`);
  } finally {
    closeStreams(streams);
  }
});
