/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_nat.h - LVS-NAT (masquerading, ipvsadm -m): the director rewrites the client's packets
 * from VIP:vport to RIP:port and the realserver's replies, which are routed through the
 * director, from RIP:port back to VIP:vport, with incremental checksum updates (RFC 1624).
 *
 * State: a NAT flow has two entries in lvs_conns. The client entry (dir LVS_DIR_CLIENT, as for
 * DR and Tun) and a reply entry keyed by the reply's own tuple (RIP, client, port, cport,
 * dir LVS_DIR_REPLY), written whenever the client entry is created or refreshed, with the same
 * value (realserver slot, generation, state, timestamp). So a reply needs one lookup; the
 * VIP:vport it is rewritten to are the realserver slot's (lvs_real.vip, vport: a slot belongs to
 * one service). A reply refreshes both entries (at most once a second), so a flow where only
 * the realserver talks stays alive, as in IPVS.
 *
 * Provides: lvs_nat_mirror() (the reply entry of a client flow written), lvs_nat_reply_find()
 * (a reply's or an outward ICMP error's flow), lvs_nat_refresh() (a reply keeps both alive), lvs_nat_forward() (client side: flows, fragments,
 * ICMP errors about replies; to the realserver's MAC, XDP_TX / XDP_REDIRECT as DR) and
 * lvs_nat_reply() (realserver side: translated, TTL decremented, next hop from the kernel's FIB
 * (bpf_fib_lookup), out of the interface the FIB names when lvs-xdp is attached to it).
 * Expects: a parsed packet (lvs_parse.h) still as parsed, lvs_conns, lvs_reals, lvs_tx_ports.
 * Counts FWD_NAT, FWD_NAT_REPLY, ICMP_NAT_REPLY, PASS_NAT_NO_ROUTE, PASS_NAT_TTL, DROP_NAT_FAILED
 * and the replies' OutPkts / OutBytes (lvs_stats.out_*).
 */
#ifndef LVS_NAT_H
#define LVS_NAT_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_csum.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_sched.h"
#include "lvs_fwd.h"

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#define LVS_FORWARD_REPLY 0x101 /* handler verdict: a NAT reply of the realserver it found */
#define LVS_NAT_REFRESH_NS NSEC_PER_SEC

static __always_inline int lvs_addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const __u32 *)a, *y = (const __u32 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* A packet from the realserver's address of a NAT slot: a reply (used for non-first fragments,
 * whose recorded slot alone does not say the direction). */
static __always_inline int lvs_nat_is_reply(const struct lvs_pkt *p, const struct lvs_real *r)
{
	return r->method == LVS_FWD_NAT && lvs_addr_eq(p->flow.saddr, r->addr);
}

/* The reply tuple of a client flow going to realserver r. */
static __always_inline void lvs_nat_reply_key(struct lvs_flow_key *k, const struct lvs_flow_key *f,
					      const struct lvs_real *r)
{
	__builtin_memcpy(k->saddr, r->addr, 16);
	__builtin_memcpy(k->daddr, f->saddr, 16);
	k->sport = r->port ? r->port : f->dport;
	k->dport = f->sport;
	k->proto = f->proto;
	k->family = f->family;
	k->dir = LVS_DIR_REPLY;
}

/* The client entry c of flow p (on NAT realserver r) was created or refreshed: so is its reply
 * entry, with the same value. */
static __always_inline void lvs_nat_mirror(const struct lvs_pkt *p, const struct lvs_real *r,
					   const struct lvs_conn *c)
{
	struct lvs_flow_key k = {};
	struct lvs_conn v = *c;

	if (r->method != LVS_FWD_NAT)
		return;
	lvs_nat_reply_key(&k, &p->flow, r);
	bpf_map_update_elem(&lvs_conns, &k, &v, BPF_ANY);
}

/* What lvs_nat_reply_find() found. */
#define LVS_NAT_MISS 0
#define LVS_NAT_HIT  1
#define LVS_NAT_GONE 2 /* the realserver was deleted, its flows wait: its replies are dropped */

/*
 * The NAT flow a packet with reply tuple rk (dir set here) belongs to: its entry in *cp, its
 * realserver slot in *ri / *gen. The entry must hold as the client entry would (slot unchanged,
 * not idle beyond its state's timeout). Reads only.
 */
