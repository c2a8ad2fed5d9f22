/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_maps.h - the director's maps and load-time knobs: the object's interface to the control
 * plane, generated for TypeScript as its typed skeleton (scripts/gen-abi.mjs ->
 * src/abi/generated.ts: DIRECTOR_MAPS, DirectorSizes and the presets, Knobs) and checked against
 * the object's BTF at every load. The control plane pins every map except the private ones.
 *
 * Sizes: a max_entries of [N *] LVS_DEFAULT_MAX_<X> makes the map a load-time size (maxX in
 * DirectorSizes); the loader resizes it (bpf_map__set_max_entries) before load, so small boxes
 * and large directors use one object. Any other max_entries is fixed.
 */
#ifndef LVS_MAPS_H
#define LVS_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"

#define LVS_DEFAULT_MAX_SERVICES 1024
#define LVS_DEFAULT_MAX_REALS    16384
#define LVS_DEFAULT_MAX_CONNS    262144
#define LVS_DEFAULT_MAX_PERSIST  65536
#define LVS_DEFAULT_MAX_FRAGS    8192

/* The small-box preset (attach --preset small): fits a 128 MB box, about 3 MiB of maps plus
 * tables. Not used by the program: kept beside the defaults it shrinks. */
#define LVS_SMALL_MAX_SERVICES 64
#define LVS_SMALL_MAX_REALS    512
#define LVS_SMALL_MAX_CONNS    16384
#define LVS_SMALL_MAX_PERSIST  4096
#define LVS_SMALL_MAX_FRAGS    1024

#define LVS_MAX_TX_PORTS 64 /* egress interfaces: fixed, not a load-time size */
#define LVS_MAX_L2_ADDRS 1024 /* accepted (interface, MAC) pairs: fixed, not a load-time size */
#define LVS_MAX_FWMARK_PREFIXES 4096 /* firewall-mark classification entries: fixed, not a load-time size */

/*
 * ---- Load-time knobs (.rodata) --------------------------------------------------------------
 * Set before load (loadDirector({ knobs })); the verifier prunes what is switched off, so a
 * disabled feature costs nothing. cfg_enable_<x> is the boolean knob <x> in TypeScript; the
 * comment says what 0 does (the README's knob table is generated from it).
 */
const volatile __u8 cfg_enable_ipv6 = 1; /* IPv6 packets are passed (`pass_family_disabled`) and the IPv6 code is pruned */
const volatile __u8 cfg_enable_tun = 1;  /* Tun realservers are dropped (`drop_tun_disabled`) */
const volatile __u8 cfg_enable_icmp = 1; /* no ICMP error forwarding, no too-big answers */
const volatile __u8 cfg_enable_frag = 1; /* no fragment tracking: non-first fragments are passed */
/* Not a knob: the ABI this object was built for, read back from a running director. */
const volatile __u32 cfg_abi_version = LVS_ABI_VERSION;

/* Keeps ABI types in BTF for the layout check even when the compiler folds their uses. */
struct lvs_abi_anchor {
	struct lvs_svc_key svc_key;
	struct lvs_svc svc;
	struct lvs_real real;
	struct lvs_flow_key flow_key;
	struct lvs_conn conn;
	struct lvs_persist_key persist_key;
	struct lvs_pin pin;
	struct lvs_frag_key frag_key;
	struct lvs_cfg cfg;
	struct lvs_stats stats;
	enum lvs_counter counter;
	enum lvs_conn_state conn_state;
	struct lvs_l2_key l2_key;
	struct lvs_l2_addr l2_addr;
	struct lvs_l2_if l2_if;
	struct lvs_fwmark_key fwmark_key;
	struct lvs_fwmark_val fwmark_val;
	struct lvs_dest dest;
	struct lvs_real_conns real_conns;
	struct lvs_sync_event sync_event;
	struct lvs_synrecv synrecv;
};
const volatile struct lvs_abi_anchor lvs_abi_anchor;

/* (proto, VIP, port) -> service. A HASH map: an update replaces the whole value under RCU, so
 * switching a service to a new table (table_slot + table_size together) is one atomic step. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, struct lvs_svc_key);
	__type(value, struct lvs_svc);
} lvs_services SEC(".maps");

/* A service's lookup table: slot -> realserver index. Inner maps are created by the control
 * plane with the table's own size (BPF_F_INNER_MAP lets sizes differ). */
struct lvs_table {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_INNER_MAP);
	__type(key, __u32);
	__type(value, __u32);
};

