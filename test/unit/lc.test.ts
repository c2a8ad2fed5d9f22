/** The least-connection family's pure parts: candidate tables, IPVS's exact choices and overload
 *  rules, the recount's corrections, ipvsadm -x / -y / --thresholds / the wlc default, and the
 *  plan step that writes lvs_dests. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { candidates, drawnSize, exactPick, lcBetter, lcDraw, overloadAfterBind, overloadAfterUnbind, LC_KIND, type LcDest } from '../../src/sched/lc.js';
import { REAL_NONE } from '../../src/sched/maglev.js';
import { fixedCounts } from '../../src/director/reader.js';
import { parseRule, parseRules, applyCommands, formatSave, formatList } from '../../src/ipvsadm/index.js';
import { buildPlan, emptyApplied } from '../../src/director/plan.js';
import { decode, DEST, SVC } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { validateConfig } from '../../src/model/validate.js';
import type { DirectorConfig } from '../../src/model/types.js';
import { diffConfig } from '../../src/diff/diff.js';

const d = (weight: number, active = 0, inactive = 0, overloaded = false): LcDest => ({ weight, active, inactive, overloaded });
const keyed = (ws: number[]) => ws.map((weight, i) => ({ key: `10.0.0.${i + 1}`, weight }));

test('candidate tables: weighted slots then the heaviest realservers; lc one slot each; fo/ovf by weight, list order on ties', () => {
  const w = candidates('wlc', keyed([1, 2, 3, 0]), 251);
  assert.deepEqual([...w], [0, 1, 1, 2, 2, 2, 2, 1, 0]);
  assert.equal(drawnSize('wlc', w, keyed([1, 2, 3, 0])), 6);
  assert.deepEqual([...candidates('lc', keyed([1, 5, 0]), 251)], [0, 1, 1, 0]);
  assert.deepEqual([...candidates('fo', keyed([2, 3, 3, 0, 1]), 251)], [1, 2, 0, 4]);
  assert.equal(drawnSize('fo', candidates('fo', keyed([2, 3]), 251), keyed([2, 3])), 2);
  assert.deepEqual([...candidates('sed', keyed([0, 0]), 251)], [REAL_NONE]);
  // weights scaled down to the table: every realserver keeps at least one slot
  const big = candidates('wlc', keyed([1, 65535]), 251);
  assert.equal(drawnSize('wlc', big, keyed([1, 65535])), 251);
  assert.ok(big.slice(0, 251).includes(0));
});

test('draws are the kernel twin: murmur3 finalizer of h + k * golden ratio', () => {
  assert.equal(lcDraw(0, 0), 0);
  assert.equal(lcDraw(1, 0), 0x514e28b7);
  assert.notEqual(lcDraw(1, 1), lcDraw(1, 0));
  assert.equal(lcDraw(0xffffffff, 3), lcDraw((0xffffffff + 3 * 0x9e3779b9) % 2 ** 32, 0));
});

test('IPVS\'s exact choices: lc overhead, wlc overhead/weight, sed (active+1)/weight, nq idle first, fo highest weight, ovf active <= weight', () => {
  // lc: active*256 + inactive, weights ignored (but 0 skipped)
  assert.equal(exactPick(LC_KIND.lc, [d(1, 1, 0), d(9, 0, 200), d(0)]), 1);
  assert.equal(exactPick(LC_KIND.lc, [d(1, 0, 0), d(9, 0, 0)]), 0, 'ties: the first in list order');
  // wlc: 256/1 vs 512/3
  assert.equal(exactPick(LC_KIND.wlc, [d(1, 1), d(3, 2)]), 1);
  // sed: (1+1)/1 vs (2+1)/2: the second; wlc would pick by overhead 256 vs 256
  assert.equal(exactPick(LC_KIND.sed, [d(1, 1), d(2, 2)]), 1);
  // nq: an idle one wins even when it is worse by sed
  assert.equal(exactPick(LC_KIND.nq, [d(100, 1), d(1, 0)]), 1);
  assert.equal(exactPick(LC_KIND.fo, [d(2), d(5, 0, 0, true), d(4), d(4)]), 2);
  assert.equal(exactPick(LC_KIND.ovf, [d(1, 1), d(2, 3), d(1, 0)]), 0, 'active 1 <= weight 1 is still taken');
  assert.equal(exactPick(LC_KIND.ovf, [d(1, 2), d(2, 3)]), -1);
  assert.equal(exactPick(LC_KIND.wlc, [d(1, 0, 0, true), d(0)]), -1);
  assert.ok(lcBetter(LC_KIND.wlc, d(2, 1), d(1, 1)));
  assert.ok(!lcBetter(LC_KIND.wlc, d(1, 1), d(1, 1)), 'a tie keeps the first');
});

test('overload: set at the upper threshold, cleared below the lower one, or below 3/4 of the upper without one', () => {
  assert.equal(overloadAfterBind(false, 4, 5), false);
  assert.equal(overloadAfterBind(false, 5, 5), true);
  assert.equal(overloadAfterBind(false, 1000, 0), false, '0: no limit');
  assert.equal(overloadAfterUnbind(true, 2, 5, 2), true, '2 is not below 2');
  assert.equal(overloadAfterUnbind(true, 1, 5, 2), false);
  assert.equal(overloadAfterUnbind(true, 3, 4, 0), true, '3*4 is not below 4*3');
  assert.equal(overloadAfterUnbind(true, 2, 4, 0), false);
});

test('the recount: counts from the table, the overload flag by the same rules, nothing when already right', () => {
  assert.equal(fixedCounts({ active: 2, inactive: 1, overloaded: false }, { active: 2, inactive: 1 }, 0, 0), null);
  assert.deepEqual(fixedCounts({ active: 5, inactive: 0, overloaded: false }, { active: 1, inactive: 0 }, 0, 0), { active: 1, inactive: 0, overloaded: false });
  assert.deepEqual(fixedCounts({ active: 3, inactive: 0, overloaded: true }, { active: 2, inactive: 0 }, 3, 2), { active: 2, inactive: 0, overloaded: true }, 'between the thresholds: kept');
  assert.deepEqual(fixedCounts({ active: 3, inactive: 0, overloaded: true }, { active: 1, inactive: 0 }, 3, 2), { active: 1, inactive: 0, overloaded: false });
  assert.deepEqual(fixedCounts({ active: -1, inactive: 0, overloaded: false }, { active: 3, inactive: 0 }, 3, 0), { active: 3, inactive: 0, overloaded: true });
});

test('ipvsadm: -A / -E without -s is wlc; -x / -y on -a and -e (absent: 0), saved by -S and restored; --thresholds columns', () => {
  const a = parseRule(['-A', '-t', '10.0.0.1:80']);
  assert.equal(a.op === 'add-service' && a.service.scheduler, 'wlc');
  const e = parseRule(['-E', '-t', '10.0.0.1:80']);
  assert.equal(e.op === 'edit-service' && e.service.scheduler, 'wlc');
  const cfg = applyCommands({ services: [] }, parseRules([
    '-A -t 10.0.0.1:80 -s sed',
    '-a -t 10.0.0.1:80 -r 192.168.1.10 -g -w 2 -x 100 -y 50',
    '-a -t 10.0.0.1:80 -r 192.168.1.11 -g --u-threshold=7',
  ].join('\n'), 'rules.txt'));
  const saved = formatSave(cfg);
  assert.equal(saved, [
    '-A -t 10.0.0.1:80 -s sed',
    '-a -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 2 -x 100 -y 50',
    '-a -t 10.0.0.1:80 -r 192.168.1.11:80 -g -w 1 -x 7',
    '',
  ].join('\n'));
  assert.deepEqual(applyCommands({ services: [] }, parseRules(saved, 'again')), cfg, '-S then -R keeps them');
  const edited = applyCommands(cfg, parseRules('-e -t 10.0.0.1:80 -r 192.168.1.10 -w 3', 'x'));
  assert.equal(edited.services[0]!.realservers[0]!.upperThreshold, undefined, '-e without -x: 0, as ipvsadm');
  const conns = new Map([['tcp 10.0.0.1:80 -> 192.168.1.10', { active: 4, inactive: 12 }]]);
  assert.equal(formatList(cfg, { version: '1', noVersionLine: true, conns, thresholds: true }), [
    'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ',
    '  -> RemoteAddress:Port',
    'TCP  10.0.0.1:80 sed',
    '  -> 192.168.1.10:80              100        50         4          12        ',
    '  -> 192.168.1.11:80              7          0          0          0         ',
    '',
  ].join('\n'));
});

test('the plan writes lvs_dests with the realserver and again when only a weight or threshold changes; services carry their kind', () => {
  const cfg = (x: number): DirectorConfig => validateConfig({
    services: [{ protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'nq', flags: [], ops: false,
      realservers: [{ address: '192.168.1.10', port: 80, weight: 2, method: 'dr', mac: '02:00:00:00:00:0a', upperThreshold: x }] }],
  });
  const inputs = (running = emptyApplied(), desired = cfg(5)) => ({ running, desired, l2: new Map(), tunnel: {}, limits: { maxServices: 8, maxReals: 8, maxTableSize: 131071 } });
  const p1 = buildPlan(inputs());
  const reals = p1.steps.find((s) => s.op === 'reals');
  assert.ok(reals && reals.op === 'reals');
  assert.deepEqual(decode(DEST, reals.writes[0]!.dest!), { weight: 2, u_thresh: 5, l_thresh: 0, pad: 0 });
  const sw = p1.steps.find((s) => s.op === 'switch');
  assert.ok(sw && sw.op === 'switch');
  const flags = decode(SVC, sw.writes[0]!.value).flags as number;
  assert.equal(flags & (ABI.LVS_SVC_F_LC | ABI.LVS_SVC_F_THRESH), ABI.LVS_SVC_F_LC | ABI.LVS_SVC_F_THRESH);
  assert.equal((flags >> ABI.LVS_SVC_LC_SHIFT) & ABI.LVS_SVC_LC_MASK, ABI.LVS_LC_NQ);
  assert.equal(buildPlan(inputs(p1.target, cfg(5))).steps.some((s) => s.op === 'reals'), false, 'unchanged: not written');
  const p3 = buildPlan(inputs(p1.target, cfg(9)));
  const again = p3.steps.find((s) => s.op === 'reals');
  assert.ok(again && again.op === 'reals' && decode(DEST, again.writes[0]!.dest!).u_thresh === 9);
});

test('diff shows a threshold change of a realserver', () => {
  const cfg = (x?: number): DirectorConfig => ({ services: [{ protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'wlc', flags: [], ops: false,
    realservers: [{ address: '192.168.1.10', port: 80, weight: 1, method: 'dr', ...(x ? { upperThreshold: x } : {}) }] }] });
  const edited = diffConfig(cfg(), cfg(10)).filter((c) => c.kind === 'realserver-edited');
  assert.deepEqual(edited.map((c) => c.kind === 'realserver-edited' && c.fields), [[{ field: 'upperThreshold', from: undefined, to: 10 }]]);
});
