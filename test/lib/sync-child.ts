// Sync transport endpoint for test/e2e/sync-transport.test.ts, run inside a namespace:
//   node dist/test/lib/sync-child.js recv JSON   -> prints "ready", then one JSON line per
//                                                   message ({syncid, version, conns}) or drop
//   node dist/test/lib/sync-child.js send JSON   -> sends, prints the sender's stats, exits
// JSON: the SenderOptions / ReceiverOptions of src/sync/transport.ts, plus for send `batches`
// ([[SyncConn[], syncid], ...], one sender each) and `raw` (hex datagrams sent as they are).
import { SyncReceiver, SyncSender } from '../../src/sync/transport.js';
import type { SyncConn } from '../../src/sync/proto.js';

const [mode, json] = process.argv.slice(2) as [string, string];
const o = JSON.parse(json) as Record<string, unknown>;

if (mode === 'recv') {
  await SyncReceiver.open({
    interface: o.interface as string,
    syncid: o.syncid as number,
    ...(o.group !== undefined ? { group: o.group as string } : {}),
    ...(o.port !== undefined ? { port: o.port as number } : {}),
    ...(o.multicast !== undefined ? { multicast: o.multicast as boolean } : {}),
    onMessage: (m, from) => console.log(JSON.stringify({ syncid: m.syncid, version: m.version, conns: m.conns, from: from.address })),
    onDrop: (reason) => console.log(JSON.stringify({ drop: reason })),
  });
  console.log('ready');
} else {
  const open = (syncid: number) => SyncSender.open({
    interface: o.interface as string,
    syncid,
    ...(o.group !== undefined ? { group: o.group as string } : {}),
    ...(o.port !== undefined ? { port: o.port as number } : {}),
    ...(o.multicast !== undefined ? { multicast: o.multicast as boolean } : {}),
    ...(o.peers !== undefined ? { peers: o.peers as string[] } : {}),
  });
  let sent = 0;
  for (const [conns, syncid] of (o.batches ?? []) as [SyncConn[], number][]) {
    const s = await open(syncid);
    sent += await s.send(conns);
    s.close();
  }
  const raw = (o.raw ?? []) as string[];
  if (raw.length > 0) {
    const s = await open(0); // a raw datagram carries its own syncid
    for (const hex of raw) await s.sendRaw(Buffer.from(hex, 'hex'));
    s.close();
  }
  console.log(JSON.stringify({ sent }));
}
