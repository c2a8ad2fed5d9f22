// SPDX-License-Identifier: GPL-2.0
/*
 * lvs_director - an LVS director as one XDP program.
 *
 * Packet path:
 *   parse (L2, VLANs, IPv4/IPv6 + extension headers, L4)   -> not ours: XDP_PASS + PASS_* counter
 *   on every path that could forward (a virtual service's packet, found before any state is
 *   touched; a non-first fragment; an ICMP error): a destination MAC the ingress interface does
 *   not accept (lvs_l2_ifs, lvs_l2_addrs past it) -> XDP_PASS + PASS_NOT_OUR_MAC
 *   non-first fragment   -> realserver of its first fragment (lvs_frags)
 *   ICMP error quoting a virtual service's flow -> that flow's realserver (never creates state)
 *   TCP/UDP to a virtual service (proto, VIP, port; or a firewall mark lvs-xdp classifies itself,
 *   looked up first as IPVS does, by services a mark covers and by flows no port service has):
 *     connection table hit -> its realserver (its realserver deleted: dropped until it is back);
 *     miss -> a SYN_RECV connection's slot (lvs_synrecv): a retransmitted SYN keeps its
 *     realserver, the flow's next packet enters it in the connection table;
 *     else persistence template or the service's lookup table indexed by the scheduling hash
 *     (or rr cursor); a DR / Tun SYN written to its SYN_RECV slot, any other new flow entered in
 *     the connection table, or, TCP without SYN, as a stray (lvs_strays) until the flow shows
 *     it is real
 *   a deleted service's tombstone: its connections' packets dropped, other flows passed
 *   forward: DR (MAC rewrite, XDP_TX / XDP_REDIRECT), Tun (IPIP / IPv6 encapsulation, with
 *   ICMP too-big back to the client when the tunnel MTU would be exceeded) or NAT (destination
 *   rewritten to RIP:port)
 *   LVS-NAT reply (to no service; its own tuple's reply entry in lvs_conns, lvs_nat.h) -> source
 *   rewritten to VIP:port, next hop from the kernel's FIB
 *
 * Every packet increments exactly one pass / fwd / drop / tx counter in lvs_counters, plus any
 * number of event counters. The steps live in headers of their own, one concern each:
 * lvs_parse.h, lvs_l2.h, lvs_sched.h (+ lvs_hash.h), lvs_fwmark.h, lvs_conn.h (+ lvs_sync.h, lvs_synrecv.h), lvs_persist.h, lvs_frag.h, lvs_icmp.h,
 * lvs_fwd.h, on lvs_count.h, lvs_clock.h and lvs_csum.h; this file reads as the path above.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>

#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"
#include "lvs_clock.h"
#include "lvs_l2.h"
#include "lvs_sched.h"
#include "lvs_fwmark.h"
#include "lvs_persist.h"
#include "lvs_conn.h"
#include "lvs_synrecv.h"
#include "lvs_flowcache.h"
#include "lvs_frag.h"
#include "lvs_icmp.h"
#include "lvs_fwd.h"
#include "lvs_nat.h"
#include "lvs_chain.h"

/* Load-time knobs, cfg_abi_version and the ABI anchor: lvs_maps.h (the skeleton's source). */

/* LVS-NAT: a TCP / UDP packet to no service may be a realserver's reply, found by its own
 * tuple (lvs_nat.h). Returns LVS_FORWARD_REPLY with *real_idx and *egress set, or an XDP action
 * (not a reply: XDP_PASS, PASS_NOT_VIP). */
static __always_inline int lvs_handle_nat_reply(struct xdp_md *ctx, struct lvs_pkt *p,
						const struct lvs_cfg *cfg, __u32 *real_idx, __u32 *gen,
						const __u8 **egress)
{
	struct lvs_flow_key rk = p->flow;
	struct lvs_conn *c = NULL;
	struct lvs_real *r;
	struct lvs_time t;
	int found;

	lvs_time_init(&t);
	found = lvs_nat_reply_find(&rk, cfg, &t, &c, real_idx, gen);
	if (found == LVS_NAT_MISS) {
		lvs_count(LVS_C_PASS_NOT_VIP);
		return XDP_PASS;
	}
	*egress = lvs_l2_accepted(ctx);
	if (!*egress)
		return lvs_l2_pass();
	if (found == LVS_NAT_GONE || !c) {
		lvs_count(LVS_C_DROP_REAL_GONE);
		return XDP_DROP;
	}
	r = lvs_real_get(*real_idx, *gen);
	if (!r) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_nat_refresh(&rk, c, r, &t);
	if (cfg_enable_frag && p->frag == LVS_FRAG_FIRST)
		lvs_frag_first(p, *real_idx, *gen, &t);
	return LVS_FORWARD_REPLY;
}

