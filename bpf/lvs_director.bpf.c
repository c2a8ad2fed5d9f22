// SPDX-License-Identifier: GPL-2.0
/*
 * lvs_director - an LVS director as one XDP program.
 *
 * Packet path:
 *   parse (L2, VLANs, IPv4/IPv6 + extension headers, L4)   -> not ours: XDP_PASS + PASS_* counter
 *   non-first fragment   -> realserver of its first fragment (lvs_frags)
 *   ICMP error quoting a virtual service's flow -> that flow's realserver (never creates state)
 *   TCP/UDP to a virtual service:
 *     connection table hit -> its realserver;  miss -> persistence template or the service's
 *     lookup table indexed by the scheduling hash (or rr cursor); entered in the connection table
 *   forward: DR (MAC rewrite, XDP_TX / XDP_REDIRECT) or Tun (IPIP / IPv6 encapsulation, with
 *   ICMP too-big back to the client when the tunnel MTU would be exceeded)
 *
 * Every packet increments exactly one pass / fwd / drop / tx counter in lvs_counters, plus any
 * number of event counters.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_hash.h"
#include "lvs_csum.h"

/* Load-time knobs and cfg_abi_version: lvs_maps.h. */

#define NSEC_PER_SEC       1000000000ULL
#define LVS_REFRESH_NS     NSEC_PER_SEC       /* conn timestamps are written at most this often */
#define LVS_FRAG_TIMEOUT   (30 * NSEC_PER_SEC) /* as the kernel's ipfrag_time */
#define LVS_ICMP_QUOTE_MAX 128                 /* bytes of the offending packet quoted back */
#define LVS_L2_MAX         22                  /* Ethernet + two VLAN tags */

#define LVS_FORWARD 0x100 /* handler verdict: forward to the realserver it chose */

static __always_inline void lvs_count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&lvs_counters, &c);

	if (v)
		*v += 1;
}

/*
 * Time, as bpf_ktime_get_ns() (CLOCK_MONOTONIC) for every timestamp written and every age
 * compared, without calling it on most packets: a clock read is a helper call (~42 ns per packet
 * measured here) while bpf_jiffies64() is inlined by the JIT. Each CPU caches the coarse clock
 * (bpf_ktime_get_coarse_ns(), refreshed once per jiffy), which is never ahead of
 * bpf_ktime_get_ns() and trails it by at most a tick or two (LVS_CLOCK_LAG_NS with room to
 * spare). An age test whose answer is the same for every time in [coarse, coarse + lag] needs no
 * clock read; only a test near its boundary, and a timestamp being written, read the real clock
 * (once per packet). Ages are u64 differences, as before: a timestamp in the future is old.
 */
#define LVS_CLOCK_LAG_NS (50 * 1000000ULL)

struct lvs_time {
	__u64 lo; /* cached coarse clock: <= bpf_ktime_get_ns() <= lo + LVS_CLOCK_LAG_NS */
	__u64 ns; /* bpf_ktime_get_ns() once read, else 0 */
};

static __always_inline void lvs_time_init(struct lvs_time *t)
{
	__u32 zero = 0;
	struct lvs_clock *c = bpf_map_lookup_elem(&lvs_clock, &zero);
	__u64 j = bpf_jiffies64();

	t->ns = 0;
	if (!c) {
		t->ns = bpf_ktime_get_ns();
		t->lo = t->ns;
		return;
	}
	if (c->jiffies != j) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_coarse_ns();
	}
	t->lo = c->ns;
}

/* bpf_ktime_get_ns(), read once per packet. */
static __always_inline __u64 lvs_time_now(struct lvs_time *t)
{
	if (!t->ns)
		t->ns = bpf_ktime_get_ns();
	return t->ns;
}

/*
 * bpf_ktime_get_ns() - then > limit (u64), reading the clock only when the bounds disagree.
 * A timestamp ahead of the cached coarse clock (written since this CPU's last refresh, or the
 * coarse clock stalled beyond the lag in a descheduled VM) has no usable bound: read the clock.
 */
