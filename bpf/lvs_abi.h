/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_abi.h - every layout and name shared by the XDP data plane and the control plane.
 *
 * Contract:
 *  - Plain C types only, explicit padding, no bitfields: the compiled object's BTF is the
 *    reference the TypeScript codecs are checked against (test/unit/abi-btf.test.ts and at load).
 *  - Counters and drop reasons (LVS_COUNTER_LIST) and connection states (LVS_CONN_STATE_LIST)
 *    are defined once, below; the maps, their default sizes and the load-time knobs once, in
 *    lvs_maps.h. scripts/gen-abi.mjs turns them into src/abi/generated.ts (the object's typed
 *    skeleton) and the README glossary; never copy them by hand.
 *  - Addresses are 16 bytes in network order; an IPv4 address sits in the first 4 bytes, the
 *    other 12 are zero. Ports are network order.
 */
#ifndef LVS_ABI_H
#define LVS_ABI_H

#include <linux/types.h>

/* Bumped whenever a pinned map, a struct or a flag's meaning changes: a director running another
 * version is taken over by `lvs-xdp upgrade`. 2: lvs_strays, service tombstones and gone
 * realserver slots (connections survive deletions), accepted destination MACs (lvs_l2_ifs,
 * lvs_l2_addrs). 3: firewall-mark services (lvs_fwmarks, LVS_SVC_F_MARKED, LVS_CFG_F_FWMARK); lvs_dests and
 * lvs_real_conns (least-connection family, thresholds; a configuration map and a live one), service
 * flags LVS_SVC_F_LC / LVS_SVC_F_THRESH; LVS-NAT (lvs_real port / vport / vip, reply entries in
 * lvs_conns keyed with lvs_flow_key.dir, OutPkts / OutBytes in lvs_stats). 4: connection sync
 * (lvs_sync_events, LVS_CFG_F_SYNC and lvs_cfg.sync_refresh_s, lvs_svc.fwmark,
 * LVS_SVC_F_ALLPORTS); lvs_epoch (bumped by every control-plane write; the per-CPU flow cache,
 * lvs_flowcache.h, trusts only its own epoch). 5: lvs_synrecv (a TCP SYN of a DR / Tun flow is a
 * SYN_RECV slot there, entered in lvs_conns at the flow's next packet; lvs_synrecv.h). */
#define LVS_ABI_VERSION 5

/*
 * Test only: `make -C bpf test-objects` builds the director with -DLVS_TEST_OLD_ABI=<version>
 * to stand in for an older lvs-xdp: every older version forwards whatever destination MAC a frame
 * has (no lvs_l2_ifs / lvs_l2_addrs, LVS_TEST_NO_L2); version 0 also had other lvs_conn and
 * lvs_real layouts (LVS_TEST_OLD_LAYOUT), so the upgrade tests (test/packet/upgrade.test.ts)
 * migrate across a real layout change. LVS_TEST_CONN_EXTRA adds an lvs_conn field this build does
 * not have (an upgrade must refuse it). Never in a release.
 */
#ifdef LVS_TEST_OLD_ABI
#undef LVS_ABI_VERSION
#define LVS_ABI_VERSION LVS_TEST_OLD_ABI
#define LVS_TEST_NO_L2
#if LVS_TEST_OLD_ABI == 0
#define LVS_TEST_OLD_LAYOUT
#endif
#endif

/* Address families as stored in keys and values (not AF_* numbers: these are stable). */
#define LVS_FAMILY_IPV4 4
#define LVS_FAMILY_IPV6 6

/* Table slot value meaning "no realserver": a service with no usable realserver. */
#define LVS_REAL_NONE 0xffffffffu

/* ---- Virtual services: HASH lvs_services, key lvs_svc_key -> lvs_svc ---------------------- */

struct lvs_svc_key {
	__u8 addr[16];  /* VIP */
	__u16 port;     /* network order; 0 = all-ports service (looked up second) */
	__u8 proto;     /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;    /* LVS_FAMILY_* */
};

/* Which flow fields feed the scheduling hash (the service's table is indexed by it). */
#define LVS_HF_SADDR (1u << 0)
#define LVS_HF_SPORT (1u << 1)
#define LVS_HF_DADDR (1u << 2)
#define LVS_HF_DPORT (1u << 3)
#define LVS_HF_PROTO (1u << 4)

