// The load-time ABI check refuses an object whose BTF disagrees with our layouts or counters.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { native } from '../../src/native/testing.js';
import { checkAbi, DIRECTOR_OBJECT } from '../../src/dataplane/loader.js';
import { LayoutError } from '../../src/errors.js';

test('the built object passes; a drifted struct or counter is a LayoutError naming it', () => {
  const obj = new (native().BpfObject)();
  obj.open(DIRECTOR_OBJECT);
  try {
    checkAbi(obj);
    const drifted = Object.create(obj, {
      btfStruct: { value: (n: string) => {
        const s = obj.btfStruct(n);
        return n === 'lvs_conn' ? { ...s, size: s.size + 8 } : s;
      } },
      btfEnum: { value: (n: string) => obj.btfEnum(n).map((v) => (v.name === 'LVS_C_FWD_TUN' ? { ...v, value: 99 } : v)) },
    });
    assert.throws(() => checkAbi(drifted), (e: unknown) => {
      assert.ok(e instanceof LayoutError);
      assert.match(e.message, /struct lvs_conn: size 32 in BTF, 24 here/);
      assert.match(e.message, /counter FWD_TUN: index 99 in BTF/);
      return true;
    });
  } finally {
    obj.close();
  }
});