static __always_inline int lvs_older_than(struct lvs_time *t, __u64 then, __u64 limit)
{
	if (!t->ns && t->lo >= then) {
		__u64 lo = t->lo - then;
		__u64 hi = lo + LVS_CLOCK_LAG_NS;

		if (hi >= lo) { /* the true age is in [lo, hi] */
			if (lo > limit)
				return 1;
			if (hi <= limit)
				return 0;
		}
	}
	return lvs_time_now(t) - then > limit;
}

static __always_inline void lvs_account(void *stats_map, __u32 idx, __u32 bytes, int new_conn)
{
	struct lvs_stats *s = bpf_map_lookup_elem(stats_map, &idx);

	if (!s)
		return;
	s->packets++;
	s->bytes += bytes;
	if (new_conn)
		s->conns++;
}

static __always_inline __u32 lvs_flow_hash(const struct lvs_flow_key *f, __u8 fields, __u32 seed)
{
	__u32 k[LVS_HASH_WORDS] = {};

	if (fields & LVS_HF_SADDR)
		__builtin_memcpy(&k[0], f->saddr, 16);
	if (fields & LVS_HF_DADDR)
		__builtin_memcpy(&k[4], f->daddr, 16);
	if (fields & LVS_HF_SPORT)
		k[8] |= f->sport;
	if (fields & LVS_HF_DPORT)
		k[8] |= (__u32)f->dport << 16;
	if (fields & LVS_HF_PROTO)
		k[9] = f->proto;
	return lvs_jhash_10(k, seed);
}

/* The VIP filter's two bits for an address (lvs_abi.h); both set while the filter is off. */
static __always_inline __u32 lvs_vip_bits(const struct lvs_cfg *cfg, const __u8 *addr)
{
	__u32 w[4], slot, word;
	__u64 *bits;

	if (!(cfg->flags & LVS_CFG_F_VIP_FILTER))
		return 3;
	__builtin_memcpy(w, addr, 16);
	slot = ((w[0] ^ w[1] ^ w[2] ^ w[3]) * LVS_VIP_FILTER_MULT) >> (32 - LVS_VIP_FILTER_SLOT_BITS);
	word = slot / 32;
	bits = bpf_map_lookup_elem(&lvs_vip_filter, &word);
	if (!bits)
		return 3;
	return (*bits >> ((slot % 32) * 2)) & 3;
}

/* (proto, VIP, port), then (proto, VIP, 0) for all-ports services; the VIP filter skips the
 * lookups that cannot succeed. */
static __always_inline struct lvs_svc *lvs_svc_lookup(const struct lvs_flow_key *f,
						      const struct lvs_cfg *cfg)
{
	__u32 vf = lvs_vip_bits(cfg, f->daddr);
	struct lvs_svc_key k = {};
	struct lvs_svc *svc;

	if (!vf)
		return NULL;
	__builtin_memcpy(k.addr, f->daddr, 16);
	k.port = f->dport;
	k.proto = f->proto;
	k.family = f->family;
	if (vf & (1u << LVS_VF_PORT_SHIFT)) {
		svc = bpf_map_lookup_elem(&lvs_services, &k);
		if (svc)
			return svc;
	}
	if (!(vf & (1u << LVS_VF_ALLPORTS_SHIFT)))
		return NULL;
	k.port = 0; /* all-ports service */
	return bpf_map_lookup_elem(&lvs_services, &k);
}

static __always_inline struct lvs_real *lvs_real_get(__u32 idx, __u32 gen)
{
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &idx);

	if (!r || !(r->flags & LVS_REAL_F_ACTIVE) || r->gen != gen)
		return NULL;
	return r;
}

/* The service's table at the slot the flow hashes to (or the rr cursor points at). Returns the
 * realserver index, or LVS_REAL_NONE with *why set to the drop counter. */
