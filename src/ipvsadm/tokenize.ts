/**
 * Split one rule line into arguments the way a user typed them into a shell, minus the shell:
 * whitespace separates, '...' and "..." group literally (no escapes, no expansion).
 */
export function tokenize(line: string): string[] | { error: string } {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === "'" || ch === '"') {
      const end = line.indexOf(ch, i + 1);
      if (end < 0) return { error: `unterminated ${ch === "'" ? 'single' : 'double'} quote` };
      cur += line.slice(i + 1, end);
      inToken = true;
      i = end;
    } else if (/\s/.test(ch)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
    } else {
      cur += ch;
      inToken = true;
    }
  }
  if (inToken) out.push(cur);
  return out;
}