/* TCP / UDP that may be a virtual service's: `vf`, the VIP filter's bits for the destination
 * (0: no VIP there, and the packet came here only for the marks or LVS-NAT replies). Returns LVS_FORWARD with *real_idx and *egress (the ingress
 * interface's own MAC) set, or an XDP action. */
static __always_inline int lvs_handle_flow(struct xdp_md *ctx, struct lvs_pkt *p,
					   const struct lvs_cfg *cfg, __u32 vf, __u32 *real_idx,
					   __u32 *gen, const __u8 **egress)
{
	struct lvs_svc *port_svc = NULL, *svc = NULL;
	__u32 why = LVS_C_DROP_NO_REAL;
	int new_conn = 0, stale = 0;
	struct lvs_time t;
	__u64 epoch = 0;
	__u32 ri;

	/* Traffic the VIP filter rules out (and no mark may classify) is no service's: it pays
	 * neither the flow cache nor the service lookups. */
	if (vf || (cfg->flags & LVS_CFG_F_FWMARK)) {
		epoch = lvs_fc_epoch(); /* before every lookup a cache entry is made from */
		if (lvs_fc_may_probe(p)) {
			/* An established flow: service and realserver in one per-CPU probe. */
			struct lvs_real *cr;
			struct lvs_fc_entry *e = lvs_fc_hit(p, epoch, &cr);

			if (e) {
				*egress = lvs_l2_accepted(ctx);
				if (!*egress)
					return lvs_l2_pass();
				ri = e->real;
				lvs_count(LVS_C_CONN_HIT);
				lvs_account(&lvs_svc_stats, e->svc_id, p->l3_len, 0);
				lvs_account(&lvs_real_stats, ri, p->l3_len, 0);
				p->tun_label = LVS_TUN_LABEL_SET | e->tun_label;
				*real_idx = ri;
				*gen = cr->gen;
				return LVS_FORWARD;
			}
		}
		port_svc = lvs_svc_lookup_vf(&p->flow, vf); /* the filter's bits, read once per packet */
		svc = lvs_fwmark_svc(port_svc, &p->flow, cfg);
	}
	if (!svc) {
		if (cfg->flags & LVS_CFG_F_NAT)
			return lvs_handle_nat_reply(ctx, p, cfg, real_idx, gen, egress);
		goto pass;
	}
	/* Checked only now (traffic to no service never pays the lookup) and before any state. */
	*egress = lvs_l2_accepted(ctx);
	if (!*egress)
		return lvs_l2_pass();
	lvs_time_init(&t);

	if (svc->flags & LVS_SVC_F_GONE) {
		/* A deleted service: its connections wait (dropped, never answered by the local
		 * stack with RST); any other flow is not its. */
		if (lvs_conn_held(p, cfg, &t) || lvs_synrecv_held(p, cfg, &t)) {
			why = LVS_C_DROP_SERVICE_GONE;
			goto drop;
		}
		/* A mark's tombstone falls back to the port service it covered. */
		svc = svc == port_svc ? lvs_svc_allports(&p->flow, cfg) : port_svc;
		if (!svc || (svc->flags & LVS_SVC_F_GONE))
			goto pass;
	}

	if (svc->flags & LVS_SVC_F_OPS) {
		/* One-packet scheduling: every packet scheduled, no connection entry. */
		ri = lvs_schedule(svc, &p->flow, cfg->hash_seed, &why);
		if (ri == LVS_REAL_NONE)
			goto drop;
		lvs_count(LVS_C_OPS_SCHEDULED);
		new_conn = 1;
	} else {
		const struct lvs_conn *c = NULL;
#if defined(LVS_BENCH_SYN_NO_CONNS) || defined(LVS_BENCH_SYN_NO_STATE)
		/* Benchmark only (bpf/Makefile's bench-objects): what a SYN costs without the cold
		 * tables' lines, to say what a new flow's target would take. Not a data plane. */
		int bench_syn = p->proto == IPPROTO_TCP &&
				(p->tcp_flags & (LVS_TCP_SYN | LVS_TCP_ACK | LVS_TCP_FIN | LVS_TCP_RST)) == LVS_TCP_SYN;
#endif
#ifdef LVS_BENCH_SYN_NO_CONNS
		int hit = bench_syn ? LVS_CONN_MISS : lvs_conn_hit(svc, p, cfg, &t, &ri, &stale, &c);
#else
		int hit = lvs_conn_hit(svc, p, cfg, &t, &ri, &stale, &c);
#endif
		__u32 synrecv_bucket = 0; /* a TCP flow without entry: its lvs_synrecv bucket, hashed once */

		if (hit == LVS_CONN_HIT && c)
			lvs_fc_fill(p, cfg, epoch, svc->id, c, &t);
		if (hit == LVS_CONN_GONE) {
			why = LVS_C_DROP_REAL_GONE;
			goto drop;
		}
		if (hit == LVS_CONN_MISS && p->proto == IPPROTO_TCP
#ifdef LVS_BENCH_SYN_NO_STATE
		    && !bench_syn
#endif
		    ) {
			/* A SYN_RECV connection (lvs_synrecv.h): a retransmitted SYN keeps its
			 * realserver, any other packet enters it in lvs_conns. */
			struct lvs_synrecv *e = NULL;
			struct lvs_real *er = NULL;
			int found;

			synrecv_bucket = lvs_synrecv_bucket(&p->flow);
			found = lvs_synrecv_find(synrecv_bucket, p, cfg, &t, &e, &er);

			if (found == LVS_SYNRECV_GONE) {
				why = LVS_C_DROP_REAL_GONE;
				goto drop;
			}
			if (found == LVS_SYNRECV_HIT && e && er) {
				__u8 nst = lvs_tcp_next_state(LVS_CS_SYN_RECV, p->tcp_flags);

				if (stale)
					bpf_map_delete_elem(&lvs_conns, &p->flow);
				ri = e->real;
				if (nst == LVS_CS_SYN_RECV)
					lvs_synrecv_refresh(svc, p, cfg, &t, e);
				else
					lvs_synrecv_enter(svc, p, cfg, &t, e, er, nst);
				hit = LVS_CONN_HIT;
			}
		}
		if (hit == LVS_CONN_MISS &&
		    p->proto == IPPROTO_TCP && (p->tcp_flags & (LVS_TCP_SYN | LVS_TCP_RST)) != LVS_TCP_SYN) {
			/* No SYN, no entry: forwarded as a stray, entered only once it proves a flow. */
			if (stale)
				bpf_map_delete_elem(&lvs_conns, &p->flow);
			ri = lvs_stray(svc, p, cfg, &t, &why, &new_conn);
			if (ri == LVS_REAL_NONE)
				goto drop;
		} else if (hit == LVS_CONN_MISS) {
			struct lvs_real *r;

			ri = lvs_pick_new(svc, p, cfg, &t, &why);
			if (ri == LVS_REAL_NONE)
				goto drop;
			r = bpf_map_lookup_elem(&lvs_reals, &ri);
			if (!r)
				goto bad_real;
			if (p->proto == IPPROTO_TCP && r->method != LVS_FWD_NAT &&
			    lvs_tcp_next_state(LVS_CS_NONE, p->tcp_flags) == LVS_CS_SYN_RECV) {
				/* DR / Tun: SYN_RECV kept out of lvs_conns until the handshake goes on. */
				if (stale)
					bpf_map_delete_elem(&lvs_conns, &p->flow);
#ifndef LVS_BENCH_SYN_NO_STATE
				lvs_synrecv_add(synrecv_bucket, svc, p, ri, r, cfg, &t);
#endif
			} else {
				lvs_conn_add(svc, p, ri, r, cfg, &t);
			}
			new_conn = 1;
		}
	}

	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r || !(r->flags & LVS_REAL_F_ACTIVE))
		goto bad_real;

	if (cfg_enable_frag && p->frag == LVS_FRAG_FIRST)
		lvs_frag_first(p, ri, r->gen, &t);
	lvs_account(&lvs_svc_stats, svc->id, p->l3_len, new_conn);
	lvs_account(&lvs_real_stats, ri, p->l3_len, new_conn);
	*real_idx = ri;
	*gen = r->gen;
	return LVS_FORWARD;