static __always_inline __u32 lvs_schedule(const struct lvs_svc *svc, const struct lvs_flow_key *f,
					  __u32 seed, __u32 *why)
{
	__u32 size = svc->table_size;
	__u32 tslot = svc->table_slot;
	__u32 slot, *ri;
	void *table;

	if (size == 0) {
		*why = LVS_C_DROP_NO_REAL;
		return LVS_REAL_NONE;
	}
	if (svc->flags & LVS_SVC_F_ROTATE) {
		__u32 id = svc->id;
		__u32 *cur = bpf_map_lookup_elem(&lvs_rr_cursor, &id);

		if (!cur) {
			*why = LVS_C_DROP_NO_TABLE;
			return LVS_REAL_NONE;
		}
		slot = *cur;
		if (slot >= size)
			slot = 0;
		*cur = slot + 1;
	} else {
		slot = lvs_flow_hash(f, svc->hash_fields, seed) % size;
	}
	table = bpf_map_lookup_elem(&lvs_tables, &tslot);
	if (!table) {
		*why = LVS_C_DROP_NO_TABLE;
		return LVS_REAL_NONE;
	}
	ri = bpf_map_lookup_elem(table, &slot);
	if (!ri) {
		*why = LVS_C_DROP_NO_TABLE;
		return LVS_REAL_NONE;
	}
	if (*ri == LVS_REAL_NONE)
		*why = LVS_C_DROP_NO_REAL;
	return *ri;
}

static __always_inline __u8 lvs_tcp_next_state(__u8 st, __u8 flags)
{
	if (flags & LVS_TCP_RST)
		return LVS_CS_CLOSE;
	if (flags & LVS_TCP_FIN)
		return LVS_CS_FIN_WAIT;
	if (flags & LVS_TCP_SYN)
		return st == LVS_CS_NONE ? LVS_CS_SYN_RECV : st;
	if (st == LVS_CS_NONE || st == LVS_CS_SYN_RECV)
		return LVS_CS_ESTABLISHED;
	return st;
}

static __always_inline __u64 lvs_timeout_ns(const struct lvs_cfg *cfg, __u8 st)
{
	if (st >= LVS_CS_MAX)
		return 0;
	return (__u64)cfg->timeout_s[st] * NSEC_PER_SEC;
}

/* The client's persistence group: its address masked with the service's netmask. */
static __always_inline void lvs_persist_key_of(struct lvs_persist_key *pk, const struct lvs_svc *svc,
					       const struct lvs_pkt *p)
{
#pragma unroll
	for (int i = 0; i < 16; i++)
		pk->caddr[i] = p->flow.saddr[i] & svc->persist_mask[i];
	pk->svc_id = svc->id;
	pk->family = p->family;
}

/* Fragments of one datagram share addresses, protocol and IP identification. */
static __always_inline void lvs_frag_key_of(struct lvs_frag_key *fk, const struct lvs_pkt *p)
{
	__builtin_memcpy(fk->saddr, p->flow.saddr, 16);
	__builtin_memcpy(fk->daddr, p->flow.daddr, 16);
	fk->id = p->frag_id;
	fk->proto = p->proto;
	fk->family = p->family;
}

/* New connection: persistence template first, then the table. */
static __always_inline __u32 lvs_pick_new(const struct lvs_svc *svc, const struct lvs_pkt *p,
					  const struct lvs_cfg *cfg, struct lvs_time *t, __u32 *why)
{
	struct lvs_persist_key pk = {};
	struct lvs_pin *tpl, ntpl = {};
	__u32 ri;

	if (!(svc->flags & LVS_SVC_F_PERSIST))
		return lvs_schedule(svc, &p->flow, cfg->hash_seed, why);

	lvs_persist_key_of(&pk, svc, p);
	tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
	if (tpl && !lvs_older_than(t, tpl->last_seen_ns, (__u64)svc->persist_timeout * NSEC_PER_SEC)) {
		struct lvs_real *r = lvs_real_get(tpl->real, tpl->gen);

		/* A quiesced realserver takes no new connections, persistent clients included. */
		if (r && !(r->flags & LVS_REAL_F_QUIESCED)) {
			tpl->last_seen_ns = lvs_time_now(t);
			lvs_count(LVS_C_PERSIST_HIT);
			return tpl->real;
		}
	}
	ri = lvs_schedule(svc, &p->flow, cfg->hash_seed, why);
	if (ri == LVS_REAL_NONE)
		return ri;
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r)
		return ri;
	ntpl.last_seen_ns = lvs_time_now(t);
	ntpl.real = ri;
	ntpl.gen = r->gen;
	bpf_map_update_elem(&lvs_persist, &pk, &ntpl, BPF_ANY);
	lvs_count(LVS_C_PERSIST_NEW);
	return ri;
}

