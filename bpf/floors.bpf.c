// SPDX-License-Identifier: GPL-2.0
/*
 * Floor programs: the least an XDP program can do for each kind of packet. Benchmarks report the
 * director's cost as a ratio to these, measured in the same run (the machines are noisy).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"

SEC("xdp")
int floor_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("xdp")
int floor_drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

/* Parse Ethernet, swap the MACs, send back: what any XDP_TX forwarder must do. */
SEC("xdp")
int floor_swap_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	__u8 tmp[ETH_ALEN];

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	__builtin_memcpy(tmp, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, tmp, ETH_ALEN);
	return XDP_TX;
}

/* Parse Ethernet + IPv4, push an outer IPv4 header (checksummed) and send back: the Tun floor. */
SEC("xdp")
int floor_push_ipv4_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *inner;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	inner = (void *)(eth + 1);
	if ((void *)(inner + 1) > data_end)
		return XDP_DROP;
	__u16 inner_len = bpf_ntohs(inner->tot_len);

	if (bpf_xdp_adjust_head(ctx, -(int)sizeof(struct iphdr)))
		return XDP_DROP;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	struct ethhdr *neth = data;
	struct ethhdr *oeth = data + sizeof(struct iphdr);
	struct iphdr *outer = (void *)(neth + 1);
	if ((void *)(oeth + 1) > data_end || (void *)(outer + 1) > data_end)
		return XDP_DROP;
	__builtin_memcpy(neth->h_dest, oeth->h_source, ETH_ALEN);
	__builtin_memcpy(neth->h_source, oeth->h_dest, ETH_ALEN);
	neth->h_proto = bpf_htons(ETH_P_IP);
	outer->version = 4;
	outer->ihl = 5;
	outer->tos = 0;
	outer->tot_len = bpf_htons(inner_len + sizeof(struct iphdr));
	outer->id = 0;
	outer->frag_off = bpf_htons(0x4000);
	outer->ttl = 64;
	outer->protocol = IPPROTO_IPIP;
	outer->saddr = bpf_htonl(0x0a000001);
	outer->daddr = bpf_htonl(0x0a000002);
	outer->check = 0;
	__u32 sum = 0;
	__u16 *w = (__u16 *)outer;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	outer->check = ~sum;
	return XDP_TX;
}

/* Keeps the ABI structs in this object's BTF too (binding tests read layouts from it). */
struct lvs_abi_anchor {
	struct lvs_svc_key svc_key;
	struct lvs_svc svc;
	struct lvs_real real;
	enum lvs_counter counter;
};
const volatile struct lvs_abi_anchor floor_abi_anchor;
const volatile __u32 floor_knob = 7;

char LICENSE[] SEC("license") = "GPL";
