// Field-by-field migration of a struct between two layouts (src/director/migrate.ts): same-named
// fields copied to their new offsets, new fields zero, padding dropped, a removed or narrower
// field refused with its name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convert, fieldMap, sameLayout, type StructLayout } from '../../src/director/migrate.js';

const OLD: StructLayout = {
  size: 32,
  members: [
    { name: 'real', offset: 0, size: 4 }, { name: 'gen', offset: 4, size: 4 },
    { name: 'last_seen_ns', offset: 8, size: 8 }, { name: 'state', offset: 16, size: 1 }, { name: 'pad', offset: 17, size: 15 },
  ],
};
const NEW: StructLayout = {
  size: 24,
  members: [
    { name: 'last_seen_ns', offset: 0, size: 8 }, { name: 'real', offset: 8, size: 4 }, { name: 'gen', offset: 12, size: 4 },
    { name: 'state', offset: 16, size: 2 }, { name: 'flags', offset: 18, size: 1 }, { name: 'pad', offset: 19, size: 5 },
  ],
};

test('fields move to their new offsets by name; a wider field keeps its value; new fields and padding are zero', () => {
  const { map, problems } = fieldMap(OLD, NEW, 'lvs_conn');
  assert.deepEqual(problems, []);
  const old = Buffer.alloc(32, 0xee); // padding full of junk: not carried
  old.writeUInt32LE(7, 0);
  old.writeUInt32LE(3, 4);
  old.writeBigUInt64LE(123456789n, 8);
  old.writeUInt8(2, 16);
  const out = convert(map!, old);
  assert.equal(out.length, 24);
  assert.equal(out.readBigUInt64LE(0), 123456789n);
  assert.equal(out.readUInt32LE(8), 7);
  assert.equal(out.readUInt32LE(12), 3);
  assert.equal(out.readUInt16LE(16), 2);
  assert.deepEqual([...out.subarray(18)], [0, 0, 0, 0, 0, 0]);
});

test('a removed or narrower field is refused, naming the struct and the field', () => {
  const extra: StructLayout = { size: 36, members: [...OLD.members, { name: 'cookie', offset: 32, size: 4 }] };
  assert.deepEqual(fieldMap(extra, NEW, 'map lvs_conns, struct lvs_conn').problems, ['map lvs_conns, struct lvs_conn: field cookie (4 bytes) is not in the new layout']);
  const wide: StructLayout = { size: 24, members: NEW.members.map((m) => (m.name === 'state' ? { ...m, size: 4 } : m)) };
  assert.deepEqual(fieldMap(wide, NEW, 'lvs_conn').problems, ['lvs_conn: field state shrinks from 4 to 2 bytes']);
  assert.equal(fieldMap(wide, NEW, 'lvs_conn').map, undefined);
});

test('sameLayout compares size, names, offsets and sizes', () => {
  assert.ok(sameLayout(NEW, { size: 24, members: NEW.members.map((m) => ({ ...m })) }));
  assert.ok(!sameLayout(NEW, OLD));
  assert.ok(!sameLayout(NEW, { ...NEW, size: 32 }));
});