static __always_inline void lvs_persist_touch(const struct lvs_svc *svc, const struct lvs_pkt *p,
					      __u64 now)
{
	struct lvs_persist_key pk = {};
	struct lvs_pin *tpl;

	lvs_persist_key_of(&pk, svc, p);
	tpl = bpf_map_lookup_elem(&lvs_persist, &pk);
	if (tpl)
		tpl->last_seen_ns = now;
}

/* TCP / UDP to a virtual service. Returns LVS_FORWARD with *real_idx set, or an XDP action. */
static __always_inline int lvs_handle_flow(struct lvs_pkt *p, const struct lvs_cfg *cfg,
					   __u32 *real_idx, __u32 *gen)
{
	struct lvs_svc *svc = lvs_svc_lookup(&p->flow, cfg);
	__u32 why = LVS_C_DROP_NO_REAL;
	int new_conn = 0;
	struct lvs_time t;
	__u32 ri;

	if (!svc) {
		lvs_count(LVS_C_PASS_NOT_VIP);
		return XDP_PASS;
	}
	lvs_time_init(&t);

	if (svc->flags & LVS_SVC_F_OPS) {
		ri = lvs_schedule(svc, &p->flow, cfg->hash_seed, &why);
		if (ri == LVS_REAL_NONE)
			goto drop;
		lvs_count(LVS_C_OPS_SCHEDULED);
		new_conn = 1;
	} else {
		struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, &p->flow);
		int tcp = p->proto == IPPROTO_TCP;
		__u8 fl = p->tcp_flags;

		if (c) {
			__u8 st = c->state;

			if (!lvs_real_get(c->real, c->gen)) {
				lvs_count(LVS_C_CONN_REAL_GONE);
				c = NULL;
			} else if (tcp && (fl & (LVS_TCP_SYN | LVS_TCP_ACK)) == LVS_TCP_SYN &&
				   (st == LVS_CS_FIN_WAIT || st == LVS_CS_CLOSE)) {
				lvs_count(LVS_C_CONN_REUSED); /* client reuses the port: new connection */
				c = NULL;
			} else if (lvs_timeout_ns(cfg, st) &&
				   lvs_older_than(&t, c->last_seen_ns, lvs_timeout_ns(cfg, st))) {
				lvs_count(LVS_C_CONN_EXPIRED);
				c = NULL;
			} else {
				__u8 nst = tcp ? lvs_tcp_next_state(st, fl) : LVS_CS_UDP;

				if (nst != st)
					c->state = nst;
				if (nst != st || lvs_older_than(&t, c->last_seen_ns, LVS_REFRESH_NS)) {
					__u64 now = lvs_time_now(&t);

					c->last_seen_ns = now;
					if (svc->flags & LVS_SVC_F_PERSIST)
						lvs_persist_touch(svc, p, now);
				}
				ri = c->real;
				lvs_count(LVS_C_CONN_HIT);
			}
		}
		if (!c) {
			struct lvs_conn nc = {};
			struct lvs_real *r;

			ri = lvs_pick_new(svc, p, cfg, &t, &why);
			if (ri == LVS_REAL_NONE)
				goto drop;
			r = bpf_map_lookup_elem(&lvs_reals, &ri);
			if (!r)
				goto bad_real;
			nc.last_seen_ns = lvs_time_now(&t);
			nc.real = ri;
			nc.gen = r->gen;
			nc.state = tcp ? lvs_tcp_next_state(LVS_CS_NONE, fl) : LVS_CS_UDP;
			bpf_map_update_elem(&lvs_conns, &p->flow, &nc, BPF_ANY);
			lvs_count(LVS_C_CONN_NEW);
			new_conn = 1;
		}
	}

	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r || !(r->flags & LVS_REAL_F_ACTIVE))
		goto bad_real;

	if (cfg_enable_frag && p->frag == LVS_FRAG_FIRST) {
		struct lvs_frag_key fk = {};
		struct lvs_pin pin = { .last_seen_ns = lvs_time_now(&t), .real = ri, .gen = r->gen };

		lvs_frag_key_of(&fk, p);
		bpf_map_update_elem(&lvs_frags, &fk, &pin, BPF_ANY);
		lvs_count(LVS_C_FRAG_FIRST);
	}
	lvs_account(&lvs_svc_stats, svc->id, p->l3_len, new_conn);
	lvs_account(&lvs_real_stats, ri, p->l3_len, new_conn);
	*real_idx = ri;
	*gen = r->gen;
	return LVS_FORWARD;

