/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_sync.h - connection sync: a connection entry reported to the control plane (the ring
 * buffer lvs_sync_events) where IPVS's master syncs it (ip_vs_sync.c, ip_vs_sync_conn_needed),
 * so that `run` can send it to the backups in IPVS's own sync messages.
 *
 * When (only while lvs_cfg.flags has LVS_CFG_F_SYNC; only client packets, as IPVS syncs from
 * ip_vs_in; never one-packet-scheduling services, whose packets make no entry):
 *  - a TCP entry whose state changes into ESTABLISHED, FIN_WAIT or CLOSE (a new entry counts as
 *    a change from NONE, a promoted stray as NONE -> ESTABLISHED). Never into SYN_RECV, which
 *    IPVS does not sync either: a SYN flood reports nothing, which bounds the ring's load by
 *    the connections that complete a handshake;
 *  - a new UDP entry;
 *  - a live ESTABLISHED or UDP entry again when its timestamp refresh (at most once a second,
 *    lvs_conn.h) crosses a multiple of lvs_cfg.sync_refresh_s seconds, so a backup's copy of an
 *    idle-but-alive flow does not expire (IPVS's sync_refresh_period). No field is kept for it:
 *    the entry's previous timestamp and the new one say whether a boundary lies between them.
 *
 * Cost: the one call site is the entry's refresh (a state change or a second gone by), not every
 * packet; with the flag clear it is one test of lvs_cfg.flags there. An event is reserved in the
 * ring and written in place (no stack copy), without wakeup (the reader consumes on a timer).
 * A full ring loses the event (SYNC_LOST), never the packet; each event written counts
 * SYNC_EVENT.
 *
 * Provides: lvs_sync_conn(). Expects: lvs_sync_events (lvs_maps.h), the packet's flow, its
 * service and the realserver slot the entry is on.
 */
#ifndef LVS_SYNC_H
#define LVS_SYNC_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_count.h"

#define LVS_SYNC_NSEC 1000000000ULL

/* Whether IPVS would sync an entry going from state st to nst (st == nst: a refresh at `now` of
 * an entry last refreshed at `then`). */
static __always_inline int lvs_sync_wanted(const struct lvs_cfg *cfg, __u8 st, __u8 nst, __u64 then,
					   __u64 now)
{
	__u64 period;

	if (nst != st)
		return nst == LVS_CS_ESTABLISHED || nst == LVS_CS_FIN_WAIT || nst == LVS_CS_CLOSE ||
		       nst == LVS_CS_UDP;
	if (nst != LVS_CS_ESTABLISHED && nst != LVS_CS_UDP)
		return 0;
	period = (__u64)cfg->sync_refresh_s * LVS_SYNC_NSEC;
	return period && now / period != then / period;
}

/* Reports the entry of packet p (service svc, realserver slot r) now in state nst. */
static __always_inline void lvs_sync_emit(const struct lvs_svc *svc, const struct lvs_pkt *p,
					  const struct lvs_real *r, __u8 nst)
{
	struct lvs_sync_event *e = bpf_ringbuf_reserve(&lvs_sync_events, sizeof(*e), 0);

	if (!e) {
		lvs_count(LVS_C_SYNC_LOST);
		return;
	}
	__builtin_memcpy(e->caddr, p->flow.saddr, 16);
	__builtin_memcpy(e->vaddr, p->flow.daddr, 16);
	__builtin_memcpy(e->daddr, r->addr, 16);
#pragma unroll
	for (int i = 0; i < 16; i++)
		e->pcaddr[i] = p->flow.saddr[i] & svc->persist_mask[i];
	e->cport = p->flow.sport;
	e->vport = p->flow.dport;
	e->rport = r->port;
	e->proto = p->flow.proto;
	e->family = p->flow.family;
	e->dfamily = r->family;
	e->method = r->method;
	e->state = nst;
	e->flags = (svc->flags & LVS_SVC_F_PERSIST ? LVS_SYNC_F_PERSIST : 0) |
		   (svc->flags & LVS_SVC_F_ALLPORTS ? LVS_SYNC_F_ALLPORTS : 0);
	e->fwmark = svc->fwmark;
	e->persist_timeout = svc->flags & LVS_SVC_F_PERSIST ? svc->persist_timeout : 0;
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	lvs_count(LVS_C_SYNC_EVENT);
}

/*
 * An entry was written: state st -> nst (st == nst: refreshed), its previous timestamp `then`
 * (0 for a new entry), the new one `now`. Called where lvs_conn.h writes entries, never on a
 * packet that leaves the entry as it was.
 */
static __always_inline void lvs_sync_conn(const struct lvs_cfg *cfg, const struct lvs_svc *svc,
					  const struct lvs_pkt *p, const struct lvs_real *r, __u8 st,
					  __u8 nst, __u64 then, __u64 now)
{
	if (!(cfg->flags & LVS_CFG_F_SYNC))
		return;
	if (lvs_sync_wanted(cfg, st, nst, then, now))
		lvs_sync_emit(svc, p, r, nst);
}

#endif /* LVS_SYNC_H */