/* Two slots per service: the new table is filled in the spare slot, then the service entry is
 * switched to it, so no packet ever sees a half-written table. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2 * LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__array(values, struct lvs_table);
} lvs_tables SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_real);
} lvs_reals SEC(".maps");

/* Shared (not per-CPU) LRU: a flow keeps its realserver whichever CPU RSS hands it to. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_CONNS);
	__type(key, struct lvs_flow_key);
	__type(value, struct lvs_conn);
} lvs_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_PERSIST);
	__type(key, struct lvs_persist_key);
	__type(value, struct lvs_pin);
} lvs_persist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_FRAGS);
	__type(key, struct lvs_frag_key);
	__type(value, struct lvs_pin);
} lvs_frags SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_cfg);
} lvs_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct lvs_stats);
} lvs_svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_stats);
} lvs_real_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_C_MAX);
	__type(key, __u32);
	__type(value, __u64);
} lvs_counters SEC(".maps");

/* rr / wrr position per service, per CPU (no shared cache line on the hot path). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} lvs_rr_cursor SEC(".maps");

/* Egress interfaces for realservers behind another interface (XDP_REDIRECT). */
struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, LVS_MAX_TX_PORTS);
	__type(key, __u32);
	__type(value, __u32);
} lvs_tx_ports SEC(".maps");

/* VIP filter (lvs_abi.h): two bits per address slot, checked before any service lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_VIP_FILTER_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} lvs_vip_filter SEC(".maps");

/* ---- connection survival (issue 12) ------------------------------------------------------
 * Strays: TCP packets without SYN of flows with no connection entry (a director taking over a
 * pair's flows, or an ACK flood). Kept apart from lvs_conns so that a flood of them evicts only
 * other strays, never an established flow; a stray seen again LVS_STRAY_PROMOTE_NS later moves
 * to lvs_conns as ESTABLISHED (lvs_conn.h). Values are struct lvs_conn (state NONE). */
#define LVS_DEFAULT_MAX_STRAYS 16384
#define LVS_SMALL_MAX_STRAYS   1024

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_STRAYS);
	__type(key, struct lvs_flow_key);
	__type(value, struct lvs_conn);
} lvs_strays SEC(".maps");

#if !defined(LVS_TEST_NO_L2) || defined(LVS_BENCH_KEEP_L2_MAPS)
/* Accepted destination MACs (lvs_abi.h), checked before any forward: by ingress ifindex, inline... */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_L2_IF_SLOTS);
	__type(key, __u32);
	__type(value, struct lvs_l2_if);
} lvs_l2_ifs SEC(".maps");

/* ... and every accepted (ifindex, MAC) pair, looked up only past lvs_l2_ifs's reach. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LVS_MAX_L2_ADDRS);
	__type(key, struct lvs_l2_key);
	__type(value, struct lvs_l2_addr);
} lvs_l2_addrs SEC(".maps");
#endif

/* ---- firewall-mark services (issue 15) ----------------------------------------------------
 * (family, proto, destination prefix) -> port ranges and their marks (lvs_abi.h). Consulted only
 * while lvs_cfg has LVS_CFG_F_FWMARK, for packets that found no port service or a MARKED one. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, LVS_MAX_FWMARK_PREFIXES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lvs_fwmark_key);
	__type(value, struct lvs_fwmark_val);
} lvs_fwmarks SEC(".maps");

/* ---- least-connection family and thresholds (issue 15): by realserver index (lvs_abi.h) ---- */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_dest);
} lvs_dests SEC(".maps");

/* ---- connection sync (issue 14) ------------------------------------------------------------
 * Connection entries reported for sync (struct lvs_sync_event, lvs_sync.h), read by the control
 * plane from its pin (ring_buffer__consume on a timer: records are written without wakeup). The
 * size is in bytes (a power of 2, at least a page): 256 KiB holds ~2,800 events of 92 bytes. */
#define LVS_DEFAULT_MAX_SYNC_RING 262144
#define LVS_SMALL_MAX_SYNC_RING   65536

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LVS_DEFAULT_MAX_SYNC_RING);
} lvs_sync_events SEC(".maps");

/* Shared, not per-CPU: a scheduling decision on one CPU must see the connections made on all. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_REALS);
	__type(key, __u32);
	__type(value, struct lvs_real_conns);
} lvs_real_conns SEC(".maps");

/* One scheduling decision's scan, walked by bpf_loop in a per-CPU scratch entry (lvs_lc_scratch, lvs_lc.h):
 * read back from a map its fields are unknown to the verifier, so it checks the step once instead
 * of once per iteration, path and remembered value (a stack copy made it exceed its limit). */
struct lvs_lc_scan {
	__u32 tslot;    /* the service's lvs_tables slot */
	__u32 size;     /* entries drawn from (fallback: the list starts there) */
	__u32 h;        /* the flow's scheduling hash */
	__u32 kind;     /* LVS_LC_* */
	__u32 mode;     /* LVS_LC_SCAN_* */
	__u32 best;     /* the cheapest usable realserver so far, or LVS_REAL_NONE */
	__u32 ba, bi, bw; /* its active, inactive, weight */
	__u32 seen;     /* usable candidates compared (draws) */
	__u32 why;      /* a drop reason that ends the decision, or 0 */
};

#define LVS_LC_SCAN_DRAW     0 /* slot = draw k % size; stop at two usable */
#define LVS_LC_SCAN_WALK     1 /* fo / ovf: slot = k; the first usable */
#define LVS_LC_SCAN_FALLBACK 2 /* slot = size + k; all compared, until the list ends */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_lc_scan);
} lvs_lc_scratch SEC(".maps"); /* private: not pinned, not in DIRECTOR_MAPS */

