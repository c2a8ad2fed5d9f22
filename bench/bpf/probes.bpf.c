// SPDX-License-Identifier: GPL-2.0
/*
 * Cost probes: each program does one more step of the director's work than a reference, so the
 * difference of two probes measured in the same run is that step's cost on this machine.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"
#include "lvs_parse.h"

#define CONNS 262144

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 1024); __type(key, struct lvs_svc_key); __type(value, struct lvs_svc); } p_svc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, CONNS); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, CONNS); __uint(map_flags, BPF_F_NO_COMMON_LRU); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_lru_nc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH); __uint(max_entries, CONNS); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_lru_pc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, CONNS); __uint(map_flags, BPF_F_NO_PREALLOC); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_hash_np SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, CONNS); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 64); __type(key, __u32); __type(value, __u64); } p_cnt SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 1024); __type(key, __u32); __type(value, struct lvs_stats); } p_stats SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1024); __type(key, __u32); __type(value, __u64); } p_bits SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, struct lvs_cfg); } p_cfg SEC(".maps");

static __always_inline void cnt(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&p_cnt, &c);
	if (v)
		*v += 1;
}

static __always_inline int parse(struct xdp_md *ctx, struct lvs_pkt *p)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	int rc = lvs_parse(p, data, data_end, 1);

	if (rc == LVS_PARSE_OK)
		lvs_parse_forwarded(p, data, data_end); /* the ports, as the director's flows have them */
	return rc;
}

SEC("xdp") int pr_parse(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	return XDP_PASS;
}

SEC("xdp") int pr_parse_cnt(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	cnt(1);
	return XDP_PASS;
}

/* parse + counter + cfg array lookup + bitmap word test (the pre-filter) */
SEC("xdp") int pr_bitmap(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	__u32 zero = 0;
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	struct lvs_cfg *cfg = bpf_map_lookup_elem(&p_cfg, &zero);
	if (!cfg)
		return XDP_ABORTED;
	__u32 a;
	__builtin_memcpy(&a, p.flow.daddr, 4);
	__u32 h = (a * 0x9e3779b1u) >> 16;
	__u32 w = h >> 6;
	__u64 *bits = bpf_map_lookup_elem(&p_bits, &w);
	if (bits && (*bits >> (h & 63)) & 1)
		return XDP_DROP;
	cnt(1);
	return XDP_PASS;
}

static __always_inline struct lvs_svc *svc_lookup(struct lvs_pkt *p, int second)
{
	struct lvs_svc_key k = {};
	struct lvs_svc *s;
	__builtin_memcpy(k.addr, p->flow.daddr, 16);
	k.port = p->flow.dport;
	k.proto = p->flow.proto;
	k.family = p->flow.family;
	s = bpf_map_lookup_elem(&p_svc, &k);
	if (s || !second)
		return s;
	k.port = 0;
	return bpf_map_lookup_elem(&p_svc, &k);
}

SEC("xdp") int pr_svc1(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	if (svc_lookup(&p, 0))
		return XDP_DROP;
	cnt(1);
	return XDP_PASS;
}

SEC("xdp") int pr_svc2(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	if (svc_lookup(&p, 1))
		return XDP_DROP;
	cnt(1);
	return XDP_PASS;
}

SEC("xdp") int pr_ktime(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	__u64 t = bpf_ktime_get_ns();
	cnt(1 + (t & 1));
	return XDP_PASS;
}

/* parse + 1 counter + 2 stats structs (the director's accounting on a hit) */
SEC("xdp") int pr_acct(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	__u32 a = 3, b = 7;
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	cnt(1);
	cnt(2);
	struct lvs_stats *s = bpf_map_lookup_elem(&p_stats, &a);
	if (s) { s->packets++; s->bytes += p.l3_len; }
	s = bpf_map_lookup_elem(&p_stats, &b);
	if (s) { s->packets++; s->bytes += p.l3_len; }
	return XDP_PASS;
}

/* Conn lookups (hit when user space inserted the flow, miss otherwise). */
#define LOOKUP_PROBE(name, map)                                        \
	SEC("xdp") int name(struct xdp_md *ctx)                        \
	{                                                              \
		struct lvs_pkt p = {};                                 \
		if (parse(ctx, &p) != LVS_PARSE_OK)                    \
			return XDP_ABORTED;                            \
		struct lvs_conn *c = bpf_map_lookup_elem(&map, &p.flow); \
		cnt(1);                                                \
		return c ? XDP_PASS : XDP_DROP;                        \
	}
LOOKUP_PROBE(pr_lru, p_lru)
LOOKUP_PROBE(pr_lru_nc, p_lru_nc)
LOOKUP_PROBE(pr_lru_pc, p_lru_pc)
LOOKUP_PROBE(pr_hash, p_hash)

