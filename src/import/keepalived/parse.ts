/**
 * keepalived.conf's syntax (keepalived.conf(5)) as a tree of statements: a keyword, its arguments
 * and, for a block, its statements; each with the file and line it came from. Comments start with
 * `#` or `!` anywhere outside quotes; strings in "..." or '...' keep their spaces and take
 * backslash escapes; `{` and `}` open and close blocks (also on the next line, or several on one
 * line: `url { path / }`). `include FILE` (and includer / includem / includew / includeb /
 * includea) reads files relative to the including file's directory, with wildcards and braces;
 * `@ID line` / `@^ID line` are conditional lines (the config-id), `$NAME=VALUE` defines a
 * parameter and `$NAME` / `${NAME}` use it. Pure: files come through the `read` / `list` hooks.
 */
import { dirname, isAbsolute, join } from 'node:path';

export interface Statement {
  keyword: string;
  args: string[];
  /** Present for a block (possibly empty). */
  block?: Statement[];
  file: string;
  line: number;
}

/** Where something is: `file:line`. */
export function at(s: Pick<Statement, 'file' | 'line'>): string {
  return `${s.file}:${s.line}`;
}

export class KeepalivedSyntaxError extends Error {
  constructor(readonly file: string, readonly line: number, readonly problem: string) {
    super(`${file}:${line}: ${problem}`);
  }
}

export interface ParseNote { file: string; line: number; note: string }

export interface ParseHooks {
  /** Contents of a file, or undefined when it cannot be read. */
  read(path: string): string | undefined;
  /** Names in a directory (for wildcards), or undefined when it cannot be read. */
  list(dir: string): string[] | undefined;
  /** keepalived's config-id (`-i`): selects `@ID` lines. */
  configId?: string;
}

export interface ParseResult { statements: Statement[]; notes: ParseNote[]; files: string[] }

interface Token { text: string; quoted: boolean }

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

/** One line's words: comments removed, quotes joined, `{` `}` as words of their own. */
export function tokenizeLine(line: string, file: string, lineNo: number): Token[] {
  const out: Token[] = [];
  let cur = '';
  let quoted = false;
  let have = false;
  const push = (): void => {
    if (have) out.push({ text: cur, quoted });
    cur = '';
    quoted = false;
    have = false;
  };
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === '"' || c === "'") {
      const q = c;
      quoted = true;
      have = true;
      let j = i + 1;
      for (; j < line.length && line[j] !== q; j++) {
        if (line[j] === '\\' && j + 1 < line.length) {
          const e = line[++j]!;
          if (ESCAPES[e] !== undefined) cur += ESCAPES[e];
          else if (e === 'x') {
            const m = /^[0-9a-fA-F]+/.exec(line.slice(j + 1));
            if (m) {
              cur += String.fromCharCode(parseInt(m[0].slice(-2), 16));
              j += m[0].length;
            } else cur += 'x';
          } else if (/[0-7]/.test(e)) {
            const m = /^[0-7]{1,3}/.exec(line.slice(j))!;
            cur += String.fromCharCode(parseInt(m[0], 8));
            j += m[0].length - 1;
          } else if (e === 'c' && j + 1 < line.length) {
            cur += String.fromCharCode(line[++j]!.toUpperCase().charCodeAt(0) ^ 0x40);
          } else cur += e;
        } else cur += line[j];
      }
      if (j >= line.length) throw new KeepalivedSyntaxError(file, lineNo, `unterminated ${q === '"' ? 'double' : 'single'} quote`);
      i = j;
      continue;
    }
    if (c === '#' || c === '!') break;
    if (/\s/.test(c)) {
      push();
      continue;
    }
    if (c === '{' || c === '}') {
      push();
      out.push({ text: c, quoted: false });
      continue;
    }
    cur += c;
    have = true;
  }
  push();
  return out;
}

const INCLUDES = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);

/** csh-style braces: "a{b,c}d" -> abd, acd (nested too). */
export function expandBraces(p: string): string[] {
  const open = p.indexOf('{');
  if (open < 0) return [p];
  let depth = 0;
  const parts: string[] = [];
  let start = open + 1;
  for (let i = open; i < p.length; i++) {
    if (p[i] === '{') depth++;
    else if (p[i] === '}') {
      depth--;
      if (depth === 0) {
        parts.push(p.slice(start, i));
        const pre = p.slice(0, open);
        const post = p.slice(i + 1);
        return parts.flatMap((x) => expandBraces(pre + x + post));
      }
    } else if (p[i] === ',' && depth === 1) {
      parts.push(p.slice(start, i));
      start = i + 1;
    }
  }
  return [p];
}

