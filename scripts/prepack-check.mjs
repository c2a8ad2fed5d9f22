#!/usr/bin/env node
// npm's `prepack` script: `npm pack` / `npm publish` ship dist/ and bpf/*.o as they are, so a pack
// refuses to run when they are missing or older than their sources (`npm run build` makes them).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const mtime = (p) => statSync(join(root, p)).mtimeMs;
const problems = [];
for (const rel of readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })) {
  if (!rel.endsWith('.ts') || rel.endsWith('.d.ts')) continue;
  const src = join('src', rel);
  const out = join('dist', 'src', rel.replace(/\.ts$/, '.js'));
  if (!existsSync(join(root, out))) problems.push(`${out} is missing`);
  else if (mtime(src) > mtime(out)) problems.push(`${out} is older than ${src}`);
}
// bin/lvs-xdp.js runs the bundle of dist/src/cli (scripts/bundle.mjs): it must be newer than them.
const newestOut = Math.max(...readdirSync(join(root, 'dist', 'src'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.js')).map((f) => mtime(join('dist', 'src', f))));
if (!existsSync(join(root, 'dist', 'cli', 'main.js'))) problems.push('dist/cli/main.js (the bundled CLI) is missing');
else if (mtime('dist/cli/main.js') < newestOut) problems.push('dist/cli/main.js (the bundled CLI) is older than dist/src');
// Each object against what its Makefile rule builds it from: its own .bpf.c and the headers.
const headers = (dir) => readdirSync(join(root, dir)).filter((f) => f.endsWith('.h')).map((f) => join(dir, f));
const bpfHeaders = headers('bpf');
for (const o of ['bpf/lvs_director.o', 'bpf/lvs_decap.o', 'bpf/floors.o', 'bench/bpf/wrap.o', 'bench/bpf/live.o']) {
  const dir = dirname(o);
  const inputs = [o.replace(/\.o$/, '.bpf.c'), ...bpfHeaders, ...(dir === 'bpf' ? [] : headers(dir))];
  if (!existsSync(join(root, o))) problems.push(`${o} is missing`);
  else if (mtime(o) < Math.max(...inputs.map(mtime))) problems.push(`${o} is older than its sources`);
}
if (problems.length) {
  process.stderr.write(`npm pack: the build is missing or stale; run \`npm run build\` first:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  ... ${problems.length - 10} more` : ''}\n`);
  process.exit(1);
}