bad_real:
	why = LVS_C_DROP_BAD_REAL;
drop:
	lvs_count(why);
	return XDP_DROP;
}

/* Non-first fragment: no ports, so it follows its first fragment's realserver. */
static __always_inline int lvs_handle_frag_later(struct lvs_pkt *p, __u32 *real_idx, __u32 *gen)
{
	struct lvs_frag_key fk = {};
	struct lvs_pin *pin;
	struct lvs_real *r;
	struct lvs_time t;

	if (!cfg_enable_frag)
		goto pass;
	lvs_frag_key_of(&fk, p);
	pin = bpf_map_lookup_elem(&lvs_frags, &fk);
	lvs_time_init(&t);
	if (!pin || lvs_older_than(&t, pin->last_seen_ns, LVS_FRAG_TIMEOUT))
		goto pass;
	r = lvs_real_get(pin->real, pin->gen);
	if (!r) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_count(LVS_C_FRAG_FOLLOW);
	lvs_account(&lvs_svc_stats, r->svc_id, p->l3_len, 0);
	lvs_account(&lvs_real_stats, pin->real, p->l3_len, 0);
	*real_idx = pin->real;
	*gen = pin->gen;
	return LVS_FORWARD;
pass:
	lvs_count(LVS_C_PASS_FRAG_NO_STATE);
	return XDP_PASS;
}

static __always_inline int lvs_icmp_is_error(const struct lvs_pkt *p)
{
	if (p->family == LVS_FAMILY_IPV4 && p->proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 11 || p->icmp_type == 12;
	if (p->family == LVS_FAMILY_IPV6 && p->proto == IPPROTO_ICMPV6)
		return p->icmp_type >= 1 && p->icmp_type <= 4;
	return 0;
}

/*
 * ICMP error (unreachable, too big, time exceeded, parameter problem) about a packet the VIP
 * sent: the quoted header is VIP:port -> client:port. Reversed, it is the client's flow, which
 * goes to the realserver serving it (that realserver sent the quoted packet). Creates no state.
 */
static __always_inline int lvs_handle_icmp(struct lvs_pkt *p, const struct lvs_cfg *cfg,
					   void *data, void *data_end, __u32 *real_idx, __u32 *gen)
{
	struct lvs_flow_key f = {};
	__u32 inner = (p->l4_off + 8) & 0x3fff;
	__u32 why = LVS_C_DROP_NO_REAL;
	__u16 *ports;
	__u32 ri;

	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *in = data + inner;

		if ((void *)(in + 1) > data_end)
			goto not_ours;
		if (in->version != 4 || in->ihl < 5)
			goto not_ours;
		f.proto = in->protocol;
		__builtin_memcpy(f.saddr, &in->daddr, 4);
		__builtin_memcpy(f.daddr, &in->saddr, 4);
		ports = (void *)in + ((in->ihl * 4) & 0x3c);
	} else {
		struct ipv6hdr *in6 = data + inner;

		if ((void *)(in6 + 1) > data_end)
			goto not_ours;
		f.proto = in6->nexthdr;
		__builtin_memcpy(f.saddr, &in6->daddr, 16);
		__builtin_memcpy(f.daddr, &in6->saddr, 16);
		ports = (void *)(in6 + 1);
	}
	if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP)
		goto not_ours;
	if ((void *)(ports + 2) > data_end)
		goto not_ours;
	f.sport = ports[1];
	f.dport = ports[0];
	f.family = p->family;
	/* An error about a VIP's packet is addressed to that VIP (the quoted source). */
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (f.daddr[i] != p->flow.daddr[i])
			goto not_ours;

	struct lvs_svc *svc = lvs_svc_lookup(&f, cfg);
	if (!svc)
		goto not_ours;
	struct lvs_conn *c = bpf_map_lookup_elem(&lvs_conns, &f);
	if (c && lvs_real_get(c->real, c->gen)) {
		ri = c->real;
	} else {
		ri = lvs_schedule(svc, &f, cfg->hash_seed, &why);
		if (ri == LVS_REAL_NONE) {
			lvs_count(why);
			return XDP_DROP;
		}
	}
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r || !(r->flags & LVS_REAL_F_ACTIVE)) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_count(LVS_C_ICMP_ERR_FWD);
	lvs_account(&lvs_svc_stats, svc->id, p->l3_len, 0);
	lvs_account(&lvs_real_stats, ri, p->l3_len, 0);
	*real_idx = ri;
	*gen = r->gen;
	return LVS_FORWARD;