function globRe(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${pattern.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The files a pattern names, sorted as glob() returns them; a name without wildcards as is. */
function expandGlob(pattern: string, hooks: ParseHooks): string[] {
  const out: string[] = [];
  for (const p of expandBraces(pattern)) {
    if (!/[*?[]/.test(p)) {
      out.push(p);
      continue;
    }
    const parts = p.split('/');
    let bases = [parts[0] === '' ? '/' : '.'];
    for (let i = parts[0] === '' ? 1 : 0; i < parts.length; i++) {
      const seg = parts[i]!;
      if (seg === '') continue;
      if (!/[*?[]/.test(seg)) {
        bases = bases.map((b) => join(b, seg));
        continue;
      }
      const re = globRe(seg);
      bases = bases.flatMap((b) => (hooks.list(b) ?? []).filter((n) => re.test(n) && !n.startsWith('.')).sort().map((n) => join(b, n)));
    }
    out.push(...bases);
  }
  return out;
}

interface Line { file: string; line: number; text: string }

/**
 * The lines of a file with includes, conditional lines and parameters resolved (keepalived
 * resolves includes before conditionals and parameters: so do we).
 */
function readLines(path: string, hooks: ParseHooks, notes: ParseNote[], files: string[], stack: string[], params: Map<string, string>): Line[] {
  const text = hooks.read(path);
  if (text === undefined) throw new KeepalivedSyntaxError(path, 0, 'cannot read the file');
  files.push(path);
  const out: Line[] = [];
  const raw = text.split(/\r?\n/);
  for (let i = 0; i < raw.length; i++) {
    const lineNo = i + 1;
    let t = raw[i]!;
    // A parameter's multi-line definition: every line but the last ends with a backslash.
    if (/^\s*\$[A-Za-z_]\w*=/.test(t)) {
      while (t.endsWith('\\') && i + 1 < raw.length) t = `${t.slice(0, -1)}\n${raw[++i]!}`;
      const m = /^\s*\$([A-Za-z_]\w*)=(.*)$/s.exec(t)!;
      params.set(m[1]!, m[2]!.trim());
      continue;
    }
    const first = t.trim().split(/\s+/, 2);
    if (INCLUDES.has(first[0]!)) {
      // The name as written (braces are part of it here, not blocks), without a comment or quotes.
      const rest = t.trim().slice(first[0]!.length).replace(/\s[#!].*$/, '').trim().replace(/^(["'])(.*)\1$/, '$2');
      if (!rest) throw new KeepalivedSyntaxError(path, lineNo, `${first[0]} needs a file name`);
      const pattern = isAbsolute(rest) ? rest : join(dirname(path), rest);
      const found = expandGlob(pattern, hooks);
      if (found.length === 0 || (found.length === 1 && found[0] === pattern && hooks.read(pattern) === undefined)) {
        notes.push({ file: path, line: lineNo, note: `${first[0]} ${rest}: no file matches (skipped, as keepalived does)` });
        continue;
      }
      for (const f of found) {
        if (stack.includes(f)) throw new KeepalivedSyntaxError(path, lineNo, `${first[0]} ${rest}: ${f} includes itself (${[...stack, f].join(' -> ')})`);
        out.push(...readLines(f, hooks, notes, files, [...stack, f], params));
      }
      continue;
    }
    // Conditional lines: "@id ..." only for that config-id, "@^id ..." for any other.
    const cond = /^\s*@(\^?)(\S*)\s*(.*)$/.exec(t);
    if (cond) {
      const match = cond[2] === hooks.configId;
      if (cond[1] === '^' ? match : !match) continue;
      t = cond[3]!;
    }
    if (params.size > 0 && t.includes('$')) t = substitute(t, params, path, lineNo);
    // A substituted parameter may hold several lines.
    for (const part of t.split('\n')) out.push({ file: path, line: lineNo, text: part.replace(/\\$/, '') });
  }
  return out;
}

function substitute(t: string, params: Map<string, string>, file: string, line: number): string {
  for (let round = 0; round < 32; round++) {
    let changed = false;
    t = t.replace(/\$\{([A-Za-z_]\w*)\}|\$([A-Za-z_]\w*)(?=\s|$)/g, (m, a: string | undefined, b: string | undefined) => {
      const v = params.get((a ?? b)!);
      if (v === undefined) return m;
      changed = true;
      return v;
    });
    if (!changed) return t;
  }
  throw new KeepalivedSyntaxError(file, line, 'parameter substitution does not end (a parameter refers to itself)');
}

/** Parses a keepalived.conf and everything it includes. */
export function parseKeepalived(path: string, hooks: ParseHooks): ParseResult {
  const notes: ParseNote[] = [];
  const files: string[] = [];
  const lines = readLines(path, hooks, notes, files, [path], new Map());
  const root: Statement[] = [];
  const stack: { list: Statement[]; opener?: Statement }[] = [{ list: root }];
  let last: Statement | undefined;
  for (const l of lines) {
    const toks = tokenizeLine(l.text, l.file, l.line);
    let i = 0;
    while (i < toks.length) {
      const tk = toks[i]!;
      if (!tk.quoted && tk.text === '}') {
        if (stack.length === 1) throw new KeepalivedSyntaxError(l.file, l.line, 'unexpected } (no block is open)');
        stack.pop();
        last = undefined;
        i++;
        continue;
      }
      if (!tk.quoted && tk.text === '{') {
        // "{" alone opens a block for the statement before it (on this line or the line above).
        if (!last || last.block) throw new KeepalivedSyntaxError(l.file, l.line, 'unexpected { (no keyword before it)');
        last.block = [];
        stack.push({ list: last.block, opener: last });
        last = undefined;
        i++;
        continue;
      }
      const st: Statement = { keyword: tk.text, args: [], file: l.file, line: l.line };
      i++;
      while (i < toks.length && (toks[i]!.quoted || (toks[i]!.text !== '{' && toks[i]!.text !== '}'))) st.args.push(toks[i++]!.text);
      stack[stack.length - 1]!.list.push(st);
      last = st;
      if (i < toks.length && toks[i]!.text === '{') {
        st.block = [];
        stack.push({ list: st.block, opener: st });
        last = undefined;
        i++;
      }
    }
  }
  if (stack.length > 1) {
    const open = stack[stack.length - 1]!.opener!;
    throw new KeepalivedSyntaxError(open.file, open.line, `block ${open.keyword} is never closed (missing })`);
  }
  return { statements: root, notes, files };
}
