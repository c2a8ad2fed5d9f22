// Active/active with LVS-Tun (README "Several directors"): the lab of ecmp.test.ts with two
// directors whose realservers decapsulate (lvs_decap, `realserver setup --mode tun`): each
// director encapsulates from its own address, so the realservers' answers (from the VIP,
// straight to the router) do not depend on which director a packet went through. A director
// dies (SIGKILL of run, detach) and joins again under 24 long-lived connections: 0 broken.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HaLab, type HaDirector } from '../../src/lab/ha.js';
import { installCleanupHandlers, testPrefix } from '../../src/lab/index.js';
import { NEEDS_ROOT } from './helpers.js';
import { streamsThrough, unbroken, forwardedDuring, closeStreams } from './ecmp-helpers.js';

let lab: HaLab;
const times: Record<string, number | number[]> = {};

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await HaLab.create({ prefix: testPrefix('ecmptun'), directors: 2, realservers: 3, method: 'tun', bfdMs: 100 });
}, { timeout: 120_000 });

after(() => {
  lab?.stopAll();
  lab?.destroy();
  console.log(`ecmp-tun: ${JSON.stringify(times)}`);
});

const d = (i: number): HaDirector => lab.directors[i - 1]!;

test('ecmp-tun: two Tun directors announce every VIP; both carry flows; the tables agree', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  await Promise.all(lab.directors.map((x) => lab.startDirector(x)));
  times.announceAllMs = await lab.routerUntil(lab.directors);
  const digests = await Promise.all(lab.directors.map(async (x) => (await lab.lvsOk(x.ns, ['config', '--digest'])).split('\n')[0]));
  assert.equal(new Set(digests).size, 1, digests.join(' | '));
  for (const s of lab.services) {
    const names = await lab.names(s.vip, s.vip.includes(':') ? lab.client.v6s : lab.client.v4s);
    assert.ok(names.every((n) => /^rs[123]$/.test(n)), `${s.name}: ${names.join(',')}`);
  }
});

test('ecmp-tun: a director dies: 0 connections broken; it joins again: 0 broken', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  const streams = await streamsThrough(lab);
  try {
    for (const x of lab.directors) assert.ok(await forwardedDuring(lab, x) > 0, `${x.role} carries connections`);
    const t0 = Date.now();
    const [ms] = await Promise.all([lab.routerUntil([d(2)]), lab.killDirector(d(1))]);
    times.sigkillFailoverMs = ms;
    await unbroken('tun-director-dies', streams, t0, times);
    const t1 = Date.now();
    await lab.startDirector(d(1));
    await lab.routerUntil(lab.directors);
    times.joinAnnounceMs = Date.now() - t1;
    assert.ok(await forwardedDuring(lab, d(1)) > 0, 'the returning director carries moved connections');
    await unbroken('tun-director-joins', streams, t1, times);
  } finally {
    closeStreams(streams);
  }
});
