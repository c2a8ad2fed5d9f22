// Kernel memory as `status` and the metrics report it: every pinned map, the program's own maps
// and every lookup table (the inner arrays of lvs_tables, maps of their own), each as the kernel charges it, checked
// against bpftool's bytes_memlock of the inner maps the outer one names. Maglev tables without a
// table-size follow the number of realservers (1021 slots for 1 to 10, 2039 from 11); an
// explicit --table-size holds; rr / wrr tables are as long as their weights.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { CliNamespace } from '../lib/cli-ns.js';
import { parseExposition } from '../../src/ops/metrics.js';

const L = new CliNamespace('lvsm');
const mac = (last: number) => `02:00:00:00:03:${last.toString(16).padStart(2, '0')}`;

interface Status { memoryBytes: number; maps: { name: string; memlock: number }[]; tables: { count: number; slots: number; memlock: number } }

function status(): Status {
  return JSON.parse(L.ok(['status', '--json'])) as Status;
}

/** The inner maps lvs_tables names, as bpftool reads them: their slots and kernel memory. */
function bpftoolTables(): { count: number; slots: number; memlock: number } {
  const dump = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'dump', 'pinned', `${L.pin}/lvs_tables`], { encoding: 'utf8' })) as { key: string[]; value?: string[]; inner_map_id?: number }[];
  const out = { count: 0, slots: 0, memlock: 0 };
  const seen = new Set<number>();
  for (const e of dump) {
    const id = e.inner_map_id ?? (e.value ? Buffer.from(e.value.map((h) => parseInt(h, 16))).readUInt32LE(0) : undefined);
    if (id === undefined || seen.has(id)) continue;
    seen.add(id);
    const m = JSON.parse(execFileSync('bpftool', ['-j', 'map', 'show', 'id', String(id)], { encoding: 'utf8' })) as { max_entries: number; bytes_memlock: number };
    out.count++;
    out.slots += m.max_entries;
    out.memlock += m.bytes_memlock;
  }
  return out;
}

before(() => {
  L.create();
  L.veth('lvsm0', 'lvsm1', { addr: '10.79.0.1/24' });
  L.ok(['attach', 'lvsm0', '--mode', 'generic', '--preset', 'small']);
});
after(() => L.cleanup());

test('status and metrics count the lookup tables at their real sizes; Maglev sizes follow the realservers, --table-size holds', () => {
  L.ok(['-A', '-t', '10.79.0.100:80', '-s', 'mh']);
  for (let i = 1; i <= 4; i++) L.ok(['-a', '-t', '10.79.0.100:80', '-r', `10.79.0.${10 + i}`, '-g', '--mac', mac(i)]);
  L.ok(['-A', '-t', '10.79.0.101:80', '-s', 'sh', '--table-size', '4093']);
  L.ok(['-a', '-t', '10.79.0.101:80', '-r', '10.79.0.20', '-g', '--mac', mac(20)]);
  L.ok(['-A', '-t', '10.79.0.102:80', '-s', 'wrr']);
  L.ok(['-a', '-t', '10.79.0.102:80', '-r', '10.79.0.30', '-g', '-w', '3', '--mac', mac(30)]);
  L.ok(['-a', '-t', '10.79.0.102:80', '-r', '10.79.0.31', '-g', '-w', '1', '--mac', mac(31)]);

  // A changed service's previous table waits in its spare slot until a later change that leaves
  // the service alone points that slot at the live table (plan.ts, retire): .100's 3-realserver
  // table went with .101's addition, .101's first one with .102's; .102's previous one is there.
  const sizes = () => [...L.ok(['config', '--digest']).matchAll(/ (\d+) slots$/gm)].map((m) => Number(m[1]));
  let s = status();
  assert.deepEqual(s.tables, bpftoolTables(), 'the tables as bpftool sees them');
  assert.deepEqual(sizes(), [1021, 4093, 4], 'live sizes: mh by its 4 realservers, sh as given, wrr as its weights');
  assert.equal(s.tables.count, 4);
  assert.equal(s.tables.slots, 1021 + 4093 + 4 + 1);
  assert.ok(s.tables.memlock >= 8 * s.tables.slots, 'array values are stored 8 bytes apart');
  assert.equal(s.memoryBytes, s.maps.reduce((n, m) => n + m.memlock, 0) + s.tables.memlock);
  // The small preset's capture ring: 128 KiB (maxCaptureRing).
  assert.ok((s.maps.find((m) => m.name === 'lvs_capture_rb')?.memlock ?? 0) >= 128 << 10, 'the program\'s own maps count too (the capture ring)');
  assert.match(L.ok(['status']), /memory +\d+\.\d MiB in maps, lookup tables included \(4 tables, 5119 slots, 0\.\d MiB\)/);
  assert.match(L.ok(['-S', '-n']), /^-A -t 10\.79\.0\.101:80 -s sh --table-size 4093$/m);

  // Up to 10 realservers the mh table keeps 1021 slots; the 11th makes it 2039.
  for (let i = 5; i <= 10; i++) L.ok(['-a', '-t', '10.79.0.100:80', '-r', `10.79.0.${10 + i}`, '-g', '--mac', mac(i)]);
  assert.deepEqual(sizes(), [1021, 4093, 4]);
  assert.equal(status().tables.slots, 2 * 1021 + 4093 + 4, '.102\'s previous table went with the first of them');
  L.ok(['-a', '-t', '10.79.0.100:80', '-r', '10.79.0.21', '-g', '--mac', mac(21)]);
  assert.deepEqual(sizes(), [2039, 4093, 4]);
  s = status();
  assert.deepEqual(s.tables, bpftoolTables());
  assert.equal(s.tables.slots, 2039 + 1021 + 4093 + 4);

  const v = parseExposition(L.ok(['metrics']));
  assert.equal(v.get('lvs_xdp_lookup_tables'), 4);
  assert.equal(v.get('lvs_xdp_lookup_table_slots'), s.tables.slots);
  assert.equal(v.get('lvs_xdp_map_memory_bytes{map="lookup_tables"}'), s.tables.memlock);
  assert.equal(v.get('lvs_xdp_map_memory_bytes{map="lvs_conns"}'), s.maps.find((m) => m.name === 'lvs_conns')!.memlock);
});
