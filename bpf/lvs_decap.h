/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_decap.h - every layout and name shared by the realserver's decapsulation program
 * (lvs_decap.bpf.c) and the control plane (src/realserver/).
 *
 * Contract (as for lvs_abi.h):
 *  - Plain C types only, explicit padding, no bitfields: the compiled object's BTF is the
 *    reference the TypeScript layouts (src/realserver/decap-abi.ts) are checked against.
 *  - Counters are defined once, in LVS_DECAP_COUNTER_LIST below. scripts/gen-abi.mjs turns the
 *    list into src/abi/decap-generated.ts and the README glossary; never copy it by hand.
 *  - Addresses are 16 bytes in network order; an IPv4 address sits in the first 4 bytes, the
 *    other 12 are zero.
 */
#ifndef LVS_DECAP_H
#define LVS_DECAP_H

#include <linux/types.h>

#define LVS_DECAP_ABI_VERSION 1

/* Address families in keys (the same numbers as LVS_FAMILY_* in lvs_abi.h). */
#define LVS_DECAP_FAMILY_IPV4 4
#define LVS_DECAP_FAMILY_IPV6 6

/* Default size of lvs_decap_vips (the control plane may resize it before load). */
#define LVS_DECAP_MAX_VIPS 256

/* Outer IPv6 extension headers (hop-by-hop, routing, destination options) skipped at most. */
#define LVS_DECAP_MAX_EXT_HDRS 4

/* Outer header cost per family, as the director writes it (bpf/lvs_fwd.h). */
#define LVS_DECAP_OUTER4_LEN 20
#define LVS_DECAP_OUTER6_LEN 40

/* ---- VIPs this realserver serves: HASH lvs_decap_vips, key -> per-VIP statistics ------------ */

struct lvs_decap_vip_key {
	__u8 addr[16]; /* VIP (the inner destination address) */
	__u8 family;   /* LVS_DECAP_FAMILY_* */
	__u8 pad[3];
};

/* Updated with atomic adds by every CPU: read as plain totals. */
struct lvs_decap_vip_stats {
	__u64 packets; /* packets decapsulated for this VIP */
	__u64 bytes;   /* their inner IP bytes (header and payload) */
};

/*
 * Named outcomes: PERCPU_ARRAY lvs_decap_counters, one __u64 per entry.
 * X(NAME, kind, description): kind is decap (outer header removed, inner packet handed to the
 * kernel), pass (handed to the kernel untouched), drop (XDP_DROP) or event (counted alongside a
 * decap). Every packet increments exactly one decap, pass or drop counter. Append only: the
 * numbers are the map indexes.
 */
#define LVS_DECAP_COUNTER_LIST(X)                                                                  \
	X(DECAP_4IN4, decap, "IPv4 in IPv4 (protocol 4) to a VIP: outer header removed")              \
	X(DECAP_6IN4, decap, "IPv6 in IPv4 (protocol 41) to a VIP: outer header removed")             \
	X(DECAP_4IN6, decap, "IPv4 in IPv6 (next header 4) to a VIP: outer header removed")           \
	X(DECAP_6IN6, decap, "IPv6 in IPv6 (next header 41) to a VIP: outer header removed")          \
	X(ECN_CE, event, "outer header marked CE: mark copied into the inner header (RFC 6040)")      \
	X(PASS_NOT_IP, pass, "not IPv4 or IPv6 (ARP, LLDP, ...)")                                     \
	X(PASS_VLAN, pass, "VLAN-tagged frame: not inspected (attach to the VLAN interface instead)") \
	X(PASS_NOT_TUNNEL, pass, "IP packet that is not IP in IP (protocol / next header not 4 or 41)") \
	X(PASS_UNKNOWN_VIP, pass, "tunnelled, but the inner destination is none of the VIPs")         \
	X(PASS_OUTER_FRAGMENT, pass, "outer header is a fragment: cannot be stripped without reassembly") \
	X(PASS_EXT_HDR_LIMIT, pass, "outer IPv6 extension header chain longer than followed")          \
	X(PASS_MALFORMED_L2, pass, "frame shorter than an Ethernet header")                           \
	X(PASS_MALFORMED_OUTER, pass, "outer header truncated or inconsistent (version, IHL, length, checksum)") \
	X(PASS_MALFORMED_INNER, pass, "inner header truncated, not the family the protocol says, or longer than the outer payload") \
	X(PASS_DECAP_FAILED, pass, "bpf_xdp_adjust_head refused: passed unchanged")                   \
	X(DROP_ECN_NOT_ECT, drop, "outer CE on an inner Not-ECT packet: dropped, as RFC 6040 requires")

#define LVS_DECAP_COUNTER_ENUM(name, kind, desc) LVS_DC_##name,
enum lvs_decap_counter { LVS_DECAP_COUNTER_LIST(LVS_DECAP_COUNTER_ENUM) LVS_DC_MAX };
#undef LVS_DECAP_COUNTER_ENUM

#endif /* LVS_DECAP_H */