#define LVS_SVC_F_OPS     (1u << 0) /* one-packet scheduling: every packet scheduled, no conn entry */
#define LVS_SVC_F_PERSIST (1u << 1) /* persistence templates (ipvsadm -p / -M) */
#define LVS_SVC_F_ROTATE  (1u << 2) /* rr / wrr: table walked by a per-CPU cursor, not hashed */
/* ---- connection survival (issue 12): appended flags ---- */
/* Tombstone of a deleted service whose connection entries have not all expired: packets of
 * those entries are dropped (drop_service_gone), a flow without one is not this service's (the
 * all-ports service of the VIP, else the kernel). No table; the control plane removes it once
 * the longest timeout has passed, or turns it back into the service when it is added again. */
#define LVS_SVC_F_GONE    (1u << 3)
/* ---- firewall-mark services (issue 15): appended flags ---- */
/* A port service that a mark with a service covers (some of its traffic classifies to that
 * mark): its packets are classified first, as IPVS looks the mark up before (proto, VIP, port).
 * Port services no mark covers never pay the classification. */
#define LVS_SVC_F_MARKED  (1u << 6)
/* ---- connection sync (issue 14): appended flags ---- */
/* An all-ports service (port 0): its persistence templates have vport 0 (IPVS's port-zero
 * template). The packet path does not read it; it is copied into sync events. */
#define LVS_SVC_F_ALLPORTS (1u << 7)

/* ---- least-connection family and thresholds (issue 15): appended flags ---- */
/* The service's table holds scheduling candidates (lvs_lc.h), not the answer: lc, wlc, sed, nq
 * and twos draw LVS_LC_DRAWS weighted random slots (one slot per weight unit) and keep the cheaper
 * of the first two usable distinct realservers by the scheduler's cost; fo and ovf walk a list
 * sorted by weight (highest first) and take the first usable one. Which cost: the LVS_LC_* kind
 * in flags bits LVS_SVC_LC_SHIFT.. (4 bits). */
#define LVS_SVC_F_LC      (1u << 4)
/* Some realserver of this service has an upper threshold (ipvsadm -x): a table or rr pick that is
 * overloaded (lvs_real_conns.overloaded) is not taken. Without it the fast path reads no counts. */
#define LVS_SVC_F_THRESH  (1u << 5)
#define LVS_SVC_LC_SHIFT  8
#define LVS_SVC_LC_MASK   0xfu
#define LVS_LC_LC   1 /* least (active << 8) + inactive, as IPVS's ip_vs_dest_conn_overhead */
#define LVS_LC_WLC  2 /* least overhead / weight */
#define LVS_LC_SED  3 /* least (active + 1) / weight */
#define LVS_LC_NQ   4 /* an idle realserver (no active connection) first, else sed */
#define LVS_LC_TWOS 5 /* two weighted random draws (not necessarily distinct), least overhead / weight */
#define LVS_LC_FO   6 /* the highest weight not overloaded */
#define LVS_LC_OVF  7 /* the highest weight not overloaded whose active connections <= its weight */
#define LVS_LC_DRAWS 4 /* weighted random slots drawn per new flow at most (lc wlc sed nq twos) */
#define LVS_LC_WALK  8 /* fo / ovf list entries (and rr slots past an overloaded one) looked at */

struct lvs_svc {
	__u32 id;              /* index into lvs_svc_stats and lvs_rr_cursor; persistence key part */
	__u32 table_slot;      /* index into lvs_tables (array of maps) holding this service's table */
	__u32 table_size;      /* entries in that table; the hash is taken modulo this */
	__u32 persist_timeout; /* seconds a persistence template lives after its last use */
	__u8 persist_mask[16]; /* client netmask for persistence grouping (ipvsadm -M) */
	__u16 flags;           /* LVS_SVC_F_* */
	__u8 hash_fields;      /* LVS_HF_* */
	__u8 pad;
	/* connection sync (issue 14): the firewall mark of a firewall-mark service (0: a port
	 * service), reported in sync events as IPVS syncs cp->fwmark. Was `reserved` (always 0). */
	__u32 fwmark;
};

/* ---- Realservers (IPVS "destinations": one per service and RIP) : ARRAY lvs_reals --------- */

#define LVS_FWD_DR  0 /* gatewaying: rewrite destination MAC, send on L2 */
#define LVS_FWD_TUN 1 /* ipip: encapsulate in an outer IPv4 / IPv6 header to the RIP */
/* masquerading (LVS-NAT, lvs_nat.h): destination VIP:vport rewritten to RIP:port, the
 * realserver's replies (routed through the director) rewritten back to VIP:vport */
#define LVS_FWD_NAT 2

