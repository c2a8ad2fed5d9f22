/** native/netlink.cc: one netlink request and its whole answer, as bytes (src/director/rtnl.ts reads them). */
import { call } from './common.js';

/** Sends `request` (one complete netlink message) on a new socket of `protocol` and returns every
 *  message answering it (same sequence number), concatenated, up to NLMSG_DONE. */
export function netlinkDump(protocol: number, request: Buffer): Buffer {
  return call({ action: `netlink request (protocol ${protocol}, type ${request.readUInt16LE(4)})` }, (n) => n.netlinkDump(protocol, request));
}
