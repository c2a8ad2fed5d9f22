// What docs/library.md says about several processes: changes made through the library by several
// processes at once (and by several calls of one process at once) are serialized by the
// director's lock and all land; readers in another process run lock-free meanwhile, without an
// error. Each process imports the package by name ('lvs-xdp'), as an embedder does.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { repoRoot } from '../lib/paths.js';
import { CliNamespace } from '../lib/cli-ns.js';

const L = new CliNamespace('lvsk');
const ROOT = repoRoot();
const SVC = '10.78.0.100:80';
const mac = (last: number) => `02:00:00:00:02:${last.toString(16).padStart(2, '0')}`;

/** `node --input-type=module -e SCRIPT` in the namespace, with the test's pin and state dirs. */
let reading = false;
function node(script: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', L.argv([process.execPath, '--input-type=module', '-e', script]), { cwd: ROOT, env: L.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.startsWith('reading\n')) reading = true;
    });
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

before(() => {
  L.create();
  L.veth('lvsk0', 'lvsk1', { addr: '10.78.0.1/24' });
  L.ok(['attach', 'lvsk0', '--mode', 'generic', '--preset', 'small']);
  L.ok(['-A', '-t', SVC, '-s', 'mh']);
});
after(() => L.cleanup());

test('four library processes, each with two changes in flight at once, and a reader: every change lands, the reader never fails', { timeout: 120_000 }, async () => {
  const writer = (p: number) => node(`
    import { Director, parseRules } from 'lvs-xdp';
    const d = Director.open();
    const add = (last) => d.run(parseRules('-a -t ${SVC} -r 10.78.0.' + last + ' -g --mac 02:00:00:00:02:' + last.toString(16).padStart(2, '0'), 'p${p}'));
    const r = await Promise.all([add(${10 + 2 * p}), add(${11 + 2 * p})]);
    console.log(r.map((x) => x.applied).join(' '));
    d.close();
  `);
  // The reader starts first and reads until it sees all eight realservers: it overlaps every write.
  const reader = node(`
    import { Director } from 'lvs-xdp';
    const d = Director.open();
    const seen = new Set();
    console.log('reading');
    const until = Date.now() + 60000;
    for (let n = 0; n < 8 && Date.now() < until; ) {
      const s = d.readStats();
      if (s.services.length !== 1) throw new Error('services: ' + s.services.length);
      d.readTables(); d.status(s); d.connections();
      n = d.config.services[0].realservers.length;
      seen.add(n);
      await new Promise((r) => setTimeout(r, 5));
    }
    console.log([...seen].sort((a, b) => a - b).join(' '));
    d.close();
  `);
  const started = Date.now();
  while (!reading && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 20));
  const runs = await Promise.all([0, 1, 2, 3].map(writer));
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'true true', 'both changes of the process were written');
  }
  const read = await reader;
  assert.equal(read.code, 0, read.stderr);
  const seen = read.stdout.trim().split('\n').pop()!.split(' ').map(Number);
  assert.equal(seen.at(-1), 8, read.stdout);
  assert.ok(seen.length >= 2, `the reader read while the changes were written: it saw ${seen.join(', ')} realservers`);
  const saved = L.ok(['-S', '-n']);
  for (let last = 10; last < 18; last++) assert.match(saved, new RegExp(`-r 10\\.78\\.0\\.${last}:80 `), saved);
  assert.equal(saved.match(/^-a /gm)?.length, 8, saved);
  // The realservers' MACs as given: no write was computed from another process's stale view.
  const check = await node(`
    import { Director } from 'lvs-xdp';
    const d = Director.open();
    const s = d.config.services[0];
    console.log(JSON.stringify(s.realservers.map((r) => [r.address, d.nextHop(s, r)?.mac])));
    d.close();
  `);
  assert.equal(check.code, 0, check.stderr);
  assert.deepEqual((JSON.parse(check.stdout) as [string, string][]).sort((a, b) => a[0].localeCompare(b[0], 'en', { numeric: true })), Array.from({ length: 8 }, (_, i) => [`10.78.0.${10 + i}`, mac(10 + i)]));
});