pass:
	lvs_count(LVS_C_PASS_NOT_VIP);
	return XDP_PASS;
bad_real:
	why = LVS_C_DROP_BAD_REAL;
drop:
	lvs_count(why);
	return XDP_DROP;
}

/* Tun: encapsulated, unless the packet would exceed the tunnel MTU; then the client is told the
 * MTU left inside the tunnel, if it will listen. */
static __always_inline int lvs_forward_tun(struct xdp_md *ctx, const struct lvs_pkt *p,
					   const struct lvs_real *r, const struct lvs_cfg *cfg,
					   const __u8 *egress, int is_icmp_err)
{
	__u32 outer = lvs_tun_outer_len(r);
	__u32 mtu = lvs_tun_mtu(cfg);

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
	return lvs_fwd_tun(ctx, p, r, cfg, egress);
}

/* The packet path; *real is the realserver a forwarded packet went to (for lvs-xdp capture). */
static __always_inline int lvs_director_run(struct xdp_md *ctx, __u32 *real)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lvs_pkt p = {};
	const __u8 *egress = NULL;
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
		egress = lvs_l2_accepted(ctx);
		if (!egress)
			return lvs_l2_pass();
		lvs_parse_forwarded(&p, data, data_end);
		verdict = lvs_handle_frag_later(&p, cfg_enable_frag, &ri, &gen);
	} else if (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP) {
		/* To no VIP, no mark, and no LVS-NAT to look for a reply of: no service's, decided
		 * first, as most of an interface's traffic is (issue 16: pass <= 1.3x XDP_PASS). */
		__u32 vf = lvs_vip_bits(cfg, p.flow.daddr);

		if (!vf && !(cfg->flags & (LVS_CFG_F_FWMARK | LVS_CFG_F_NAT))) {
			lvs_count(LVS_C_PASS_NOT_VIP);
			return XDP_PASS;
		}
		lvs_parse_forwarded(&p, data, data_end);
		verdict = lvs_handle_flow(ctx, &p, cfg, vf, &ri, &gen, &egress);
	} else if (cfg_enable_icmp && lvs_icmp_is_error(&p)) {
		egress = lvs_l2_accepted(ctx);
		if (!egress)
			return lvs_l2_pass();
		is_icmp_err = 1;
		lvs_parse_forwarded(&p, data, data_end);
		verdict = lvs_handle_icmp(&p, cfg, data, data_end, &ri, &gen);
	} else {
		lvs_count(LVS_C_PASS_NOT_VIP);
		return XDP_PASS;
	}
	if ((verdict != LVS_FORWARD && verdict != LVS_FORWARD_REPLY) || !egress)
		return verdict;

	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	*real = ri;
	if (verdict == LVS_FORWARD_REPLY)
		return lvs_nat_reply(ctx, &p, r, ri, is_icmp_err);
	if (r->method == LVS_FWD_NAT)
		return lvs_nat_forward(ctx, &p, r, egress, is_icmp_err);
	if (r->method == LVS_FWD_TUN)
		return lvs_forward_tun(ctx, &p, r, cfg, egress, is_icmp_err);
	return lvs_fwd_dr(ctx, &p, r, egress);
}

/* What the director passes goes on to the interface's next program when it shares the
 * interface by tail calls (lvs_chain.h: attached alone, or an empty slot, is XDP_PASS). */
SEC("xdp")
int lvs_director(struct xdp_md *ctx)
{
	__u32 real = LVS_CAPTURE_NONE;
	__u32 capture = lvs_capture.on; /* read once: begin and end agree on it */
	int act;

	if (capture)
		lvs_capture_begin();
	act = lvs_director_run(ctx, &real);
	if (capture)
		lvs_capture_end(ctx, act, real);
	if (act == XDP_PASS)
		return lvs_chain_pass(ctx);
	return act;
}

char LICENSE[] SEC("license") = "GPL";
