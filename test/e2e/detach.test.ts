// `detach` on a director carrying real traffic removes every program, link and pinned object
// lvs-xdp made (checked in bpffs, in `ip link` and with bpftool by id), `status` then says not
// attached (exit 4), and attaching again brings the service back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { NEEDS_ROOT, useLab, standardSetup, serviceRules, tally, url } from './helpers.js';
import { run, waitFor, runIn, type Lab } from '../../src/lab/index.js';

const lab = useLab('det', { clients: 1, clientAddresses: 2, realservers: 2 }, async (l) => {
  await standardSetup(l, { dr: true });
});

const rules = (l: Lab): string => `${serviceRules('tcp', l.vips.dr4, 80, 'mh', l.realservers.map((r) => ({ addr: r.v4, method: 'g', weight: 1 })))}\n`;

async function xdpOn(l: Lab, ns: string, dev: string): Promise<unknown> {
  const r = await runIn(ns, 'ip', ['-j', '-d', 'link', 'show', 'dev', dev]);
  return (JSON.parse(r.stdout) as { xdp?: unknown }[])[0]?.xdp;
}

async function bpftoolExists(kind: 'prog' | 'map' | 'link', id: number): Promise<boolean> {
  return (await run('bpftool', [kind, 'show', 'id', String(id)])).code === 0;
}

test('detach removes every program, link and pinned object; status exits 4; attach again works', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const l = lab();
  const dir = l.director.ns;
  await l.lvsOk(['-R'], dir, rules(l));
  assert.deepEqual(Object.keys(tally(await l.curl(url(l.vips.dr4), { count: 12 }))).sort(), ['rs1', 'rs2']);

  const status = JSON.parse(await l.lvsOk(['status', '--json'])) as {
    attached: boolean; pinDir: string; stateDir: string; program: { id: number }; interfaces: { name: string; mode: string }[];
  };
  assert.equal(status.attached, true);
  assert.deepEqual(status.interfaces.map((i) => [i.name, i.mode]), [['eth0', 'native']]);
  assert.ok(status.pinDir.endsWith(`@${dir}`), status.pinDir);
  assert.ok(existsSync(status.pinDir) && existsSync(status.stateDir));
  const progId = status.program.id;
  const prog = JSON.parse((await run('bpftool', ['-j', 'prog', 'show', 'id', String(progId)])).stdout) as { map_ids: number[] };
  assert.ok(prog.map_ids.length > 5, JSON.stringify(prog));
  const links = (JSON.parse((await run('bpftool', ['-j', 'link', 'show'])).stdout) as { id: number; prog_id: number }[]).filter((k) => k.prog_id === progId);
  assert.equal(links.length, 1, 'one XDP link for the director program');
  assert.ok(await xdpOn(l, dir, 'eth0'), 'XDP program on the director\'s eth0');

  const out = await l.lvsOk(['detach']);
  assert.match(out, /detached from eth0; removed the pinned state and snapshot/);
  assert.equal(existsSync(status.pinDir), false, `${status.pinDir} still exists`);
  assert.equal(existsSync(status.stateDir), false, `${status.stateDir} still exists`);
  assert.equal(await xdpOn(l, dir, 'eth0'), undefined, 'eth0 still has an XDP program');
  // The kernel frees programs, links and maps once the last reference is gone (deferred).
  await waitFor('the director program, its link and maps to be freed', async () => {
    for (const lk of links) if (await bpftoolExists('link', lk.id)) return false;
    if (await bpftoolExists('prog', progId)) return false;
    for (const m of prog.map_ids) if (await bpftoolExists('map', m)) return false;
    return true;
  }, 15_000, 200);

  const st = await l.lvs(['status']);
  assert.equal(st.code, 4, `status exit code ${st.code}: ${st.stdout}${st.stderr}`);
  assert.match(st.stdout, /not attached/);
  // Without the director the VIP is the director's own address: the kernel refuses port 80.
  assert.deepEqual(await l.curl(url(l.vips.dr4), { count: 2, timeoutS: 3 }), ['', '']);

  assert.match(await l.attachDirector({ mode: 'native' }), /attached to eth0 \(native mode\)/);
  await l.lvsOk(['-R'], dir, rules(l));
  assert.deepEqual(Object.keys(tally(await l.curl(url(l.vips.dr4), { count: 12 }))).sort(), ['rs1', 'rs2']);
  const again = JSON.parse(await l.lvsOk(['status', '--json'])) as { attached: boolean; program: { id: number } };
  assert.equal(again.attached, true);
  assert.notEqual(again.program.id, progId, 'a fresh program after detach');
});
