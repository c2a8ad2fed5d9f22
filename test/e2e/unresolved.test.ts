// A down realserver is configuration, not an error (namespace lab, real TCP): one client, three
// LVS-DR realservers behind VIP dr4:80. rs3 is "powered off" (its link down, the director's
// neighbour entry flushed), so its MAC cannot be resolved. In order, one lab:
//   - the README's save / clear / restore line installs rs1 and rs2 and rs3 as unresolved: the
//     restore succeeds, every request is served by rs1 / rs2, -S gives back the saved rules
//     byte for byte, -L (a stderr note), status and doctor show rs3 unresolved; when rs3 comes
//     back, the next command installs it and it takes new flows;
//   - `lvs-xdp run` with a file naming a realserver that is off: run starts and serves, logs it
//     unresolved, /metrics and the status document show it, and its background resolution
//     installs it within the backoff bound once it answers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { Lab, installCleanupHandlers, testPrefix, checkIn, runIn, waitFor } from '../../src/lab/index.js';
import { startRunListening, NEEDS_ROOT, seriesLabels } from './helpers.js';
import { Director } from '../../src/director/director.js';
import { parseExposition } from '../../src/ops/metrics.js';

const BOUND_MS = 30_000;
const LISTEN = '127.0.0.1:9472';

let lab: Lab;
let run: ChildProcess | undefined;
const logs: Record<string, unknown>[] = [];
let vip = '';
let S = '';

function owners(): Set<string> {
  const ns = lab.director.ns;
  const d = Director.open({ pinDir: `/sys/fs/bpf/lvs-xdp@${ns}`, stateDir: `/run/lvs-xdp/lvs-xdp@${ns}` });
  try {
    return new Set((d.readTables().get(S) ?? []).filter((x): x is string => x !== null));
  } finally {
    d.close();
  }
}

/** rs3 off: its link down, and the director forgets its MAC (as after a neighbour timeout). */
async function powerOff(): Promise<void> {
  const rs3 = lab.realservers[2]!;
  await checkIn(rs3.ns, 'ip', ['link', 'set', 'eth0', 'down']);
  await checkIn(lab.director.ns, 'ip', ['neigh', 'flush', 'to', rs3.v4]);
}

/** rs3 on again, once it answers on the LAN (seen from the client: the director's neighbour table is left alone). */
async function powerOn(): Promise<void> {
  const rs3 = lab.realservers[2]!;
  await checkIn(rs3.ns, 'ip', ['link', 'set', 'eth0', 'up']);
  await waitFor('rs3 answers on the LAN', async () => (await runIn(lab.clients[0]!.ns, 'ping', ['-c', '1', '-W', '1', rs3.v4])).code === 0, 15_000, 200);
}

async function burst(count = 24) {
  return lab.burst({ url: `http://${vip}/`, sources: lab.clients[0]!.v4s, count, concurrency: 4, timeoutMs: 5000 });
}

before(async () => {
  if (NEEDS_ROOT) return;
  installCleanupHandlers();
  lab = await Lab.create({ prefix: testPrefix('unres'), clients: 1, clientAddresses: 4, realservers: 3 });
  try {
    vip = lab.vips.dr4;
    S = `tcp ${vip}:80`;
    await lab.attachDirector({ mode: 'native' });
    await Promise.all(lab.realservers.map((r) => lab.setupRealserver(r, 'dr', [vip])));
    await lab.startServers({ httpPort: 80 });
  } catch (e) {
    lab.destroy();
    throw e;
  }
}, { timeout: 180_000 });

after(() => {
  run?.kill('SIGKILL');
  lab?.destroy();
});