#define LVS_REAL_F_ACTIVE   (1u << 0) /* slot in use; a deleted realserver has flags 0 */
#define LVS_REAL_F_QUIESCED (1u << 1) /* weight 0: keeps its flows, gets no new ones */
/* ---- connection survival (issue 12): appended flags ---- */
/* Deleted realserver whose entries wait for it (ACTIVE clear, gen and forwarding data kept):
 * their packets are dropped (drop_real_gone), never rescheduled; the same realserver added again
 * gets the slot back and its connections resume. */
#define LVS_REAL_F_GONE     (1u << 2)

#ifndef LVS_TEST_OLD_LAYOUT
struct lvs_real {
	__u8 addr[16];  /* RIP */
	__u8 mac[6];    /* DR: the realserver's MAC; Tun: the next hop's MAC */
	__u8 smac[6];   /* source MAC when ifindex != 0 (the egress interface's MAC) */
	__u8 family;    /* LVS_FAMILY_* of the RIP */
	__u8 method;    /* LVS_FWD_* */
	__u16 flags;    /* LVS_REAL_F_* */
	__u32 gen;      /* bumped by the control plane each time the slot is (re)assigned */
	__u32 ifindex;  /* egress interface via lvs_tx_ports; 0 = back out the ingress one (XDP_TX) */
	__u32 svc_id;   /* the service this destination belongs to */
	/* LVS-NAT only (zero otherwise): the flow's realserver side and the service side its
	 * replies are rewritten back to. */
	__u16 port;     /* realserver port, network order; 0 = the client's destination port */
	__u16 vport;    /* the service's port, network order; 0 = an all-ports service */
	__u8 vip[16];   /* the service's VIP: the source of the replies */
};
#else
struct lvs_real { /* test only: the "older" layout (gen after ifindex, one more reserved word) */
	__u8 addr[16];
	__u8 mac[6];
	__u8 smac[6];
	__u8 family;
	__u8 method;
	__u16 flags;
	__u32 ifindex;
	__u32 gen;
	__u32 svc_id;
	__u32 reserved;
	__u32 reserved2;
	__u16 port;     /* LVS-NAT's fields, which this build's code reads */
	__u16 vport;
	__u8 vip[16];
};
#endif

/* ---- least-connection family and thresholds (issue 15): ARRAYs by realserver index ----
 * lvs_dests: what the scheduler needs of a realserver beyond lvs_real, written by the control
 * plane with the slot (lvs_reals' 'reals' step). lvs_real_conns: its live connections as IPVS
 * counts them (ActiveConn = TCP ESTABLISHED, InActConn = every other live state, strays
 * included), kept by the data plane on new, moved-on, promoted, expired and reused entries
 * (atomic adds, so they may go below zero for a moment: read as 0) and set to a recount of the
 * connection table by the control plane (`run` every LVS_LC_RECONCILE_S; entries that expire or
 * are evicted without a packet are seen only there). */
#define LVS_LC_RECONCILE_S 2

struct lvs_dest {
	__u32 weight;   /* ipvsadm -w; 0 never appears in a table */
	__u32 u_thresh; /* ipvsadm -x: overloaded once active + inactive >= this (0: no limit) */
	__u32 l_thresh; /* ipvsadm -y: not overloaded again below this (0: below 3/4 of u_thresh) */
	__u32 pad;
};

struct lvs_real_conns {
	__s32 active;     /* ActiveConn */
	__s32 inactive;   /* InActConn */
	__u32 overloaded; /* IPVS's IP_VS_DEST_F_OVERLOAD: set at the upper threshold, cleared below the lower */
	__u32 pad;
};

/* ---- Connection table: LRU_HASH lvs_conns, lvs_flow_key -> lvs_conn ------------------------ */

struct lvs_flow_key {
	__u8 saddr[16]; /* client */
	__u8 daddr[16]; /* VIP */
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 family;
	__u16 dir;      /* LVS_DIR_*: 0 for every client flow */
};

/* LVS-NAT keeps a second entry per flow in lvs_conns, keyed by the reply's own tuple
 * (RIP, client, rport, cport) with dir = LVS_DIR_REPLY, so that a reply finds its flow in one
 * lookup; its value mirrors the client entry's (lvs_nat.h). */
#define LVS_DIR_CLIENT 0
#define LVS_DIR_REPLY  1

/*
 * Connection states, inferred from the client's packets only (as IPVS does for DR and Tun).
 * X(NAME, timeout, description): timeout is the control plane's name of the idle timeout that
 * lvs_cfg.timeout_s[LVS_CS_NAME] holds (none: the state is never stored). scripts/gen-abi.mjs
 * turns the list into STATE_NAMES and TIMEOUT_STATES (src/abi/generated.ts). Append only.
 */
