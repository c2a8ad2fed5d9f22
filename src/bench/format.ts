/** `lvs-xdp bench`'s table (pure: the report in, text out). */
import type { BenchReport } from './program.js';

const f1 = (x: number) => x.toFixed(1);
const f2 = (x: number) => x.toFixed(2);

/** Left-aligned columns, two spaces apart. */
function columns(rows: string[][]): string[] {
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ').trimEnd());
}

export function formatBench(r: BenchReport): string {
  const same = r.program.sameCode
    ? 'same code'
    : `DIFFERENT code: the running program (tag ${r.program.tag}) is not the installed object (tag ${r.program.copyTag}); lvs-xdp upgrade loads the installed one`;
  const lines = [
    `lvs-xdp bench: the running configuration on ${r.interface}, measured on a private copy of program id ${r.program.id} (${same})`,
    `service ${r.service} (${r.method.toUpperCase()}); ${r.rounds} rounds of ${r.repeat.toLocaleString('en')} packets; median [min-max]`,
    '',
    ...columns([
      ['case', 'ns/packet', 'floor (ns/packet)', 'ratio to floor', 'Mpps per core', 'action'],
      ...r.rows.map((x) => [
        x.case, `${f1(x.ns)} [${f1(x.nsMin)}-${f1(x.nsMax)}]`, `${x.floor} (${f1(x.floorNs)})`,
        `${f2(x.ratio)}x [${f2(x.ratioMin)}-${f2(x.ratioMax)}]`, f2(x.mpps), x.action,
      ]),
    ]),
    '',
    ...r.rows.map((x) => `${x.case}: ${x.packet}`),
    `Mpps per core: 1000 / (ns/packet - ${f1(r.loopNs)} ns, the test-run loop's own cost): the program alone, before the driver's share.`,
  ];
  if (r.live) {
    const l = r.live;
    lines.push(
      '',
      `live rate: ${l.sender} sends ${l.frames.toLocaleString('en')} frames per round of ${l.service}'s established flow to ${l.receiver} (${l.mode} mode there), which sends them back; ${l.rounds} rounds`,
      '',
      ...columns([
        ['program on the receiver', 'Mpps back', 'ratio to floor', 'frames lost'],
        ...l.rows.map((x) => [x.name, `${f2(x.mpps)} [${f2(x.mppsMin)}-${f2(x.mppsMax)}]`, x.ratio === undefined ? '' : `${f2(x.ratio)}x [${f2(x.ratioMin!)}-${f2(x.ratioMax!)}]`, `${Math.max(0, x.lostPct).toFixed(2)}%`]),
      ]),
    );
  }
  return lines.join('\n') + '\n';
}