/* Inserts of a new flow every run (the source port and address walk a per-CPU sequence). */
#define INSERT_PROBE(name, map)                                                 \
	SEC("xdp") int name(struct xdp_md *ctx)                                 \
	{                                                                       \
		struct lvs_pkt p = {};                                          \
		struct lvs_conn nc = {};                                        \
		__u32 z = 60;                                                   \
		if (parse(ctx, &p) != LVS_PARSE_OK)                             \
			return XDP_ABORTED;                                     \
		__u64 *seq = bpf_map_lookup_elem(&p_cnt, &z);                   \
		if (!seq)                                                       \
			return XDP_ABORTED;                                     \
		__u64 s = ++*seq;                                               \
		p.flow.sport = s;                                               \
		p.flow.saddr[3] = s >> 16;                                      \
		p.flow.saddr[2] = s >> 24;                                      \
		p.flow.saddr[1] = bpf_get_smp_processor_id();                   \
		if (bpf_map_lookup_elem(&map, &p.flow))                         \
			return XDP_DROP;                                        \
		nc.real = 1;                                                    \
		bpf_map_update_elem(&map, &p.flow, &nc, BPF_ANY);               \
		cnt(1);                                                         \
		return XDP_PASS;                                                \
	}
INSERT_PROBE(pr_ins_lru, p_lru)
INSERT_PROBE(pr_ins_lru_nc, p_lru_nc)
INSERT_PROBE(pr_ins_lru_pc, p_lru_pc)
INSERT_PROBE(pr_ins_hash_np, p_hash_np)

char LICENSE[] SEC("license") = "GPL";

SEC("xdp") int pr_coarse(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	__u64 t = bpf_ktime_get_coarse_ns();
	cnt(1 + (t & 1));
	return XDP_PASS;
}

SEC("xdp") int pr_jiffies(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	__u64 t = bpf_jiffies64();
	cnt(1 + (t & 1));
	return XDP_PASS;
}

struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 16384); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_lru_small SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 16384); __uint(map_flags, BPF_F_NO_COMMON_LRU); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_lru_small_nc SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, CONNS); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_hash_pre SEC(".maps");
INSERT_PROBE(pr_ins_lru_small, p_lru_small)
INSERT_PROBE(pr_ins_lru_small_nc, p_lru_small_nc)
INSERT_PROBE(pr_ins_hash_pre, p_hash_pre)
LOOKUP_PROBE(pr_lru_miss, p_lru_small)

/* ---- issue 16: where a new flow's state could go instead of a full shared LRU ---- */
/* A preallocated HASH kept below full (expiry by the control plane): 2 x CONNS slots, never
 * filled past ~95% by the benchmark's inserts. */
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 2 * CONNS); __type(key, struct lvs_flow_key); __type(value, struct lvs_conn); } p_hash_room SEC(".maps");
INSERT_PROBE(pr_ins_hash_room, p_hash_room)

/* A per-CPU direct-mapped table (a SYN_RECV entry kept where RSS keeps its flow; a colliding
 * flow overwrites it): the slot probed, compared and written, 65,536 slots per CPU. */
struct p_slot { struct lvs_flow_key key; struct lvs_conn c; };
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 65536); __type(key, __u32); __type(value, struct p_slot); } p_slots SEC(".maps");
SEC("xdp") int pr_ins_pcpu_slot(struct xdp_md *ctx)
{
	struct lvs_pkt p = {};
	__u32 z = 61;
	if (parse(ctx, &p) != LVS_PARSE_OK)
		return XDP_ABORTED;
	__u64 *seq = bpf_map_lookup_elem(&p_cnt, &z);
	if (!seq)
		return XDP_ABORTED;
	__u64 s = ++*seq;
	p.flow.sport = s;
	p.flow.saddr[3] = s >> 16;
	p.flow.saddr[2] = s >> 24;
	__u32 *w = (__u32 *)&p.flow;
	__u32 slot = (((w[0] * 0x9e3779b1u) ^ w[4] ^ (w[8] * 0x85ebca6bu) ^ w[9]) * 0x9e3779b1u) >> 16;
	struct p_slot *e = bpf_map_lookup_elem(&p_slots, &slot);
	if (!e)
		return XDP_ABORTED;
	if (e->key.sport == p.flow.sport && e->key.saddr[3] == p.flow.saddr[3] && e->key.saddr[2] == p.flow.saddr[2])
		return XDP_DROP;
	e->key = p.flow;
	e->c.real = 1;
	cnt(1);
	return XDP_PASS;
}
