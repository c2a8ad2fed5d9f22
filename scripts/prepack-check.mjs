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
const bpfSources = readdirSync(join(root, 'bpf')).filter((f) => /\.(bpf\.c|h)$/.test(f));
const newestBpf = Math.max(...bpfSources.map((f) => mtime(join('bpf', f))));
for (const o of ['bpf/lvs_director.o', 'bpf/lvs_decap.o', 'bpf/floors.o', 'bench/bpf/wrap.o', 'bench/bpf/live.o']) {
  if (!existsSync(join(root, o))) problems.push(`${o} is missing`);
  else if (mtime(o) < newestBpf) problems.push(`${o} is older than the BPF sources`);
}
if (problems.length) {
  process.stderr.write(`npm pack: the build is missing or stale; run \`npm run build\` first:\n  ${problems.slice(0, 10).join('\n  ')}${problems.length > 10 ? `\n  ... ${problems.length - 10} more` : ''}\n`);
  process.exit(1);
}
