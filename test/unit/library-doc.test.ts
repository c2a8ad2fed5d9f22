/**
 * docs/library.md is the library's reference: every export of src/index.ts (values and types, as
 * TypeScript's checker sees the module) and every public member of Director has a row there, and
 * every row names something that exists. Its lifecycle example is examples/lifecycle.ts verbatim
 * (that file is compiled with the project and run by test/e2e/package.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../lib/paths.js';

const root = repoRoot();
const doc = readFileSync(join(root, 'docs', 'library.md'), 'utf8');

interface Surface { exports: Set<string>; statics: Set<string>; members: Set<string> }

/** The names src/index.ts exports, and Director's public static and instance members. */
function surface(): Surface {
  const index = join(root, 'src', 'index.ts');
  const program = ts.createProgram([index], {
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022, strict: true, skipLibCheck: true, noEmit: true, types: ['node'],
  });
  const checker = program.getTypeChecker();
  const mod = checker.getSymbolAtLocation(program.getSourceFile(index)!)!;
  const exported = checker.getExportsOfModule(mod);
  const director = checker.getAliasedSymbol(exported.find((s) => s.name === 'Director')!);
  const isPublic = (s: ts.Symbol): boolean => {
    const d = s.declarations?.[0];
    return !!d && !(ts.getCombinedModifierFlags(d) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) && !s.name.startsWith('__');
  };
  return {
    exports: new Set(exported.map((s) => s.name)),
    statics: new Set([...(director.exports?.values() ?? [])].filter((s) => isPublic(s) && s.name !== 'prototype').map((s) => s.name)),
    members: new Set([...(director.members?.values() ?? [])].filter(isPublic).map((s) => s.name)),
  };
}

/** The first cell of every table row: `Name`, `Director.name(...)` or `d.name(...)`. */
function documented(text: string): Surface {
  const out: Surface = { exports: new Set(), statics: new Set(), members: new Set() };
  for (const m of text.matchAll(/^\| `(Director\.|d\.)?([A-Za-z_$][\w$]*)[^`]*` \|/gm)) {
    (m[1] === 'Director.' ? out.statics : m[1] === 'd.' ? out.members : out.exports).add(m[2]!);
  }
  return out;
}

/** What one side has and the other lacks, as readable lines. */
function mismatches(real: Surface, doc: Surface): string[] {
  const out: string[] = [];
  for (const k of ['exports', 'statics', 'members'] as const) {
    for (const n of real[k]) if (!doc[k].has(n)) out.push(`${k}: ${n} is not documented in docs/library.md`);
    for (const n of doc[k]) if (!real[k].has(n)) out.push(`${k}: docs/library.md documents ${n}, which src/index.ts does not export`);
  }
  return out;
}

test('every export of src/index.ts and every public Director member is documented in docs/library.md, and nothing else is', () => {
  const real = surface();
  assert.ok(real.exports.has('Director') && real.exports.has('LvsError') && real.exports.has('DirectorConfig'), [...real.exports].join(' '));
  assert.ok(real.statics.has('attach') && real.members.has('apply') && real.members.has('config'), [...real.members].join(' '));
  const listed = documented(doc);
  assert.deepEqual(mismatches(real, listed), []);
  // The check itself: a row dropped, or one for a name that is not exported, is reported.
  const dropped = doc.replace(/^\| `d\.readStats\(\)` \|.*\n/m, '').replace(/^\| `formatSave` \|.*\n/m, '');
  assert.deepEqual(mismatches(real, documented(`${dropped}\n| \`formatList\` | x | x |\n`)), [
    'exports: formatSave is not documented in docs/library.md',
    'exports: docs/library.md documents formatList, which src/index.ts does not export',
    'members: readStats is not documented in docs/library.md',
  ]);
});

test('every documented function or Director member names the errors it throws', () => {
  const rows = [...doc.matchAll(/^\| `([^`]+)` \|([^|]+)\|([^|]*)\|$/gm)];
  for (const r of rows) {
    const name = r[1]!;
    const callable = name.includes('(') || /^[a-z]/.test(name);
    if (callable) assert.ok(r[3]!.trim().length > 0, `${name}: the throws column is empty (write "none" when it throws nothing)`);
  }
  assert.ok(rows.length > 80, `${rows.length} rows with a throws column`);
});

test('the lifecycle example in docs/library.md is examples/lifecycle.ts', () => {
  const block = /<!-- example:examples\/lifecycle\.ts:begin -->\n```ts\n([\s\S]*?)```\n<!-- example:examples\/lifecycle\.ts:end -->/.exec(doc);
  assert.ok(block, 'the example block is in docs/library.md');
  assert.equal(block[1], readFileSync(join(root, 'examples', 'lifecycle.ts'), 'utf8'));
  // It uses the package by name only: no relative import reaches into src/.
  for (const imp of ts.preProcessFile(block[1]!, true, true).importedFiles) assert.equal(imp.fileName, 'lvs-xdp');
});

test('the README links the library reference', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = /^### Library API\n([\s\S]*?)^###? /m.exec(readme);
  assert.ok(section, 'README has a Library API section');
  assert.match(section[1]!, /\(docs\/library\.md\)/);
});
