// `-C` of many services frees their lookup tables in one batch: every lvs_tables slot they held
// names one placeholder table (writer.ts parkTables: one RCU grace period, where deleting slot by
// slot waits one each), status counts no table for them, and services added afterwards take those
// slots and forward through their own tables. A few services are still deleted slot by slot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP } from '../lib/frames.js';
import { XDP } from '../lib/director.js';
import { CliNamespace } from '../lib/cli-ns.js';
import { acceptTestRunFrames } from '../lib/accept.js';
import { BpfMap, openPinned, closeFd, testRun } from '../../src/native/index.js';
import { PARKED_TABLE } from '../../src/director/writer.js';
import { BULK_RETIRE } from '../../src/director/plan.js';

const L = new CliNamespace('lvsq');
const N = BULK_RETIRE + 4;
const vip = (i: number) => `10.79.1.${i + 1}`;
const macOf = (last: number) => `02:00:00:00:04:${last.toString(16).padStart(2, '0')}`;
const rules = (services: number, rs: number) => Array.from({ length: services }, (_, i) =>
  [`-A -t ${vip(i)}:80 -s mh`, `-a -t ${vip(i)}:80 -r 10.79.0.${rs} -g -w 1 --mac ${macOf(rs)}`]).flat().join('\n');

let prog = -1;
/** Where the program sends a SYN to service i: the realserver MAC's last byte, or the XDP action. */
function send(i: number, sport = 40000 + i): string {
  acceptTestRunFrames(L.pin);
  const r = testRun(prog, clientPacket('198.51.100.7', vip(i), { proto: 'tcp', sport, dport: 80, flags: TCP.SYN }), { dataSizeOut: 2048 });
  if (r.retval === XDP.TX) return r.data.subarray(5, 6).toString('hex');
  return r.retval === XDP.DROP ? 'drop' : r.retval === XDP.PASS ? 'pass' : `action ${r.retval}`;
}

/** lvs_tables: slot -> the name of the inner map it names. */
function slots(): Map<number, string> {
  const t = BpfMap.fromPin(`${L.pin}/lvs_tables`);
  try {
    const { keys, values } = t.entries();
    return new Map(keys.map((k, i) => {
      const inner = BpfMap.fromId(values[i]!.readUInt32LE(0));
      try {
        return [k.readUInt32LE(0), `${inner.name}#${values[i]!.readUInt32LE(0)}`] as const;
      } finally {
        inner.close();
      }
    }));
  } finally {
    t.close();
  }
}
const tables = () => (JSON.parse(L.ok(['status', '--json'])) as { tables: { count: number; memlock: number } }).tables;

before(() => {
  L.create();
  L.veth('lvsq0', 'lvsq1');
  L.ok(['attach', 'lvsq0', '--preset', 'small']);
  prog = openPinned(`${L.pin}/prog_lvs_director`);
  L.onCleanup(() => closeFd(prog));
});
after(() => L.cleanup());

test(`-C of ${N} services parks their slots on one placeholder; new services take them and forward`, () => {
  L.ok(['-R'], { input: rules(N, 0x11) });
  for (let i = 0; i < N; i++) assert.equal(send(i), '11', `service ${i} forwards before -C`);
  assert.equal(tables().count, N);
  const held = [...slots().keys()];

  L.ok(['-C']);
  const after = slots();
  const parked = new Set([...after.values()]);
  assert.equal(parked.size, 1, `one placeholder names every freed slot: ${[...parked].join(', ')}`);
  assert.ok([...parked][0]!.startsWith(`${PARKED_TABLE}#`), [...parked][0]);
  for (const s of held) assert.ok(after.has(s), `slot ${s} is parked`);
  const t = tables();
  assert.equal(t.count, 0, 'the placeholder is not a service\'s table');
  assert.ok(t.memlock > 0, 'its memory is counted');
  // A new flow to a service that went is passed (the earlier SYNs' flows wait as IPVS's do: dropped).
  for (let i = 0; i < N; i++) assert.equal(send(i, 50000 + i), 'pass', `service ${i} is gone`);

  // The same services again, to another realserver: their tables replace the placeholder.
  L.ok(['-R'], { input: rules(N, 0x22) });
  for (let i = 0; i < N; i++) assert.equal(send(i, 60000 + i), '22', `service ${i} forwards through its new table`);
  assert.equal(tables().count, N);
  // And a few deleted at once are deleted slot by slot (no placeholder for them).
  L.ok(['-D', '-t', `${vip(0)}:80`]);
  const live = [...slots().values()].filter((n) => !n.startsWith(`${PARKED_TABLE}#`));
  assert.equal(new Set(live).size, N - 1);
});
