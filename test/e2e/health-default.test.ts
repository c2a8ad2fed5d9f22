// The default health check goes through the forwarding path: a realserver whose application
// answers on its own address but that does not hold the VIP (clients' packets forwarded to it
// would be dropped, and they time out) is marked down by a check that names no `via`, while a
// realserver set up for DR stays up. The status says how each was checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runIn, sleep } from '../../src/lab/index.js';
import { useLab, startRunListening, NEEDS_ROOT } from './helpers.js';

const LISTEN = '127.0.0.1:9473';
const logs: Record<string, unknown>[] = [];
let run: ChildProcess | undefined;

const lab = useLab('hdef', { realservers: 2 }, async (l) => {
  await l.attachDirector({ mode: 'native' });
  await l.setupRealserver(l.realservers[0]!, 'dr', [l.vips.dr4]); // rs2: no VIP, its server still answers on its address
  await l.startServers({ httpPort: 80 });
});

test('health check default (no via): a realserver without the VIP is down, one with it is up', { skip: NEEDS_ROOT, timeout: 90_000 }, async (t) => {
  const L = lab();
  const rs1 = L.realservers[0]!;
  const rs2 = L.realservers[1]!;
  t.after(() => run?.kill('SIGKILL'));
  // The direct way passes for both: each application answers on its own address.
  for (const r of [rs1, rs2]) assert.equal((await runIn(L.director.ns, 'curl', ['-sS', '-o', '/dev/null', '--max-time', '3', `http://${r.v4}/`])).code, 0);
  const file = join(L.dir, 'health-default.yaml');
  writeFileSync(file, `services:
  - vip: ${L.vips.dr4}
    port: 80
    scheduler: mh
    health-check: { type: tcp, interval: 0.5, timeout: 0.4, rise: 1, fall: 1 }
    realservers:
      - { address: ${rs1.v4} }
      - { address: ${rs2.v4} }
`);
  run = await startRunListening(L, ['-f', file, '--log-format', 'json', '--listen', LISTEN], {}, logs, 30_000);
  const down = await waitLog((l) => l.event === 'health' && l.realserver === rs2.v4 && l.to === 'down');
  console.log(`rs2 (no VIP): ${String(down.detail)}`);
  assert.match(String(down.detail), new RegExp(`no SYN-ACK from ${L.vips.dr4.replace(/\./g, '\\.')}:80 via ${rs2.v4.replace(/\./g, '\\.')}`));
  await sleep(1500); // 3 more intervals: rs1 never went down
  assert.equal(logs.find((l) => l.event === 'health' && l.realserver === rs1.v4 && l.to === 'down'), undefined);
  const st = JSON.parse((await runIn(L.director.ns, 'curl', ['-sS', '--max-time', '5', `http://${LISTEN}/api/status`])).stdout) as
    { services: { realservers: { address: string; health: string; check?: string; last?: string }[] }[] };
  const rows = st.services[0]!.realservers;
  for (const r of rows) console.log(`${r.address} ${r.health}: ${r.check}; last ${r.last}`);
  assert.deepEqual(rows.map((r) => [r.address, r.health]), [[rs1.v4, 'up'], [rs2.v4, 'down']]);
  assert.match(rows[0]!.check!, /^tcp port 80 via the VIP \(forwarding path\)/);
});

async function waitLog(pred: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  const until = Date.now() + 20_000;
  for (;;) {
    const hit = logs.find(pred);
    if (hit) return hit;
    if (Date.now() > until) throw new Error(`not logged within 20 s: ${JSON.stringify(logs.filter((l) => l.event === 'health'))}`);
    await sleep(50);
  }
}