not_ours:
	lvs_count(LVS_C_PASS_NOT_VIP);
	return XDP_PASS;
}

/* ---- Output ------------------------------------------------------------------------------ */

static __always_inline int lvs_xmit(const struct lvs_real *r, __u32 fwd_counter)
{
	if (!r->ifindex) {
		lvs_count(fwd_counter);
		return XDP_TX;
	}
	if (bpf_redirect_map(&lvs_tx_ports, r->ifindex, 0) != XDP_REDIRECT) {
		lvs_count(LVS_C_DROP_REDIRECT_FAILED);
		return XDP_DROP;
	}
	lvs_count(fwd_counter);
	lvs_count(LVS_C_FWD_REDIRECT);
	return XDP_REDIRECT;
}

/* New Ethernet addresses: to the realserver (or next hop) from the egress interface. On XDP_TX
 * the egress interface is the one the packet was addressed to, so its MAC is the old dest. */
static __always_inline void lvs_set_macs(__u8 *eth, const struct lvs_real *r)
{
	if (r->ifindex)
		__builtin_memcpy(eth + ETH_ALEN, r->smac, ETH_ALEN);
	else
		__builtin_memcpy(eth + ETH_ALEN, eth, ETH_ALEN);
	__builtin_memcpy(eth, r->mac, ETH_ALEN);
}

static __always_inline int lvs_fwd_dr(struct xdp_md *ctx, const struct lvs_pkt *p,
				      const struct lvs_real *r)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	if (r->family != p->family) { /* DR cannot change the family; the compiler refuses it */
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_set_macs(data, r);
	return lvs_xmit(r, LVS_C_FWD_DR);
}

/* Sum of nwords 32-bit words from start, each read bounds-checked. */
static __always_inline __u64 lvs_csum_words(void *start, __u32 nwords, void *data_end, __u64 sum)
{
	for (int i = 0; i < (LVS_ICMP_QUOTE_MAX + 8) / 4; i++) {
		__u32 *w = start + i * 4;

		if (i >= nwords || (void *)(w + 1) > data_end)
			break;
		sum += *w;
	}
	return sum;
}

static __always_inline __u64 lvs_csum_add_buf(const void *buf, int nwords, __u64 sum)
{
	const __u32 *w = buf;

#pragma unroll
	for (int i = 0; i < nwords; i++)
		sum += w[i];
	return sum;
}

static __always_inline __u16 lvs_csum_fold32(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return lvs_csum_fold(sum);
}

/*
 * Answer the client with ICMP "fragmentation needed" (IPv4) or ICMPv6 "packet too big" carrying
 * mtu, quoting the start of its packet, from the VIP, back out the way it came (XDP_TX).
 * The quoted packet already sits where it must: only the new headers are put in front of it.
 */