#define LVS_CONN_STATE_LIST(X)                                                                     \
	X(NONE, none, "no state yet: a stray (lvs_strays), never a connection entry")                                      \
	X(SYN_RECV, synRecv, "SYN seen")                                                              \
	X(ESTABLISHED, tcp, "ACK seen after the SYN, or a stray seen again (promoted)")      \
	X(FIN_WAIT, tcpFin, "FIN seen")                                                               \
	X(CLOSE, close, "RST seen")                                                                   \
	X(UDP, udp, "UDP flow")

#define LVS_CONN_STATE_ENUM(name, timeout, desc) LVS_CS_##name,
enum lvs_conn_state { LVS_CONN_STATE_LIST(LVS_CONN_STATE_ENUM) LVS_CS_MAX };
#undef LVS_CONN_STATE_ENUM

/* ---- connection survival (issue 12): strays (lvs_strays, lvs_maps.h) ---- */
#define LVS_STRAY_PROMOTE_S 1  /* a stray seen again more than this later is a flow: ESTABLISHED */
#define LVS_STRAY_TIMEOUT_S 10 /* a stray not promoted by then is forgotten */

#ifndef LVS_TEST_OLD_LAYOUT
struct lvs_conn {
	__u64 last_seen_ns; /* bpf_ktime_get_ns() of the last packet, refreshed at most once a second */
	__u32 real;         /* index into lvs_reals */
	__u32 gen;          /* lvs_real.gen when scheduled: a reused slot does not inherit flows */
	__u8 state;         /* LVS_CS_* */
	__u8 pad[7];
};
#else
struct lvs_conn { /* test only: the "older" layout (other order, 32 bytes) */
	__u32 real;
	__u32 gen;
	__u64 last_seen_ns;
	__u8 state;
#ifdef LVS_TEST_CONN_EXTRA
	__u8 pad[3];
	__u32 test_cookie; /* a field this build does not carry: the upgrade refuses */
	__u8 pad2[8];
#else
	__u8 pad[15];
#endif
};
#endif

/* ---- SYN_RECV connections of DR / Tun flows: ARRAY lvs_synrecv of struct lvs_synrecv ----------
 * Buckets of LVS_SYNRECV_WAYS slots (ways) chosen by a hash of the flow keyed with the director's
 * own cfg_key_synrecv0..2 (lvs_maps.h, lvs_synrecv.h; not lvs_cfg's shared hash_seed): bucket b
 * is slots b * LVS_SYNRECV_WAYS .. + LVS_SYNRECV_WAYS - 1, so max_entries is a multiple of
 * LVS_SYNRECV_WAYS. A way is written whole by the SYN, cleared (all
 * zero) when the flow's next packet enters it in lvs_conns. check: LVS_SYNRECV_CHECK_SEED and words 0..14 of the slot as
 * little-endian u32s, each step h = rotl(h ^ w, 13) * 0x9e3779b1, then h ^ (h >> 16); a slot whose
 * check differs (torn by two CPUs writing at once, or empty) holds no connection. */
#define LVS_SYNRECV_CHECK_SEED 0x2545f491u
#define LVS_SYNRECV_WAYS       4 /* 4 x 64 B: a bucket is 256 B, aligned */

struct lvs_synrecv {
	struct lvs_flow_key key; /* the flow (client side, dir LVS_DIR_CLIENT) */
	__u64 last_seen_ns;      /* the SYN's time (a retransmitted SYN refreshes it) */
	__u32 real;              /* index into lvs_reals */
	__u32 gen;               /* lvs_real.gen when scheduled */
	__u32 svc_id;            /* the service that scheduled it */
	__u32 check;             /* see above */
};

/* ---- Persistence templates: LRU_HASH lvs_persist; fragments: LRU_HASH lvs_frags ----------- */

struct lvs_persist_key {
	__u8 caddr[16]; /* client address masked with lvs_svc.persist_mask */
	__u32 svc_id;
	__u8 family;
	__u8 pad[3];
};

/* A flow pinned to a realserver: persistence template or first-fragment state. */
struct lvs_pin {
	__u64 last_seen_ns;
	__u32 real;
	__u32 gen;
};

struct lvs_frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 id; /* IPv4 identification (16 bits) or IPv6 fragment identification */
	__u8 proto;
	__u8 family;
	__u16 pad;
};

/* ---- Runtime settings: ARRAY lvs_cfg, one entry (changeable without reload) --------------- */

