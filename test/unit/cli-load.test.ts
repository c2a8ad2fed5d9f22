// Every command still loads now that main.ts loads command modules on demand, and the start-up
// of `--version` stays free of them (each CLI call is a process of its own: start-up counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { modulesLoadedBy } from '../lib/loads.js';

const run = (...args: string[]) => execFileSync('node', ['bin/lvs-xdp.js', ...args], { encoding: 'utf8' });

test('every command of `lvs-xdp --help` loads: `lvs-xdp COMMAND --help` prints its usage', () => {
  const help = run('--help');
  const section = help.slice(help.indexOf('Commands:')).split('\n\n')[0]!;
  const names = [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]!).filter((n) => n !== 'help');
  // The commands main.ts registers (a new one is added here too).
  for (const n of ['attach', 'detach', 'status', 'upgrade', 'apply', 'diff', 'config', 'stats', 'top', 'metrics', 'run', 'fwmark',
    'drain', 'undrain', 'announce', 'doctor', 'realserver', 'demo', 'counters', 'import', 'capture']) {
    assert.ok(names.includes(n), `${n} is listed by --help`);
  }
  for (const n of names) {
    const r = spawnSync('node', ['bin/lvs-xdp.js', n, '--help'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${n} --help: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: lvs-xdp ${n} `), n);
  }
});

/** The project modules a CLI invocation loads (a module hook records every URL it loads): the
 * bundle's main and chunks (dist/cli/, scripts/bundle.mjs), and dist/src/ modules if any. */
function modulesLoaded(...args: string[]): string[] {
  return modulesLoadedBy(['bin/lvs-xdp.js', ...args]).filter((u) => u.includes('/dist/'));
}

test('the CLI runs from its bundle: a change command loads no module of dist/src one by one', () => {
  const mods = modulesLoaded('-L', '--help');
  assert.ok(mods.some((u) => u.endsWith('/dist/cli/main.js')), 'the hook sees the bundled CLI');
  assert.deepEqual(mods.filter((u) => u.includes('/dist/src/')), []);
});

test('`lvs-xdp --version` loads neither a command module nor the director or the native addon', () => {
  const mods = modulesLoaded('--version');
  assert.ok(mods.some((u) => u.endsWith('/dist/cli/main.js')), 'the hook sees the CLI');
  // Chunks are named by hash: what a loaded one holds says which modules it carries.
  const heavy = mods.filter((u) => /lvs_bpf\.node|lvs_director\.o|\bDirector = class/.test(readFileSync(fileURLToPath(u), 'utf8')));
  assert.deepEqual(heavy, []);
  // The markers above are in the bundle (else the check could not fail).
  const all = readdirSync('dist/cli').map((f) => readFileSync(join('dist/cli', f), 'utf8')).join('\n');
  for (const m of ['lvs_bpf.node', 'lvs_director.o', 'Director = class']) assert.ok(all.includes(m), `the bundle carries ${m}`);
});