test('unresolved: save / clear / restore with a powered-off realserver installs the others and serves; it joins when it is back', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs3 = lab.realservers[2]!;
  const rules = `-A -t ${vip}:80 -s mh\n${lab.realservers.map((r) => `-a -t ${vip}:80 -r ${r.v4}:80 -g -w 1`).join('\n')}\n`;
  await lab.lvsOk(['-R'], lab.director.ns, rules);
  const saved = await lab.lvsOk(['-S', '-n']);
  assert.equal((await burst()).failed, 0);
  await lab.lvsOk(['-C']);
  await powerOff();
  const r = await lab.lvs(['-R'], lab.director.ns, saved);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`realserver ${rs3.v4.replace(/\./g, '\\.')} is installed unresolved \\(${rs3.v4.replace(/\./g, '\\.')} does not answer ARP/ND on eth0\\)`));
  assert.equal(await lab.lvsOk(['-S', '-n']), saved, '-S gives back exactly what was saved');
  const b = await burst();
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.deepEqual(Object.keys(b.counts).sort(), ['rs1', 'rs2']);
  assert.deepEqual([...owners()].sort(), [lab.realservers[0]!.v4, lab.realservers[1]!.v4].sort());
  const l = await lab.lvs(['-L', '-n']);
  assert.match(l.stdout, new RegExp(`-> ${rs3.v4.replace(/\./g, '\\.')}:80 +Route +1 `), 'listed with its configured weight, in ipvsadm\'s layout');
  assert.match(l.stderr, new RegExp(`${S} -> ${rs3.v4.replace(/\./g, '\\.')}: UNRESOLVED since `));
  const st = JSON.parse(await lab.lvsOk(['status', '--json'])) as { unresolved?: { address: string }[] };
  assert.deepEqual(st.unresolved?.map((u) => u.address), [rs3.v4]);
  const doc = JSON.parse((await lab.lvs(['doctor', '--json'])).stdout) as { verdict: string; check: string; detail: string }[];
  const f = doc.find((x) => x.check === `${S} -> ${rs3.v4}`)!;
  assert.equal(f.verdict, 'warn', 'down, not misconfigured');
  assert.match(f.detail, /installed unresolved since/);
  // Back: the next command (any) resolves it and installs it.
  await powerOn();
  const next = await lab.lvs(['-L', '-n']);
  assert.match(next.stderr, new RegExp(`realserver ${S} -> ${rs3.v4.replace(/\./g, '\\.')} answers now`));
  assert.ok(owners().has(rs3.v4));
  assert.equal(JSON.parse(await lab.lvsOk(['status', '--json'])).unresolved, undefined);
  const b2 = await burst(40);
  assert.equal(b2.failed, 0, b2.errors.join('; '));
  assert.ok((b2.counts.rs3 ?? 0) > 0, JSON.stringify(b2.counts));
  await lab.lvsOk(['-C']);
});

test('unresolved: run starts with a realserver that is off, shows it, and installs it when it answers', { skip: NEEDS_ROOT, timeout: 120_000 }, async () => {
  const rs3 = lab.realservers[2]!;
  await powerOff();
  const file = join(lab.dir, 'unresolved.yaml');
  writeFileSync(file, `services:\n  - vip: ${vip}\n    port: 80\n    scheduler: mh\n    realservers:\n${lab.realservers.map((r) => `      - { address: ${r.v4} }`).join('\n')}\n`);
  run = await startRunListening(lab, ['-f', file, '--log-format', 'json', '--listen', LISTEN], {}, logs, BOUND_MS);
  await waitFor('unresolved logged', () => logs.find((x) => x.event === 'unresolved' && x.realserver === `${S}/${rs3.v4}`), BOUND_MS);
  const b = await burst();
  assert.equal(b.failed, 0, b.errors.join('; '));
  assert.equal(b.counts.rs3, undefined);
  const m = parseExposition((await runIn(lab.director.ns, 'curl', ['-sS', `http://${LISTEN}/metrics`])).stdout);
  assert.equal(m.get(`lvs_xdp_realserver_unresolved${seriesLabels(S, rs3.v4)}`), 1);
  assert.equal(m.get(`lvs_xdp_realserver_unresolved${seriesLabels(S, lab.realservers[0]!.v4)}`), 0);
  const doc = JSON.parse((await runIn(lab.director.ns, 'curl', ['-sS', `http://${LISTEN}/api/status`])).stdout) as { services: { realservers: { address: string; unresolved?: { problem: string } }[] }[] };
  assert.match(doc.services[0]!.realservers.find((x) => x.address === rs3.v4)!.unresolved!.problem, /does not answer ARP\/ND/);
  const t0 = Date.now();
  await powerOn();
  await waitFor('rs3 resolved by run', () => logs.find((x) => x.event === 'resolved' && x.realserver === `${S}/${rs3.v4}`), 45_000);
  // The backoff doubles from 1 s to at most 30 s: it answers within one step of it.
  assert.ok(Date.now() - t0 < 32_000, `${Date.now() - t0} ms`);
  assert.ok(owners().has(rs3.v4));
  const b2 = await burst(40);
  assert.equal(b2.failed, 0, b2.errors.join('; '));
  assert.ok((b2.counts.rs3 ?? 0) > 0, JSON.stringify(b2.counts));
});
