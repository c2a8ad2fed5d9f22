/** The FIB of the namespace LVS-NAT fuzz campaigns run in (test/packet/fuzz-nat.test.ts makes
 *  it): clients with a resolved next hop on c0, by address -> the neighbour's MAC. The generator's
 *  other clients have none (198.51.100.8, 2001:db8:100::8: no neighbour; the rest: no route). */
export const NAT_NEIGHBOURS: Readonly<Record<string, string>> = {
  '198.51.100.7': '02:00:00:00:00:c7', '203.0.113.10': '02:00:00:00:00:ca', '2001:db8:100::7': '02:00:00:00:00:c7',
};
/** c0's MAC: the source of what the FIB sends out of it. */
export const NAT_EGRESS_MAC = '02:00:00:00:0c:01';
