// Connection sync through the library on a running director's pinned state: Director.insertSynced
// resolves against the configuration the director runs, rebuilds its lookups when another process
// changes it (a realserver added with the CLI), and what it inserted is the connection table the
// CLI lists (`-L -n -c`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoRoot } from '../lib/paths.js';
import { CliNamespace } from '../lib/cli-ns.js';

const L = new CliNamespace('lvsy');
const SVC = '10.79.0.100:80';

before(() => {
  L.create();
  L.veth('lvsy0', 'lvsy1', { addr: '10.79.0.1/24' });
  L.ok(['attach', 'lvsy0', '--mode', 'generic', '--preset', 'small']);
  L.ok(['-A', '-t', SVC, '-s', 'rr']);
  L.ok(['-a', '-t', SVC, '-r', '10.79.0.11', '-g', '--mac', '02:00:00:00:03:11']);
  L.ok(['-a', '-t', SVC, '-r', '10.79.0.12', '-g', '--mac', '02:00:00:00:03:12']);
});
after(() => L.cleanup());

test('Director.insertSynced: entries land in the running director, a realserver added meanwhile is found, -L -c lists them', () => {
  // One process: insert, add a realserver with the CLI, insert again with the same Director.
  const script = `
    import { Director } from 'lvs-xdp';
    import { spawnSync } from 'node:child_process';
    const d = Director.open();
    const conn = (cport, daddr) => ({ family: 4, protocol: 6, flags: 3, state: 1, cport, vport: 80, dport: 80, fwmark: 0, timeout: 900,
      caddr: '198.51.100.7', vaddr: '10.79.0.100', daddr });
    const first = d.insertSynced([conn(40000, '10.79.0.12'), conn(40001, '10.79.0.13')]);
    const add = spawnSync(process.execPath, ['${repoRoot()}/bin/lvs-xdp.js', '-a', '-t', '${SVC}', '-r', '10.79.0.13', '-g', '--mac', '02:00:00:00:03:13'], { encoding: 'utf8' });
    if (add.status !== 0) throw new Error(add.stderr);
    const second = d.insertSynced([conn(40001, '10.79.0.13')]);
    console.log(JSON.stringify({ first, second }));
    d.close();
  `;
  const r = spawnSync('nsenter', L.argv([process.execPath, '--input-type=module', '-e', script]), { cwd: repoRoot(), env: L.env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const { first, second } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { first: { conns: number; skipped: object }; second: { conns: number; skipped: object } };
  assert.deepEqual([first.conns, first.skipped], [1, { 'no-realserver': 1 }]);
  assert.deepEqual([second.conns, second.skipped], [1, {}], 'the lookups follow the configuration another process changed');
  const listed = L.ok(['-L', '-n', '-c']);
  assert.match(listed, /TCP\s+\S+\s+ESTABLISHED\s+198\.51\.100\.7:40000\s+10\.79\.0\.100:80\s+10\.79\.0\.12:80/);
  assert.match(listed, /TCP\s+\S+\s+ESTABLISHED\s+198\.51\.100\.7:40001\s+10\.79\.0\.100:80\s+10\.79\.0\.13:80/);
});
