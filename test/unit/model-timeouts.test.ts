/** Connection-state timeouts: IPVS's defaults in the model, overridden per setting, and what the data plane is given. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TIMEOUTS, effectiveTimeouts } from '../../src/model/index.js';
import { compileDirector } from '../../src/dataplane/compile.js';
import { decode, CFG } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';

test('timeouts: IPVS defaults; tcp, tcp-fin and udp are settable, SYN_RECV and CLOSE are not', () => {
  assert.deepEqual(effectiveTimeouts(), { synRecv: 60, tcp: 900, tcpFin: 120, close: 10, udp: 300 });
  assert.deepEqual(effectiveTimeouts({ tcp: 7200, udp: 30 }), { synRecv: 60, tcp: 7200, tcpFin: 120, close: 10, udp: 30 });
  // An explicitly absent setting is the default, never "undefined seconds".
  assert.deepEqual(effectiveTimeouts({ tcpFin: undefined }), DEFAULT_TIMEOUTS);
  assert.throws(() => { (DEFAULT_TIMEOUTS as { tcp: number }).tcp = 1; }, TypeError);
});

test('the compiled lvs_cfg carries the effective timeouts, indexed by LVS_CS_*', () => {
  const limits = { maxServices: 1, maxReals: 1, maxTableSize: 251 };
  for (const timeouts of [undefined, { tcp: 3600, tcpFin: 30, udp: 5 }]) {
    const c = compileDirector({ services: [], settings: timeouts ? { timeouts } : {} }, () => undefined, limits);
    const raw = decode(CFG, c.cfg).timeout_s as Uint8Array;
    const at = (state: keyof typeof ABI) => Buffer.from(raw).readUInt32LE(ABI[state] * 4);
    const t = effectiveTimeouts(timeouts);
    assert.deepEqual(
      [at('LVS_CS_SYN_RECV'), at('LVS_CS_ESTABLISHED'), at('LVS_CS_FIN_WAIT'), at('LVS_CS_CLOSE'), at('LVS_CS_UDP')],
      [t.synRecv, t.tcp, t.tcpFin, t.close, t.udp],
    );
  }
});