static __always_inline int lvs_nat_reply_find(struct lvs_flow_key *rk, const struct lvs_cfg *cfg,
					      struct lvs_time *t, struct lvs_conn **cp, __u32 *ri,
					      __u32 *gen)
{
	struct lvs_conn *c;
	struct lvs_real *r;
	__u64 limit = 0;
	__u32 idx;
	__u8 st;

	rk->dir = LVS_DIR_REPLY;
	c = bpf_map_lookup_elem(&lvs_conns, rk);
	if (!c)
		return LVS_NAT_MISS;
	idx = c->real;
	r = bpf_map_lookup_elem(&lvs_reals, &idx);
	if (!r || r->gen != c->gen || r->method != LVS_FWD_NAT ||
	    !(r->flags & (LVS_REAL_F_ACTIVE | LVS_REAL_F_GONE)))
		return LVS_NAT_MISS;
	st = c->state;
	if (st < LVS_CS_MAX)
		limit = (__u64)cfg->timeout_s[st] * NSEC_PER_SEC;
	if (limit && lvs_older_than(t, c->last_seen_ns, limit))
		return LVS_NAT_MISS;
	if (!(r->flags & LVS_REAL_F_ACTIVE))
		return LVS_NAT_GONE;
	*cp = c;
	*ri = idx;
	*gen = c->gen;
	return LVS_NAT_HIT;
}

/* A reply seen: its entry's and the client entry's timestamps move to now when older than a
 * second, so a flow where only the realserver talks stays alive, as in IPVS. */
static __always_inline void lvs_nat_refresh(const struct lvs_flow_key *rk, struct lvs_conn *c,
					    const struct lvs_real *r, struct lvs_time *t)
{
	struct lvs_flow_key fk = {};
	struct lvs_conn *fc;
	__u64 now;

	if (!lvs_older_than(t, c->last_seen_ns, LVS_NAT_REFRESH_NS))
		return;
	now = lvs_time_now(t);
	c->last_seen_ns = now;
	__builtin_memcpy(fk.saddr, rk->daddr, 16);
	__builtin_memcpy(fk.daddr, r->vip, 16);
	fk.sport = rk->dport;
	fk.dport = r->vport ? r->vport : rk->sport;
	fk.proto = rk->proto;
	fk.family = rk->family;
	fc = bpf_map_lookup_elem(&lvs_conns, &fk);
	if (fc && fc->real == c->real && fc->gen == c->gen)
		fc->last_seen_ns = now;
}

/* Writes n 16-bit words of new over the packet's at a; returns the checksum change. */
static __always_inline __u32 lvs_csum_store(__u16 *a, const __u16 *new, int n, __u32 sum)
{
#pragma unroll
	for (int i = 0; i < n; i++) {
		sum += (__u16)~a[i] + (__u32)new[i];
		a[i] = new[i];
	}
	return sum;
}

static __always_inline __u16 lvs_csum_apply(__u16 check, __u32 delta)
{
	return lvs_csum_fold((__u64)(__u16)~check + delta);
}

/* The L4 checksum after the change delta: UDP over IPv4 with checksum 0 carries none (left 0);
 * a UDP checksum that comes out 0 is sent as 0xffff (RFC 768; mandatory for IPv6). */