static __always_inline int lvs_send_too_big(struct xdp_md *ctx, const struct lvs_pkt *p, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3_off = p->l3_off;
	__u32 quote = p->l3_len < LVS_ICMP_QUOTE_MAX ? p->l3_len : LVS_ICMP_QUOTE_MAX;
	__u32 hdrs = p->family == LVS_FAMILY_IPV4 ? 28 : 48;
	__u8 l2[LVS_L2_MAX];
	__u64 sum;

	quote &= ~3u; /* whole words: the checksum loop reads 32-bit words */
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(l2, data, LVS_L2_MAX);
	/* back to where it came from */
	__builtin_memcpy(l2, (__u8 *)data + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(l2 + ETH_ALEN, data, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	int shrink = (int)(l3_off + hdrs + quote) - (int)(data_end - data);
	if (shrink < 0 && bpf_xdp_adjust_tail(ctx, shrink))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(data, l2, LVS_L2_MAX); /* bytes past L2 are rewritten just below */

	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + (l3_off & 0x1f);
		__u8 *icmp = (void *)(iph + 1);

		if ((void *)(icmp + 8) > data_end)
			goto fail;
		*(__u8 *)iph = 0x45;
		iph->tos = 0xc0; /* internetwork control, as the kernel sends ICMP errors */
		iph->tot_len = bpf_htons(sizeof(*iph) + 8 + quote);
		iph->id = 0;
		iph->frag_off = 0;
		iph->ttl = 64;
		iph->protocol = IPPROTO_ICMP;
		iph->check = 0;
		__builtin_memcpy(&iph->saddr, p->flow.daddr, 4);
		__builtin_memcpy(&iph->daddr, p->flow.saddr, 4);
		iph->check = lvs_ipv4_csum(iph);
		icmp[0] = 3; /* destination unreachable */
		icmp[1] = 4; /* fragmentation needed and DF set */
		*(__u16 *)(icmp + 2) = 0;
		*(__u16 *)(icmp + 4) = 0;
		*(__u16 *)(icmp + 6) = bpf_htons(mtu);
		sum = lvs_csum_words(icmp, (8 + quote) / 4, data_end, 0);
		*(__u16 *)(icmp + 2) = lvs_csum_fold32(sum);
	} else {
		struct ipv6hdr *ip6 = data + (l3_off & 0x1f);
		__u8 *icmp = (void *)(ip6 + 1);
		struct {
			__u8 saddr[16];
			__u8 daddr[16];
			__be32 len;
			__be32 nexthdr;
		} ph = {};

		if ((void *)(icmp + 8) > data_end)
			goto fail;
		*(__be32 *)ip6 = bpf_htonl(6u << 28);
		ip6->payload_len = bpf_htons(8 + quote);
		ip6->nexthdr = IPPROTO_ICMPV6;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, p->flow.daddr, 16);
		__builtin_memcpy(&ip6->daddr, p->flow.saddr, 16);
		icmp[0] = 2; /* packet too big */
		icmp[1] = 0;
		*(__u16 *)(icmp + 2) = 0;
		*(__be32 *)(icmp + 4) = bpf_htonl(mtu);
		__builtin_memcpy(ph.saddr, p->flow.daddr, 16);
		__builtin_memcpy(ph.daddr, p->flow.saddr, 16);
		ph.len = bpf_htonl(8 + quote);
		ph.nexthdr = bpf_htonl(IPPROTO_ICMPV6);
		sum = lvs_csum_add_buf(&ph, sizeof(ph) / 4, 0);
		sum = lvs_csum_words(icmp, (8 + quote) / 4, data_end, sum);
		*(__u16 *)(icmp + 2) = lvs_csum_fold32(sum);
	}
	lvs_count(LVS_C_TX_ICMP_TOO_BIG);
	return XDP_TX;
fail:
	lvs_count(LVS_C_DROP_ICMP_FAILED);
	return XDP_DROP;
}