struct lvs_cfg {
	__u8 tun_src4[4];         /* outer source address for IPv4 tunnels */
	__u8 tun_src6[16];        /* outer source address for IPv6 tunnels */
	__u32 hash_seed;          /* same on every director that must agree on flows */
	__u32 timeout_s[LVS_CS_MAX]; /* idle timeout per connection state, seconds (index LVS_CS_*) */
	__u16 tun_mtu;            /* MTU toward Tun realservers; larger packets get ICMP too-big */
	__u8 tun_ttl;             /* outer TTL / hop limit */
	__u8 flags;               /* LVS_CFG_F_* */
	/* connection sync (issue 14): with LVS_CFG_F_SYNC, a live ESTABLISHED or UDP entry is
	 * reported again each time its refresh crosses a multiple of this many seconds (IPVS's
	 * sync_refresh_period); 0: on state changes only. */
	__u32 sync_refresh_s;
};

#define LVS_CFG_F_VIP_FILTER (1u << 0) /* lvs_vip_filter is maintained: use it before lookups */
/* ---- connection survival (issue 12): appended flags ---- */
/* IPVS's expire_quiescent_template: a template to a quiesced realserver is not used (its client
 * is scheduled anew); without it persistent clients stay on a quiesced realserver, as in IPVS. */
#define LVS_CFG_F_EXPIRE_QUIESCENT (1u << 1)
/* ---- firewall-mark services (issue 15): appended flags ---- */
/* lvs_fwmarks holds classification entries: a packet that finds no port service (or a port
 * service flagged LVS_SVC_F_MARKED) is classified. Clear: nobody pays the lookup. */
#define LVS_CFG_F_FWMARK (1u << 2)

/* ---- Firewall-mark services: LPM_TRIE lvs_fwmarks, lvs_fwmark_key -> lvs_fwmark_val ----------
 *
 * XDP runs before netfilter, so no skb->mark exists: lvs-xdp classifies itself. A mark is a set of
 * (protocol, destination prefix, destination port range); the control plane compiles the marks
 * into one trie entry per (family, protocol, prefix), whose value lists the port ranges of that
 * prefix and of every shorter prefix covering it (longest prefix first), so the one longest-prefix
 * match holds every range that may apply. The first range holding the destination port names the
 * mark. A firewall-mark service is the lvs_services entry of key {addr = the mark (4 bytes,
 * network order), port 0, proto LVS_PROTO_FWMARK, family}; persistence templates are per service,
 * so one client's template covers every port and address of the mark (IPVS's fwmark templates).
 */
#define LVS_PROTO_FWMARK   0 /* lvs_svc_key.proto of a firewall-mark service (no real protocol is 0 here) */
#define LVS_FWMARK_RANGES  8 /* port ranges one trie entry holds (its own and inherited) */

struct lvs_fwmark_key {
	__u32 prefixlen; /* 16 (family, proto) + the address prefix length */
	__u8 family;     /* LVS_FAMILY_* */
	__u8 proto;      /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 addr[16];   /* destination prefix, network order (IPv4 in the first 4 bytes) */
	__u8 pad[2];
};

struct lvs_fwmark_val {
	__u16 lo[LVS_FWMARK_RANGES];   /* destination port range start, host order, inclusive */
	__u16 hi[LVS_FWMARK_RANGES];   /* range end, inclusive */
	__u32 mark[LVS_FWMARK_RANGES]; /* the mark of the packets in that range */
	__u32 count;                   /* ranges in use, first match wins */
};

/* ---- LVS-NAT (issue 15) ---- */
/* Some realserver is LVS-NAT: a packet to no service may be a NAT reply (one lvs_conns lookup
 * by its own tuple). Without it, traffic to no service pays nothing for NAT. */
#define LVS_CFG_F_NAT (1u << 3)

/* ---- connection sync (issue 14): RINGBUF lvs_sync_events of struct lvs_sync_event ----------
 * With LVS_CFG_F_SYNC, a client packet reports its connection entry where IPVS's master would
 * sync it (ip_vs_sync_conn_needed; lvs_sync.h): a TCP entry moving into ESTABLISHED, FIN_WAIT or
 * CLOSE (never SYN_RECV: a SYN flood reports nothing), a stray promoted, a new UDP entry, and a
 * live ESTABLISHED / UDP entry once per lvs_cfg.sync_refresh_s. Clear: an established flow pays
 * one flag test per entry refresh (at most once a second), nothing per packet. A full ring loses
 * the event (sync_lost), never the packet. The record carries what the control plane needs to
 * send IPVS's sync entry (and its persistence template) without looking up any index that a
 * configuration change could move meanwhile. */