static __always_inline void lvs_l4_csum_update(__u16 *check, __u8 proto, __u32 delta, int v4)
{
	__u16 c;

	if (proto == IPPROTO_UDP && v4 && *check == 0)
		return;
	c = lvs_csum_apply(*check, delta);
	if (proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	*check = c;
}

/*
 * Rewrites one end of the packet: the source (src) or destination address to addr, and, when
 * the L4 header is here (not a non-first fragment) and port is not 0, that end's port. IPv4
 * header checksum and the TCP / UDP checksum (pseudo-header and port) updated.
 */
static __always_inline int lvs_nat_rewrite(void *data, void *data_end, const struct lvs_pkt *p,
					   const __u8 *addr, __u16 port, int src)
{
	__u32 l3 = p->l3_off & 0x1f;
	__u32 delta = 0;
	int v4 = p->family == LVS_FAMILY_IPV4;

	if (v4) {
		struct iphdr *iph = data + l3;
		__u8 *a;

		if ((void *)(iph + 1) > data_end)
			return -1;
		a = src ? (__u8 *)&iph->saddr : (__u8 *)&iph->daddr;
		delta = lvs_csum_store((__u16 *)a, (const __u16 *)addr, 2, 0);
		iph->check = lvs_csum_apply(iph->check, delta);
	} else {
		struct ipv6hdr *ip6 = data + l3;
		__u8 *a;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = src ? (__u8 *)&ip6->saddr : (__u8 *)&ip6->daddr;
		delta = lvs_csum_store((__u16 *)a, (const __u16 *)addr, 8, 0);
	}
	if (p->frag == LVS_FRAG_LATER)
		return 0; /* no L4 header; the first fragment carries the datagram's checksum */

	__u8 *l4 = data + (p->l4_off & 0x3fff);
	__u16 *ports = (__u16 *)l4;
	__u16 *check;

	if ((void *)(ports + 2) > data_end)
		return -1;
	if (port) {
		__u16 o = src ? ports[0] : ports[1];

		if (src)
			ports[0] = port;
		else
			ports[1] = port;
		delta += (__u16)~o + (__u32)port;
	}
	if (p->proto == IPPROTO_TCP)
		check = (__u16 *)(l4 + 16);
	else if (p->proto == IPPROTO_UDP)
		check = (__u16 *)(l4 + 6);
	else
		return 0;
	if ((void *)(check + 1) > data_end)
		return -1;
	lvs_l4_csum_update(check, p->proto, delta, v4);
	return 0;
}

/*
 * An ICMP error about a NAT flow. inward (from the client's side, about a reply VIP:vport ->
 * client): outer destination VIP -> addr (the RIP), quoted source VIP -> addr, quoted source
 * port -> port. Outward (from the realserver's side, about the client's packet client ->
 * RIP:port): outer source -> addr (the VIP), quoted destination RIP -> addr, quoted destination
 * port -> port. The quoted IPv4 header checksum and the ICMP checksum (for ICMPv6 with the outer
 * address in its pseudo-header) are updated; the quoted TCP / UDP checksum is left as quoted,
 * as IPVS does (nobody checks a quote's checksum).
 */
static __always_inline int lvs_nat_icmp(void *data, void *data_end, const struct lvs_pkt *p,
					const __u8 *addr, __u16 port, int inward)
{
	__u32 l3 = p->l3_off & 0x1f;
	__u32 l4 = p->l4_off & 0x3fff;
	__u8 *icmp = data + l4;
	__u32 delta = 0;
	__u16 *ports, *pp;

	if ((void *)(icmp + 8) > data_end)
		return -1;
	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + l3;
		struct iphdr *in = (void *)(icmp + 8);
		__u16 oldck;
		__u8 *a;

		if ((void *)(iph + 1) > data_end || (void *)(in + 1) > data_end)
			return -1;
		a = inward ? (__u8 *)&iph->daddr : (__u8 *)&iph->saddr;
		iph->check = lvs_csum_apply(iph->check, lvs_csum_store((__u16 *)a, (const __u16 *)addr, 2, 0));

		a = inward ? (__u8 *)&in->saddr : (__u8 *)&in->daddr;
		delta = lvs_csum_store((__u16 *)a, (const __u16 *)addr, 2, 0);
		oldck = in->check;
		in->check = lvs_csum_apply(oldck, delta);
		delta += (__u16)~oldck + (__u32)in->check;
		ports = (void *)in + ((in->ihl * 4) & 0x3c);
	} else {
		struct ipv6hdr *ip6 = data + l3;
		struct ipv6hdr *in6 = (void *)(icmp + 8);
		__u8 *a;

		if ((void *)(ip6 + 1) > data_end || (void *)(in6 + 1) > data_end)
			return -1;
		/* the outer address is in ICMPv6's pseudo-header */
		a = inward ? (__u8 *)&ip6->daddr : (__u8 *)&ip6->saddr;
		delta = lvs_csum_store((__u16 *)a, (const __u16 *)addr, 8, 0);
		a = inward ? (__u8 *)&in6->saddr : (__u8 *)&in6->daddr;
		delta = lvs_csum_store((__u16 *)a, (const __u16 *)addr, 8, delta);
		ports = (void *)(in6 + 1);
	}
	if ((void *)(ports + 2) > data_end)
		return -1;
	if (port) {
		pp = inward ? &ports[0] : &ports[1];
		delta += (__u16)~*pp + (__u32)port;
		*pp = port;
	}
	__u16 *ck = (__u16 *)(icmp + 2);
	*ck = lvs_csum_apply(*ck, delta);
	return 0;
}

/* Client side of a NAT flow (its packets, their non-first fragments, ICMP errors about its
 * replies) to realserver r: readdressed to RIP:port, sent to the realserver's MAC as DR. */
static __noinline int lvs_nat_forward(struct xdp_md *ctx, const struct lvs_pkt *p,
					   const struct lvs_real *r, const __u8 *egress, int is_icmp_err)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int rc;

	if (r->family != p->family) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	if (data + ETH_HLEN > data_end)
		goto fail;
	if (is_icmp_err)
		rc = lvs_nat_icmp(data, data_end, p, r->addr, r->port, 1);
	else
		rc = lvs_nat_rewrite(data, data_end, p, r->addr, r->port, 0);
	if (rc)
		goto fail;
	lvs_set_macs(data, r, egress);
	return lvs_xmit(r, LVS_C_FWD_NAT);
