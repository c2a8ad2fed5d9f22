/**
 * ipvsadm's short options as popt reads them: letters may be bundled (`-Ln`, `-At VIP:80`,
 * `-gw 2`) and a value may be attached (`-t10.0.0.1:80`, `-w2`, `-p300`). Expanding a bundle
 * into one word per option (and one per value) lets every later stage see `-X value` only.
 * Pure and dependency-free: the CLI's ipvsadm detection uses it before loading anything.
 */

type Arity = 'none' | 'required' | 'optional';

/** Every short option of ipvsadm 1.31 (rule, list and daemon commands), by arity. */
const SHORT: Readonly<Record<string, Arity>> = {
  A: 'none', E: 'none', D: 'none', C: 'none', a: 'none', e: 'none', d: 'none',
  L: 'none', l: 'none', Z: 'none', S: 'none', R: 'none', n: 'none', c: 'none', h: 'none', v: 'none',
  o: 'none', g: 'none', i: 'none', m: 'none', 6: 'none',
  t: 'required', u: 'required', f: 'required', s: 'required', M: 'required', b: 'required',
  r: 'required', w: 'required', x: 'required', y: 'required',
  p: 'optional',
};

/** Long options whose value is the next word (so that word is never taken for options). */
const LONG_WITH_VALUE = new Set([
  '--tcp-service', '--udp-service', '--fwmark-service', '--sctp-service', '--scheduler', '--netmask',
  '--sched-flags', '--real-server', '--weight', '--u-threshold', '--l-threshold', '--pe', '--mac',
  '--tun-type', '--tun-port',
  '--pin-dir', '--state-dir',
]);

/**
 * One word per option: `-Lnt X` -> `-L -n -t X`, `-w2` -> `-w 2`. An unknown letter stops the
 * expansion and is kept with the rest of its word (`-Lq` -> `-L -q`), so the error names it.
 * Values (attached, or the word after an option that needs one) are never expanded.
 */
export function expandShortOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word.startsWith('--') || !word.startsWith('-') || word.length < 2) {
      out.push(word);
      if (LONG_WITH_VALUE.has(word) && i + 1 < argv.length) out.push(argv[++i]!);
      continue;
    }
    for (let j = 1; j < word.length; j++) {
      const arity = SHORT[word[j]!];
      if (arity === undefined) {
        out.push(`-${word.slice(j)}`);
        break;
      }
      out.push(`-${word[j]}`);
      if (arity === 'none') continue;
      const rest = word.slice(j + 1);
      if (rest !== '') out.push(rest);
      else if (arity === 'required' && i + 1 < argv.length) out.push(argv[++i]!);
      break;
    }
  }
  return out;
}