#define LVS_CFG_F_SYNC (1u << 4)

#define LVS_SYNC_F_PERSIST  (1u << 0) /* the service is persistent: a template goes with it */
#define LVS_SYNC_F_ALLPORTS (1u << 1) /* the service is an all-ports service (port 0) */

struct lvs_sync_event {
	__u8 caddr[16];   /* client (lvs_flow_key.saddr) */
	__u8 vaddr[16];   /* VIP: the packet's destination */
	__u8 daddr[16];   /* realserver: lvs_real.addr when the event was made */
	__u8 pcaddr[16];  /* persistence: the client address masked with the service's netmask */
	__u16 cport;      /* network order */
	__u16 vport;      /* network order */
	__u16 rport;      /* lvs_real.port, network order: 0 = the client's destination port (DR, Tun) */
	__u8 proto;       /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 family;      /* LVS_FAMILY_* of the flow */
	__u8 dfamily;     /* LVS_FAMILY_* of the realserver (lvs_real.family) */
	__u8 method;      /* LVS_FWD_* (lvs_real.method) */
	__u8 state;       /* LVS_CS_*: the entry's state after this packet */
	__u8 flags;       /* LVS_SYNC_F_* */
	__u32 fwmark;     /* lvs_svc.fwmark: the firewall mark of a firewall-mark service, else 0 */
	__u32 persist_timeout; /* lvs_svc.persist_timeout, seconds (0: not persistent) */
};

/* ---- VIP filter: ARRAY lvs_vip_filter, LVS_VIP_FILTER_WORDS x __u64 -------------------------
 *
 * A test that costs a few ns before the service lookup (~31 ns per lvs_services lookup here):
 * traffic to addresses that carry no virtual service is passed without any hash lookup, and an
 * address with only port services (or only all-ports services) is looked up once, not twice.
 * Used only while lvs_cfg.flags has LVS_CFG_F_VIP_FILTER.
 *
 * Slot of an address: its 16 bytes as four little-endian u32 words w0..w3 (an IPv4 address is
 * w0, the rest zero), slot = ((w0 ^ w1 ^ w2 ^ w3) * 0x9e3779b1 mod 2^32) >> (32 - SLOT_BITS).
 * Word slot / 32 holds two bits per slot, at bit (slot % 32) * 2 + LVS_VF_*_SHIFT. Addresses
 * that share a slot share its bits: a set bit means "maybe", a clear bit "certainly not".
 *
 * The control plane sets a service's bits before it writes its lvs_services entry, clears bits
 * only after the entries that needed them are deleted, and sets LVS_CFG_F_VIP_FILTER only when
 * the filter covers every service present.
 */
#define LVS_VIP_FILTER_SLOT_BITS 17
#define LVS_VIP_FILTER_WORDS     4096 /* 2^17 slots x 2 bits / 64 */
#define LVS_VIP_FILTER_MULT      0x9e3779b1
#define LVS_VF_PORT_SHIFT        0    /* a service with a port (not 0) on this address */
#define LVS_VF_ALLPORTS_SHIFT    1    /* an all-ports service (port 0) on this address */

/* ---- Accepted destination MACs: ARRAY lvs_l2_ifs (by ingress ifindex) -> lvs_l2_if,
 *      and HASH lvs_l2_addrs, lvs_l2_key -> lvs_l2_addr -----------------------------------------
 *
 * A frame is forwarded only when its destination MAC is one its ingress interface accepts: the
 * attached interface's own, those of the devices stacked on it (macvlan and VRRP vmac uppers,
 * VLANs, the bridge or bond it is a port of) and, for a bond, its slaves'. The control plane
 * writes only unicast MACs; the data plane refuses group MACs (broadcast, multicast) anyway.
 *
 * lvs_l2_addrs holds every accepted pair (the record status and doctor read). The check itself
 * reads lvs_l2_ifs: an ARRAY lookup (inlined by the JIT) of the ingress ifindex, whose entry holds
 * the first LVS_L2_IF_MACS accepted MACs, the attached interface's own in slot 0, compared inline.
 * Only an interface with more accepted MACs than that (`more`, for the rest) or an ingress ifindex
 * of LVS_L2_IF_SLOTS or above pays the lvs_l2_addrs hash lookup.
 */
#define LVS_L2_IF_SLOTS 4096 /* ingress ifindexes checked through lvs_l2_ifs; above: lvs_l2_addrs */
#define LVS_L2_IF_MACS  4    /* accepted MACs held inline per interface: its own + 3 uppers */

