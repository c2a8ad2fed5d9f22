// Active/active directors with connection sync (README "Connection sync"): the ECMP lab
// (src/lab/ha.ts, two directors behind a BIRD router) and the one case the agreement of the
// tables does not cover: a realserver is added (every director's tables change: about a quarter
// of the slots move to it; established flows stay on their realserver through the connection
// table of the director that carries them) and then a director dies. Its flows move to the other
// director, which has no entry for them: by its new tables some now hash to the new realserver,
// which resets them. First without sync (the control: some connections break), then with every
// director running a master and a backup sync daemon: the other director holds the dead one's
// entries, 0 broken.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { HaLab, streamReport, type HaDirector, type HaStream } from '../../src/lab/ha.js';
import { installCleanupHandlers, testPrefix, waitFor, runIn, lvsIn } from '../../src/lab/index.js';
import { NEEDS_ROOT } from './helpers.js';
import { streamsThrough, closeStreams, forwardedDuring } from './ecmp-helpers.js';

let lab: HaLab;
const times: Record<string, number> = {};

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await HaLab.create({ prefix: testPrefix('esync'), directors: 2, realservers: 4, clientAddresses: 24, bfdMs: 100, ...(process.env.LVS_TEST_VERBOSE ? { log: console.log } : {}) });
  lab.configured = 3;
}, { timeout: 120_000 });

after(() => {
  lab?.stopAll();
  lab?.destroy();
  console.log(`ecmp-sync: ${JSON.stringify(times)}`);
});

const d = (i: number): HaDirector => lab.directors[i - 1]!;

/** Streams, a realserver added on both directors, then d1 dies: the streams' report once they settle. */
async function addThenDie(what: string): Promise<ReturnType<typeof streamReport>> {
  const streams: HaStream[] = await streamsThrough(lab);
  try {
    assert.ok(await forwardedDuring(lab, d(1), 500) > 0, 'd1 carries connections');
    if (lab.sync) {
      // Every connection is on both directors before the event (each director's backup inserted
      // what the other's master sent).
      await waitFor(`${what}: every connection synced`, async () => {
        const n = await Promise.all(lab.directors.map(async (x) => {
          const r = await runIn(x.ns, 'curl', ['-sS', `http://${x.listen}/api/status`]);
          return (JSON.parse(r.stdout) as { connections: { entries: number } }).connections.entries;
        }));
        return n.every((c) => c >= streams.length);
      }, 10_000, 100);
    }
    for (const x of lab.directors) await lab.reload(x, 4);
    const t0 = Date.now();
    await Promise.all([lab.routerUntil([d(2)]), lab.killDirector(d(1))]);
    const counts = streams.map((s) => s.lines.length);
    await waitFor(`${what}: every stream flowing again or ended`, () => streams.every((s, i) => s.code !== undefined || s.lines.length >= counts[i]! + 10), 20_000, 100);
    const r = streamReport(streams, t0, Date.now());
    console.log(`${what}: ${JSON.stringify(r)}`);
    return r;
  } finally {
    closeStreams(streams);
  }
}

/** Back to three realservers and two directors in service. */
async function restore(): Promise<void> {
  await lab.startDirector(d(1));
  for (const x of lab.directors) await lab.reload(x, 3);
  await lab.routerUntil(lab.directors);
}

test('ecmp-sync: without sync, flows of a dead director that the changed tables send to the new realserver are reset (the corner case)', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  await Promise.all(lab.directors.map((x) => lab.startDirector(x)));
  await lab.routerUntil(lab.directors);
  const r = await addThenDie('without-sync');
  times.brokenWithoutSync = r.broken.length;
  // About a quarter of d1's flows (half of 72) hash to the new realserver by the new tables.
  assert.ok(r.broken.length > 0, `without sync some of the moved connections break (${r.broken.length} of ${r.streams})`);
  await restore();
});

test('ecmp-sync: with a master and a backup sync daemon on each director, the same events break 0 connections', { skip: NEEDS_ROOT, timeout: 180_000 }, async () => {
  // d2 from its file (settings.sync), d1 with ipvsadm's commands against its running run.
  lab.sync = { interval: 0.1, refresh: 1 };
  lab.syncInFile = (x) => x !== d(1);
  for (const x of lab.directors) await lab.reload(x, 3);
  assert.equal(await lab.lvsOk(d(1).ns, ['-L', '--daemon']), '', 'no daemon on d1 yet');
  for (const role of ['master', 'backup']) await lab.lvsOk(d(1).ns, ['--start-daemon', role, '--mcast-interface', 'eth0', '--syncid', '52']);
  // Stopped and started again: --stop-daemon ends it (and says when there is nothing to stop).
  await lab.lvsOk(d(1).ns, ['--stop-daemon', 'backup']);
  assert.equal((await lab.lvsOk(d(1).ns, ['-L', '--daemon'])).split('\n').filter(Boolean).length, 1);
  const again = await lvsIn(d(1).ns, ['--stop-daemon', 'backup']);
  assert.notEqual(again.code, 0);
  assert.match(again.stderr, /no backup sync daemon was started with --start-daemon/);
  await lab.lvsOk(d(1).ns, ['--start-daemon', 'backup', '--mcast-interface', 'eth0', '--syncid', '52']);
  // d2's file wins over a --start-daemon for the same role, and says so.
  const shadowed = await lvsIn(d(2).ns, ['--start-daemon', 'master', '--mcast-interface', 'eth0', '--syncid', '9']);
  assert.equal(shadowed.code, 0);
  assert.match(shadowed.stderr, /settings\.sync\): it wins over --start-daemon/);
  await lab.lvsOk(d(2).ns, ['--stop-daemon', 'master']);
  for (const x of lab.directors) await waitFor(`${x.role}: both sync daemons`, async () => (await lab.lvsOk(x.ns, ['-L', '--daemon'])).split('\n').filter(Boolean).length === 2, 10_000, 100);
  const r = await addThenDie('with-sync');
  times.brokenWithSync = r.broken.length;
  assert.deepEqual(r.broken, [], 'with sync: connections broken');
  assert.equal(r.changed, 0, 'with sync: a connection moved to another realserver');
  assert.equal(r.stalled, 0, 'with sync: connections stalled');
});
