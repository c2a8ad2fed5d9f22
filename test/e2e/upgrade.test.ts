// Upgrade in place with real long-lived TCP connections: a director of an "older lvs-xdp"
// (bpf/test-objects/lvs_director_abi0.o: other lvs_conn and lvs_real layouts, swapped in by
// test/lib/old-director.ts) carries streaming downloads to three DR realservers; `lvs-xdp
// upgrade` through the CLI takes it over, and every download keeps flowing from the realserver it
// started on, none is cut, and new connections are served.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, url } from './helpers.js';
import { waitFor, sleep, type StreamHandle, type Lab } from '../../src/lab/index.js';
import { buildOldObjects, swapInOldDirector, pinnedCounter, OLD_OBJECT } from '../lib/old-director.js';

const counter = pinnedCounter;

before(() => {
  if (!NEEDS_ROOT) buildOldObjects();
});

const lab = useLab('upg', { clients: 1, clientAddresses: 8, realservers: 3 }, async (l) => {
  await standardSetup(l, { dr: true });
});

interface OpenStream { h: StreamHandle; rs: string }

async function assertFlowing(streams: OpenStream[], what: string): Promise<void> {
  const before = streams.map((s) => s.h.lines.length);
  await waitFor(`${what}: every stream receives more data`, () => streams.every((s, i) => s.h.lines.length >= before[i]! + 3), 10_000, 50);
  for (const s of streams) assert.equal(s.h.lines.at(-1)!.split(' ')[0], s.rs, `${what}: a stream on ${s.rs} now gets data from elsewhere`);
}

test('lvs-xdp upgrade across a layout change keeps every open TCP connection on its realserver', { skip: NEEDS_ROOT, timeout: 120_000 }, async (t) => {
  const l: Lab = lab();
  await l.lvsOk(['-R'], l.director.ns, `${serviceRules('tcp', l.vips.dr4, 80, 'mh', l.realservers.map((r) => ({ addr: r.v4, method: 'g', weight: 1 })))}\n`);
  const rules = await l.lvsOk(['-S', '-n']);
  const ns = l.director.ns;
  const pin = `/sys/fs/bpf/lvs-xdp@${ns}`;
  const oldProg = await swapInOldDirector(OLD_OBJECT, pin, `/run/lvs-xdp/lvs-xdp@${ns}/state.msgpack`);
  t.diagnostic(`old program ${oldProg}`);
  const refused = await l.lvs(['-L', '-n']);
  assert.equal(refused.code, 4);
  assert.match(refused.stderr, /lvs-xdp upgrade/);

  const streams: OpenStream[] = [];
  const c = l.clients[0]!;
  for (let i = 0; i < 8 && (streams.length < 6 || new Set(streams.map((s) => s.rs)).size < 2); i++) {
    const h = l.stream(url(l.vips.dr4, '/stream?seconds=120&ms=100'), { source: c.v4s[i % c.v4s.length]! });
    await l.waitLines(h, 1);
    streams.push({ h, rs: h.lines[0]!.split(' ')[0]! });
  }
  try {
    assert.ok(new Set(streams.map((s) => s.rs)).size >= 2, streams.map((s) => s.rs).join(' '));
    await assertFlowing(streams, 'on the old director');
    const connNew = counter(pin, 'CONN_NEW');
    const out = await l.lvsOk(['upgrade']);
    assert.match(out, /upgraded in place: lvs-xdp 0\.0\.1-old \(ABI 0/);
    assert.match(out, /lvs_conns +migrated field by field \((\d+) entries\)/);
    await assertFlowing(streams, 'after the upgrade');
    // Carried by their migrated entries, not scheduled anew (mh would pick the same realserver).
    assert.equal(counter(pin, 'CONN_NEW'), connNew, 'no open connection was scheduled anew');
    for (const s of streams) {
      const code = await Promise.race([s.h.exited, sleep(0).then(() => 'running' as const)]);
      assert.equal(code, 'running', `a stream on ${s.rs} ended`);
    }
    assert.equal(await l.lvsOk(['-S', '-n']), rules);
    const listed = await l.lvsOk(['-L', '-n', '-c']);
    assert.ok(listed.split('\n').filter((x) => /ESTABLISHED/.test(x)).length >= streams.length, listed);
    const r = await l.burst({ url: url(l.vips.dr4), sources: c.v4s, count: 12, concurrency: 4 });
    assert.equal(r.failed, 0, r.errors.join('; '));
  } finally {
    for (const s of streams) s.h.kill();
  }
});
