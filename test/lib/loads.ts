/**
 * What a Node process loads: every ES module URL (node: built-ins included) it loads, recorded by
 * a module hook registered before the program starts. For tests of what start-up and lazy
 * imports keep out (test/unit/cli-load.test.ts, test/unit/ops-probes.test.ts).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { repoRoot } from './paths.js';

const HOOK = `data:text/javascript,${encodeURIComponent(`
  import { register } from 'node:module';
  register('data:text/javascript,' + encodeURIComponent('export async function load(u, c, n) { process._rawDebug("LOAD " + u); return n(u, c); }'));`)}`;

/** The module URLs `node ...args` loads (run in the repository, which must exit 0), in order. */
export function modulesLoadedBy(args: readonly string[]): string[] {
  const r = spawnSync(process.execPath, ['--import', HOOK, ...args], { encoding: 'utf8', cwd: repoRoot() });
  assert.equal(r.status, 0, r.stderr);
  return [...r.stderr.matchAll(/^LOAD (.*)$/gm)].map((m) => m[1]!);
}