static __always_inline int lvs_fwd_tun(struct xdp_md *ctx, const struct lvs_pkt *p,
				       const struct lvs_real *r, const struct lvs_cfg *cfg,
				       int is_icmp_err)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 outer = r->family == LVS_FAMILY_IPV4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
	__u32 mtu = cfg->tun_mtu ? cfg->tun_mtu : 1500;
	__u32 l3_off = p->l3_off;
	__u8 ttl = cfg->tun_ttl ? cfg->tun_ttl : 64;
	__u8 inner_proto = p->family == LVS_FAMILY_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u8 l2[LVS_L2_MAX];

	if (!cfg_enable_tun) {
		lvs_count(LVS_C_DROP_TUN_DISABLED);
		return XDP_DROP;
	}
	if (p->l3_len + outer > mtu) {
		/* Never an ICMP error about an ICMP error; without DF the client would not listen. */
		if (is_icmp_err || !p->df || !cfg_enable_icmp || mtu <= outer + 68) {
			lvs_count(LVS_C_DROP_TOO_BIG);
			return XDP_DROP;
		}
		return lvs_send_too_big(ctx, p, mtu - outer);
	}

	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(l2, data, LVS_L2_MAX);
	lvs_set_macs(l2, r);
	if (bpf_xdp_adjust_head(ctx, -(int)outer))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	/* L2 header back at the front; what it writes past L2 is overwritten by the outer header. */
	__builtin_memcpy(data, l2, LVS_L2_MAX);
	__be16 *ethertype = data + ((l3_off - 2) & 0x1f);
	if ((void *)(ethertype + 1) > data_end)
		goto fail;

	if (r->family == LVS_FAMILY_IPV4) {
		struct iphdr *o = data + (l3_off & 0x1f);

		if ((void *)(o + 1) > data_end)
			goto fail;
		*ethertype = bpf_htons(ETH_P_IP);
		*(__u8 *)o = 0x45;
		o->tos = p->tos; /* DSCP and ECN copied (RFC 2983 uniform, RFC 6040 normal) */
		o->tot_len = bpf_htons(p->l3_len + sizeof(*o));
		o->id = 0;
		o->frag_off = bpf_htons(IP_DF_BIT);
		o->ttl = ttl;
		o->protocol = inner_proto;
		o->check = 0;
		__builtin_memcpy(&o->saddr, cfg->tun_src4, 4);
		__builtin_memcpy(&o->daddr, r->addr, 4);
		o->check = lvs_ipv4_csum(o);
	} else {
		struct ipv6hdr *o6 = data + (l3_off & 0x1f);
		/* A flow label from the flow spreads tunnels over ECMP paths like the flows inside. */
		__u32 label = lvs_flow_hash(&p->flow, 0x1f, cfg->hash_seed) & 0xfffff;

		if ((void *)(o6 + 1) > data_end)
			goto fail;
		*ethertype = bpf_htons(ETH_P_IPV6);
		*(__be32 *)o6 = bpf_htonl((6u << 28) | ((__u32)p->tos << 20) | label);
		o6->payload_len = bpf_htons(p->l3_len);
		o6->nexthdr = inner_proto;
		o6->hop_limit = ttl;
		__builtin_memcpy(&o6->saddr, cfg->tun_src6, 16);
		__builtin_memcpy(&o6->daddr, r->addr, 16);
	}
	return lvs_xmit(r, LVS_C_FWD_TUN);
fail:
	lvs_count(LVS_C_DROP_ENCAP_FAILED);
	return XDP_DROP;
}

SEC("xdp")
int lvs_director(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lvs_pkt p = {};
	__u32 zero = 0, ri = 0, gen = 0;
	struct lvs_cfg *cfg;
	int verdict, is_icmp_err = 0;

	verdict = lvs_parse(&p, data, data_end, cfg_enable_ipv6);
	if (verdict != LVS_PARSE_OK) {
		lvs_count(verdict);
		return XDP_PASS;
	}
	cfg = bpf_map_lookup_elem(&lvs_cfg, &zero);
	if (!cfg)
		return XDP_PASS;

	if (p.frag == LVS_FRAG_LATER) {
		verdict = lvs_handle_frag_later(&p, &ri, &gen);
	} else if (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP) {
		verdict = lvs_handle_flow(&p, cfg, &ri, &gen);
	} else if (cfg_enable_icmp && lvs_icmp_is_error(&p)) {
		is_icmp_err = 1;
		verdict = lvs_handle_icmp(&p, cfg, data, data_end, &ri, &gen);
	} else {
		lvs_count(LVS_C_PASS_NOT_VIP);
		return XDP_PASS;
	}
	if (verdict != LVS_FORWARD)
		return verdict;

	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	if (r->method == LVS_FWD_TUN)
		return lvs_fwd_tun(ctx, &p, r, cfg, is_icmp_err);
	return lvs_fwd_dr(ctx, &p, r);
}

char LICENSE[] SEC("license") = "GPL";
