/**
 * Layering of src/: the CLI sits on top, so nothing below it imports from src/cli; the model,
 * the schedulers and the config file are pure, so they import nothing that holds the running
 * director (src/director), the binding (src/native), the compiler (src/dataplane) or `run`
 * (src/ops). Every import specifier of every .ts file under src/ is read with TypeScript's own
 * pre-processor (static, type-only, re-exports and dynamic import(); not strings or comments).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../lib/paths.js';

interface Rule { from: (dir: string) => boolean; to: readonly string[]; why: string }

/** Directories under src/ (a root file such as src/index.ts is in ''). */
const RULES: readonly Rule[] = [
  { from: (d) => d !== 'cli', to: ['cli'], why: 'the CLI is the top layer' },
  {
    from: (d) => ['model', 'sched', 'config'].includes(d),
    to: ['director', 'native', 'dataplane', 'ops'],
    why: 'model, schedulers and config file are pure: no running director, binding, compiler or run',
  },
];

/** The layer of a path relative to the repository: src/<layer>/..., or '' for a file directly in src/. */
function layerOf(path: string): string {
  const parts = path.split('/');
  return parts.length > 2 ? parts[1]! : '';
}

/** Every forbidden import in `files` (repo-relative path -> source text), as "file:line imports 'spec' (why)". */
function layeringViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [path, text] of files) {
    const from = layerOf(path);
    for (const imp of ts.preProcessFile(text, true, true).importedFiles) {
      if (!imp.fileName.startsWith('.')) continue; // a package, not a layer of ours
      const target = posix.normalize(posix.join(posix.dirname(path), imp.fileName));
      if (!target.startsWith('src/')) continue;
      const to = layerOf(target);
      for (const rule of RULES) {
        if (rule.from(from) && rule.to.includes(to)) {
          const line = text.slice(0, imp.pos).split('\n').length;
          out.push(`${path}:${line} imports '${imp.fileName}' (${rule.why})`);
        }
      }
    }
  }
  return out;
}

function sources(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const rel of readdirSync(join(root, 'src'), { recursive: true, encoding: 'utf8' })) {
    if (!rel.endsWith('.ts')) continue;
    const path = `src/${rel.split('\\').join('/')}`;
    files.set(path, readFileSync(join(root, path), 'utf8'));
  }
  return files;
}

test('no module outside src/cli imports from it; model, sched and config import no director, native, dataplane or ops', () => {
  const files = sources(repoRoot());
  // The walk must see the tree, or the check below proves nothing.
  for (const known of ['src/cli/main.ts', 'src/config/file.ts', 'src/ops/operator.ts', 'src/index.ts']) assert.ok(files.has(known), known);
  assert.deepEqual(layeringViolations(files), []);
});

test('the check names the file, line and import of each violation, and ignores strings, comments and packages', () => {
  const files = new Map([
    ['src/ops/x.ts', "import { a } from 'commander';\nimport type { StateOpts } from '../cli/common.js';\n"],
    ['src/config/y.ts', "// import '../director/director.js'\nconst s = \"import '../cli/main.js'\";\nexport * from '../native/index.js';\n"],
    ['src/index.ts', "const m = await import('./cli/stats.js');\n"],
    ['src/view/z.ts', "import type { StatsSample } from '../director/director.js';\n"],
    ['src/cli/top.ts', "import { statsView } from '../view/stats.js';\nimport { x } from './common.js';\n"],
  ]);
  assert.deepEqual(layeringViolations(files), [
    "src/ops/x.ts:2 imports '../cli/common.js' (the CLI is the top layer)",
    "src/config/y.ts:3 imports '../native/index.js' (model, schedulers and config file are pure: no running director, binding, compiler or run)",
    "src/index.ts:1 imports './cli/stats.js' (the CLI is the top layer)",
  ]);
});