/* One MAC as two loads of the frame's first 6 bytes: bytes 0-3 and 4-5 in frame order. */
struct lvs_l2_mac {
	__u32 hi;
	__u16 lo;
	__u16 pad;
};

struct lvs_l2_if {
	struct lvs_l2_mac macs[LVS_L2_IF_MACS]; /* the first `count` are accepted */
	__u8 egress[6]; /* source MAC of frames sent back out (XDP_TX): the attached interface's */
	__u8 count;     /* 0: this interface accepts nothing (not attached) */
	__u8 more;      /* 1: more accepted MACs than macs[] holds: look the rest up in lvs_l2_addrs */
};

struct lvs_l2_key {
	__u32 ifindex;  /* ctx->ingress_ifindex (a bond's slave, when the bond runs XDP natively) */
	__u8 mac[6];    /* destination MAC of the frame */
	__u16 pad;
};

#define LVS_L2_OWN   0 /* the attached interface's own MAC */
#define LVS_L2_UPPER 1 /* a device stacked on it: macvlan, VLAN, bridge or bond master */
#define LVS_L2_VRRP  2 /* a VRRP virtual MAC (00:00:5e:00:01:VRID, 00:00:5e:00:02:VRID for v6) */
#define LVS_L2_LOWER 3 /* a bond's slave (balance-alb / -tlb hand out the slaves' own MACs) */

struct lvs_l2_addr {
	__u8 egress[6]; /* source MAC of frames sent back out (XDP_TX): the attached interface's */
	__u8 kind;      /* LVS_L2_*: why it is accepted (shown by status and doctor) */
	__u8 pad;
};

/* ---- Statistics: PERCPU_ARRAY lvs_svc_stats (by svc id), lvs_real_stats (by real index) ---- */

struct lvs_stats {
	__u64 packets;
	__u64 bytes;   /* L3 bytes (IP header and payload), as IPVS counts */
	__u64 conns;   /* scheduling decisions: new connections, or packets of OPS services */
	__u64 out_packets; /* LVS-NAT replies (IPVS OutPkts); DR and Tun never see replies */
	__u64 out_bytes;   /* their L3 bytes as they leave (IPVS OutBytes) */
};

/*
 * Named outcomes and drop reasons: PERCPU_ARRAY lvs_counters, one __u64 per entry.
 * X(NAME, kind, description): kind is pass (handed to the kernel untouched), fwd (forwarded to a
 * realserver), event (counted alongside a forward), drop (XDP_DROP), or tx (answered by the
 * director itself). Append only: the numbers are the map indexes.
 */