/* Per-CPU clock cache (private: not part of the control plane's ABI): the coarse monotonic
 * clock as last read on this CPU, and the jiffies64 value it was read at. */
struct lvs_clock {
	__u64 jiffies;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_clock);
} lvs_clock SEC(".maps"); /* private: not pinned, not in DIRECTOR_MAPS */



/* ---- new flows without the LRU insert (issue 16, lvs_synrecv.h) ----------------------------
 * SYN_RECV connections of DR / Tun flows, 4-way set-associative by a keyed hash of the flow,
 * shared by the CPUs (the client's ACK may arrive on another one). 64 bytes a slot (256 a
 * bucket): 1 MiB by default, 128 KiB in the small preset; a flood of SYNs overwrites only this,
 * never lvs_conns. Sizes are multiples of LVS_SYNRECV_WAYS (the loader checks a given one). */
#define LVS_DEFAULT_MAX_SYN_RECV 16384
#define LVS_SMALL_MAX_SYN_RECV   2048

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_SYN_RECV);
	__type(key, __u32);
	__type(value, struct lvs_synrecv);
} lvs_synrecv SEC(".maps");

/* ---- the per-CPU flow cache (issue 16, lvs_flowcache.h) -------------------------------------
 * lvs_epoch: one counter the control plane bumps after every map write (src/director/writer.ts);
 * a cache entry of another epoch is never used, so no configuration or connection-table change is
 * missed. lvs_flowcache: per CPU, direct-mapped by the flow's hash; an established flow's
 * service and realserver in one array probe. Its slots per CPU are a load-time size
 * (maxFlowcache; 72 bytes each): 16,384 (1.1 MiB per CPU) by default; the small preset's 2,048
 * (144 KiB per CPU) hold the hot flows of its 16,384 connections: a miss costs the full path. */
#define LVS_DEFAULT_MAX_FLOWCACHE 16384
#define LVS_SMALL_MAX_FLOWCACHE   2048
/* Not a knob: lvs_flowcache's slots as loaded (the loader sets it from maxFlowcache). */
const volatile __u32 cfg_size_max_flowcache = LVS_DEFAULT_MAX_FLOWCACHE;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lvs_epoch SEC(".maps");

struct lvs_fc_entry {
	struct lvs_flow_key key; /* the flow (client side) */
	__u64 until_jiffies;     /* used while jiffies64 < this: before its entry's refresh is due */
	__u64 epoch;             /* lvs_epoch when the lookups it was made from began */
	__u32 real;              /* the entry's realserver and its generation */
	__u32 gen;
	__u32 svc_id;            /* the service the packet's lookup found (its statistics) */
	__u32 tun_label;         /* the flow's IPv6 tunnel flow label (lvs_tun_label, the epoch's seed) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LVS_DEFAULT_MAX_FLOWCACHE);
	__type(key, __u32);
	__type(value, struct lvs_fc_entry);
} lvs_flowcache SEC(".maps"); /* private: not pinned, not in DIRECTOR_MAPS */

/* ---- sharing an interface and capture (issue 17): the program's own, not pinned with the rest
 * (lvs_chain is pinned beside them, src/director/chain.ts; capture finds its maps by the
 * program's map ids, src/capture/capture.ts) ---- */
#include "lvs_capture.h"
/* The capture ring, in bytes (a power of 2, at least a page): 1 MiB holds ~3,400 records of
 * full 256-byte snaps before `lvs-xdp capture` reads them. A small box captures at its own,
 * lower rate, and its 128 MB cannot spare a mostly idle MiB: 128 KiB (~430 records). */
#define LVS_DEFAULT_MAX_CAPTURE_RING 1048576
#define LVS_SMALL_MAX_CAPTURE_RING   131072

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} lvs_chain SEC(".maps"); /* private: lvs_chain.h, LVS_CHAIN_SLOTS entries */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, LVS_DEFAULT_MAX_CAPTURE_RING);
} lvs_capture_rb SEC(".maps"); /* private: lvs_capture.h's records */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lvs_capture_cpu);
} lvs_capture_cpu SEC(".maps"); /* private: lvs_capture.h's per-CPU state */
#define LVS_CHAIN_NO_MAP

/* ---- lvs_synrecv's bucket key (issue 16, lvs_synrecv.h) --------------------------------------
 * Not a knob: 96 bits the loader draws from the kernel's CSPRNG when a director is first loaded
 * (src/dataplane/loader.ts) and carries to the next program of the same pinned data plane (`lvs-xdp
 * upgrade` reads them back from the running program's .rodata). Local to one director: its
 * lvs_synrecv slots are never compared with another's, so unlike lvs_cfg's hash_seed (shared by
 * directors whose schedulers must agree) each director keys its own. .rodata: frozen at load, so
 * no write can change the key under a running table (that would orphan every SYN_RECV way). */
const volatile __u32 cfg_key_synrecv0 = 0;
const volatile __u32 cfg_key_synrecv1 = 0;
const volatile __u32 cfg_key_synrecv2 = 0;

#endif /* LVS_MAPS_H */
