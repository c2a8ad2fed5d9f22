/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_fwmark.h - firewall-mark services: lvs-xdp's own classification, standing in for the
 * netfilter mark (iptables -t mangle ... -j MARK) that IPVS reads and XDP never sees.
 *
 * Provides: lvs_fwmark_svc() (the firewall-mark service a flow classifies to, else the port
 * service it was given). As IPVS (ip_vs_service_find looks the fwmark up before protocol, VIP
 * and port), a mark with a service wins over a port service; the control plane flags the port
 * services a mark covers (LVS_SVC_F_MARKED), so only those and flows to no port service pay the
 * trie lookup, and nothing does while lvs_cfg lacks LVS_CFG_F_FWMARK (no marks defined).
 * Expects: lvs_fwmarks and lvs_services (lvs_maps.h), filled as lvs_abi.h describes. Counts
 * nothing: the caller's path counts the outcome.
 */
#ifndef LVS_FWMARK_H
#define LVS_FWMARK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"
#include "lvs_maps.h"

/* The mark of a flow (0: none): the longest matching prefix's first range holding the port. */
static __always_inline __u32 lvs_fwmark_classify(const struct lvs_flow_key *f)
{
	struct lvs_fwmark_key k = {};
	struct lvs_fwmark_val *v;
	__u16 port = bpf_ntohs(f->dport);

	k.prefixlen = 16 + 128; /* an IPv4 address's other 12 bytes are zero, as in the entries */
	k.family = f->family;
	k.proto = f->proto;
	__builtin_memcpy(k.addr, f->daddr, 16);
	v = bpf_map_lookup_elem(&lvs_fwmarks, &k);
	if (!v)
		return 0;
#pragma unroll
	for (int i = 0; i < LVS_FWMARK_RANGES; i++) {
		if (i >= v->count)
			break;
		if (port >= v->lo[i] && port <= v->hi[i])
			return v->mark[i];
	}
	return 0;
}

/* The service a flow belongs to: its mark's service when the flow classifies to a mark that has
 * one (and the port service, if any, is flagged as covered), else svc (the port service or NULL). */
static __always_inline struct lvs_svc *lvs_fwmark_svc(struct lvs_svc *svc, const struct lvs_flow_key *f,
						      const struct lvs_cfg *cfg)
{
	struct lvs_svc_key k = {};
	struct lvs_svc *m;
	__u32 mark;

	if (!(cfg->flags & LVS_CFG_F_FWMARK))
		return svc;
	if (svc && !(svc->flags & LVS_SVC_F_MARKED))
		return svc;
	mark = lvs_fwmark_classify(f);
	if (!mark)
		return svc;
	mark = bpf_htonl(mark);
	__builtin_memcpy(k.addr, &mark, 4);
	k.proto = LVS_PROTO_FWMARK;
	k.family = f->family;
	m = bpf_map_lookup_elem(&lvs_services, &k);
	return m ? m : svc; /* a mark without a service: IPVS goes on to the port service too */
}

#endif /* LVS_FWMARK_H */