#define LVS_COUNTER_LIST(X)                                                                        \
	X(PASS_NOT_IP, pass, "not IPv4 or IPv6 (ARP, LLDP, ...): handed to the kernel")               \
	X(PASS_NOT_VIP, pass, "IP traffic that matches no virtual service")                           \
	X(PASS_FAMILY_DISABLED, pass, "IPv6 packet while IPv6 support is off at load time")           \
	X(PASS_MALFORMED_L2, pass, "truncated Ethernet or VLAN header, or more than two VLAN tags")   \
	X(PASS_MALFORMED_L3, pass, "truncated or inconsistent IPv4/IPv6 header (version, IHL, length)") \
	X(PASS_MALFORMED_L4, pass, "TCP/UDP/ICMP header truncated or bad (data offset < 5)")          \
	X(PASS_EXT_HDR_LIMIT, pass, "IPv6 extension header chain longer than the parser follows")     \
	X(PASS_FRAG_NO_STATE, pass, "non-first fragment with no first fragment seen (or expired)")    \
	X(FWD_DR, fwd, "forwarded by LVS-DR (MAC rewrite)")                                           \
	X(FWD_TUN, fwd, "forwarded by LVS-Tun (encapsulated)")                                        \
	X(FWD_REDIRECT, event, "forwarded through another interface (XDP_REDIRECT via lvs_tx_ports)") \
	X(CONN_NEW, event, "new connection scheduled and entered in the connection table")            \
	X(CONN_HIT, event, "packet of a connection found in the connection table")                    \
	X(CONN_REUSED, event, "SYN on a closed connection entry: scheduled anew")                     \
	X(CONN_EXPIRED, event, "connection entry older than its state's timeout: scheduled anew")     \
	X(CONN_REAL_GONE, event, "connection's realserver slot was emptied or reused: scheduled anew")               \
	X(OPS_SCHEDULED, event, "packet of a one-packet-scheduling service scheduled")                \
	X(PERSIST_HIT, event, "new connection sent to the realserver of a persistence template")      \
	X(PERSIST_NEW, event, "persistence template created")                                         \
	X(FRAG_FIRST, event, "first fragment scheduled; its state kept for the following fragments")  \
	X(FRAG_FOLLOW, event, "non-first fragment sent after its first fragment")                     \
	X(ICMP_ERR_FWD, event, "ICMP error about a virtual service's flow sent to its realserver")    \
	X(TX_ICMP_TOO_BIG, tx, "answered the client with ICMP frag-needed / ICMPv6 packet-too-big")  \
	X(DROP_NO_REAL, drop, "service has no realserver able to take new connections")               \
	X(DROP_NO_TABLE, drop, "service's table is missing (control plane fault)")                    \
	X(DROP_BAD_REAL, drop, "table or state points at an unusable realserver slot")                \
	X(DROP_TOO_BIG, drop, "would exceed the tunnel MTU and may not get ICMP (no DF, or ICMP)")   \
	X(DROP_ENCAP_FAILED, drop, "could not make room for the outer header")                       \
	X(DROP_ICMP_FAILED, drop, "could not build the ICMP too-big answer")                          \
	X(DROP_TUN_DISABLED, drop, "Tun realserver while Tun support is off at load time")            \
	X(DROP_REDIRECT_FAILED, drop, "egress interface missing from lvs_tx_ports")                \
	/* ---- connection survival (issue 12) ---- */                                               \
	X(DROP_SERVICE_GONE, drop, "packet of a connection whose service was deleted (kept until it expires or the service is back)") \
	X(DROP_REAL_GONE, drop, "packet of a connection whose realserver was deleted (kept until it expires or the realserver is back)") \
	X(CONN_STRAY, event, "TCP packet without SYN and without connection entry: forwarded as a stray (lvs_strays)") \
	X(CONN_PROMOTED, event, "stray seen again more than LVS_STRAY_PROMOTE_S later: entered as ESTABLISHED") \
	/* ---- own frames only (issue 12) ---- */                                                     \
	X(PASS_NOT_OUR_MAC, pass, "for a virtual service but sent to a MAC the interface does not accept (another host's, broadcast, multicast)") \
	/* ---- least-connection family and thresholds (issue 15) ---- */                           \
	X(DROP_OVERLOADED, drop, "every realserver the scheduler looked at is at its upper connection threshold (-x) or full (ovf)") \
	/* ---- LVS-NAT (issue 15) ---- */                                                           \
	X(FWD_NAT, fwd, "forwarded by LVS-NAT (destination rewritten to the realserver's address and port)") \
	X(FWD_NAT_REPLY, fwd, "LVS-NAT reply: source rewritten to VIP:port, sent toward the client by the kernel's FIB") \
	X(ICMP_NAT_REPLY, event, "ICMP error about an LVS-NAT flow from the realserver's side: translated and sent to the client") \
	X(PASS_NAT_NO_ROUTE, pass, "LVS-NAT reply with no usable next hop in the FIB (no route, neighbour unresolved, larger than the egress MTU, or out of an interface without lvs-xdp): handed untouched to the kernel") \
	X(PASS_NAT_TTL, pass, "LVS-NAT reply whose TTL / hop limit would expire here: handed untranslated to the kernel (time exceeded)") \
	X(DROP_NAT_FAILED, drop, "LVS-NAT: a header to rewrite is not in the frame") \
	/* ---- connection sync (issue 14) ---- */                                                  \
	X(SYNC_EVENT, event, "connection entry reported for sync (lvs_sync_events): a state change IPVS syncs, or a refresh period crossed") \
	X(SYNC_LOST, event, "sync event lost: lvs_sync_events was full (the packet is forwarded all the same)") \
	/* ---- new flows without the LRU insert (issue 16) ---- */                                 \
	X(CONN_SYNRECV_NEW, event, "new TCP connection of a DR / Tun realserver: its SYN_RECV connection written to lvs_synrecv, not lvs_conns (counted in conn_new too)") \
	X(CONN_SYNRECV_EVICTED, event, "a new SYN_RECV connection evicted the live one seen longest ago from its full lvs_synrecv bucket (that flow's next packet is a stray)") \
	X(CONN_SYNRECV_ENTERED, event, "packet without SYN of a SYN_RECV connection (lvs_synrecv): entered in lvs_conns")

#define LVS_COUNTER_ENUM(name, kind, desc) LVS_C_##name,
enum lvs_counter { LVS_COUNTER_LIST(LVS_COUNTER_ENUM) LVS_C_MAX };
#undef LVS_COUNTER_ENUM

#endif /* LVS_ABI_H */