fail:
	lvs_count(LVS_C_DROP_NAT_FAILED);
	return XDP_DROP;
}

static __always_inline void lvs_account_out(void *stats_map, __u32 idx, __u32 bytes)
{
	struct lvs_stats *s = bpf_map_lookup_elem(stats_map, &idx);

	if (!s)
		return;
	s->out_packets++;
	s->out_bytes += bytes;
}

/*
 * Realserver side of a NAT flow (a reply, a non-first fragment of one, an ICMP error about the
 * client's packet) of realserver slot ri: the next hop toward the client from the kernel's FIB,
 * looked up first. Without a resolved next hop on an interface lvs-xdp is attached to, larger
 * than that interface's MTU (the FIB says "fragmentation needed"), or with a TTL that expires
 * here, the packet goes to the kernel untouched: it routes it (and resolves the neighbour, so
 * the flow's next replies are translated here), tells the realserver its path MTU, or answers
 * time exceeded.
 * Otherwise: source VIP:vport, TTL / hop limit decremented as by a router, new MACs, sent.
 */
static __noinline int lvs_nat_reply(struct xdp_md *ctx, const struct lvs_pkt *p,
					 const struct lvs_real *r, __u32 ri, int is_icmp_err)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3 = p->l3_off & 0x1f;
	struct bpf_fib_lookup fib = {};
	__u32 ifindex;
	int rc;

	if (r->family != p->family) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	if (data + ETH_HLEN > data_end)
		goto fail;
	fib.ifindex = ctx->ingress_ifindex;
	fib.l4_protocol = p->proto;
	fib.tot_len = p->l3_len;
	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + l3;

		if ((void *)(iph + 1) > data_end)
			goto fail;
		if (iph->ttl <= 1) {
			lvs_count(LVS_C_PASS_NAT_TTL);
			return XDP_PASS;
		}
		fib.family = AF_INET;
		fib.tos = iph->tos;
		__builtin_memcpy(&fib.ipv4_src, r->vip, 4);
		fib.ipv4_dst = iph->daddr;
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			goto fail;
		if (ip6->hop_limit <= 1) {
			lvs_count(LVS_C_PASS_NAT_TTL);
			return XDP_PASS;
		}
		fib.family = AF_INET6;
		__builtin_memcpy(fib.ipv6_src, r->vip, 16);
		__builtin_memcpy(fib.ipv6_dst, &ip6->daddr, 16);
	}
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	ifindex = fib.ifindex;
	if (rc != BPF_FIB_LKUP_RET_SUCCESS ||
	    (ifindex != ctx->ingress_ifindex && !bpf_map_lookup_elem(&lvs_tx_ports, &ifindex))) {
		lvs_count(LVS_C_PASS_NAT_NO_ROUTE);
		return XDP_PASS;
	}

	if (is_icmp_err)
		rc = lvs_nat_icmp(data, data_end, p, r->vip, r->vport, 0);
	else
		rc = lvs_nat_rewrite(data, data_end, p, r->vip, r->vport, 1);
	if (rc)
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + ETH_HLEN > data_end)
		goto fail;
	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + l3;
		__u16 o, n;

		if ((void *)(iph + 1) > data_end)
			goto fail;
		o = *(__u16 *)&iph->ttl; /* the TTL / protocol word */
		iph->ttl--;
		n = *(__u16 *)&iph->ttl;
		iph->check = lvs_csum_replace16(iph->check, o, n);
	} else {
		struct ipv6hdr *ip6 = data + l3;

		if ((void *)(ip6 + 1) > data_end)
			goto fail;
		ip6->hop_limit--;
	}
	__builtin_memcpy(data, fib.dmac, ETH_ALEN);
	__builtin_memcpy((__u8 *)data + ETH_ALEN, fib.smac, ETH_ALEN);
	rc = XDP_TX;
	if (ifindex != ctx->ingress_ifindex) {
		if (bpf_redirect_map(&lvs_tx_ports, ifindex, 0) != XDP_REDIRECT) {
			lvs_count(LVS_C_DROP_REDIRECT_FAILED);
			return XDP_DROP;
		}
		lvs_count(LVS_C_FWD_REDIRECT);
		rc = XDP_REDIRECT;
	}
	if (is_icmp_err)
		lvs_count(LVS_C_ICMP_NAT_REPLY);
	lvs_account_out(&lvs_svc_stats, r->svc_id, p->l3_len);
	lvs_account_out(&lvs_real_stats, ri, p->l3_len);
	lvs_count(LVS_C_FWD_NAT_REPLY);
	return rc;
fail:
	lvs_count(LVS_C_DROP_NAT_FAILED);
	return XDP_DROP;
}

#endif /* LVS_NAT_H */
