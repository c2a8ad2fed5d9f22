// The package as an embedder gets it: `npm pack` of this checkout carries the compiled control
// plane with its declarations, the BPF objects and the addon's sources (no tests, benchmarks or
// build output); `npm install` of the tarball into a fresh directory (with the registry the
// machine is configured for) builds the addon; examples/lifecycle.ts, type-checked against the
// installed declarations and run from there in a namespace, attaches, applies, reads counters
// and detaches, importing only 'lvs-xdp' (examples/edge-router is type-checked and loaded too).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEEDS_ROOT } from './helpers.js';
import { repoRoot } from '../lib/paths.js';
import { withNetns, vethPair } from '../lib/netns.js';

const root = repoRoot();
const run = (cmd: string, args: string[], cwd: string): string =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

test('npm pack installs into a fresh directory, builds the addon, and the lifecycle example runs against it', { skip: NEEDS_ROOT, timeout: 400_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-pack-'));
  try {
    const tgz = run('npm', ['pack', '--silent', '--pack-destination', dir], root).trim().split('\n').pop()!;
    const files = run('tar', ['-tzf', join(dir, tgz)], dir).split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    for (const want of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/main.js', 'dist/cli/main.js', 'bin/lvs-xdp.js', 'bpf/lvs_director.o',
      'bpf/lvs_decap.o', 'binding.gyp', 'native/addon.cc', 'native/common.h', 'scripts/install-native.mjs', 'src/ops/path-probe.py', 'src/ops/neigh-probe.py', 'docs/library.md', 'bench/bpf/wrap.o', 'bench/bpf/live.o']) {
      assert.ok(files.includes(want), `the package carries ${want}`);
    }
    // `lvs-xdp bench` runs bench/bpf/wrap.o (repeat wrapper) and live.o (live-rate sender): shipped.
    const stray = files.filter((f) => !['bench/bpf/wrap.o', 'bench/bpf/live.o'].includes(f) && /^(dist\/(test|bench|examples)\/|build\/|node_modules\/|test\/|bench\/)|\.ts$(?<!\.d\.ts)|\.map$/.test(f));
    assert.deepEqual(stray, [], 'no tests, benchmarks, sources, maps or build output in the package');
    t.diagnostic(`${tgz}: ${files.length} files`);

    const app = join(dir, 'app');
    run('mkdir', ['-p', app], dir);
    writeFileSync(join(app, 'package.json'), `${JSON.stringify({ name: 'lvs-embedder', private: true, type: 'module' })}\n`);
    const t0 = Date.now();
    run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(dir, tgz)], app);
    t.diagnostic(`npm install of the tarball (addon built by its install script): ${Date.now() - t0} ms`);
    const installed = join(app, 'node_modules', 'lvs-xdp');
    assert.ok(existsSync(join(installed, 'build', 'Release', 'lvs_bpf.node')), 'the install script built the addon');
    // The CLI comes along (bin, its bundle in dist/cli), reading the generated glossary of the shipped build.
    const glossary = JSON.parse(run(join(app, 'node_modules', '.bin', 'lvs-xdp'), ['counters', '--json'], app)) as unknown[];
    assert.ok(Array.isArray(glossary) && glossary.length > 20, 'lvs-xdp counters --json from the installed package');

    // The examples, type-checked against the installed declarations only (no paths into src/).
    copyFileSync(join(root, 'examples', 'lifecycle.ts'), join(app, 'lifecycle.ts'));
    mkdirSync(join(app, 'edge-router'));
    for (const f of ['router.ts', 'config.ts']) copyFileSync(join(root, 'examples', 'edge-router', f), join(app, 'edge-router', f));
    writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: true,
        types: ['node'], typeRoots: [join(root, 'node_modules', '@types')], outDir: '.',
      },
      files: ['lifecycle.ts', 'edge-router/router.ts'],
    }));
    run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
    assert.ok(readdirSync(app).includes('lifecycle.js'));
    // The edge router loads the installed package too (run end to end by edge-router.test.ts).
    const usage = spawnSync(process.execPath, [join(app, 'edge-router', 'router.js')], { cwd: app, encoding: 'utf8' });
    assert.equal(usage.status, 2, usage.stderr);
    assert.match(usage.stderr, /^usage: node router\.js ROUTER\.json$/m);

    await withNetns(['pkd', 'pkr'], async ([d, r]) => {
      vethPair(d!, 'eth0', r!, 'eth0');
      d!.ip('addr', 'add', '192.0.2.1/24', 'dev', 'eth0');
      r!.ip('addr', 'add', '192.0.2.10/24', 'dev', 'eth0');
      const out = d!.exec(process.execPath, [join(app, 'lifecycle.js'), 'eth0', '198.51.100.1', '192.0.2.10'], { timeoutMs: 60_000 });
      t.diagnostic(out.trim());
      assert.match(out, /^\+ service tcp 198\.51\.100\.1:80 \(mh, 1 realserver\)$/m, 'the plan was printed');
      assert.match(out, /switch\s+switch 1 service to its new table/, 'with its steps');
      assert.match(out, /^applied: true$/m);
      assert.match(out, /^service tcp 198\.51\.100\.1:80: 0 conns, 0 packets$/m, 'the counters were read');
      assert.ok(!existsSync(`/sys/fs/bpf/lvs-xdp@${d!.name}`), 'detach removed every pin');
      assert.equal(d!.exec('ip', ['-j', 'link', 'show', 'dev', 'eth0']).includes('"xdp"'), false, 'no XDP program is left on eth0');
    }, ([d]) => {
      // A run that failed half way: nothing of it may outlive the test.
      for (const p of [`/sys/fs/bpf/lvs-xdp@${d!.name}`, `/run/lvs-xdp/lvs-xdp@${d!.name}`]) rmSync(p, { recursive: true, force: true });
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
