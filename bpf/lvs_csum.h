/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_csum.h - Internet checksums (RFC 1071) for the headers the director writes and the
 * decapsulator checks and marks; shared by both programs.
 *
 * Provides: sums of 16-bit words (lvs_ipv4_csum()) and of 32-bit words, from the stack
 * (lvs_csum_add_buf()) or from the packet (lvs_csum_pkt_words(), every read bounds-checked),
 * folded into the checksum field's value by lvs_csum_fold() / lvs_csum_fold64(); and the RFC 1624
 * update of a checksum when one 16-bit word changes (lvs_csum_replace16()).
 * Expects nothing: words are summed as they lie in memory, so the result is in network order
 * wherever the words were (one's complement sums do not care about byte order).
 */
#ifndef LVS_CSUM_H
#define LVS_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

/* A sum below 2^32 folded to 16 bits and inverted: the value of the checksum field (0 when the
 * words summed include a correct checksum field). */
static __always_inline __u16 lvs_csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~(__u16)sum;
}

/* The same for any 64-bit sum (of 32-bit words): first folded below 2^32. */
static __always_inline __u16 lvs_csum_fold64(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	return lvs_csum_fold(sum);
}

/* Checksum of an option-less IPv4 header whose check field is zero. */
static __always_inline __u16 lvs_ipv4_csum(struct iphdr *iph)
{
	__u16 *w = (__u16 *)iph;
	__u64 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*iph) / 2); i++)
		sum += w[i];
	return lvs_csum_fold(sum);
}

/* sum plus nwords 32-bit words of a buffer on the stack (a pseudo-header); nwords constant. */
static __always_inline __u64 lvs_csum_add_buf(const void *buf, int nwords, __u64 sum)
{
	const __u32 *w = buf;

#pragma unroll
	for (int i = 0; i < nwords; i++)
		sum += w[i];
	return sum;
}

/* sum plus nwords 32-bit words of the packet from start, each read bounds-checked: stops at
 * data_end. max (a constant, >= any nwords) bounds the loop for the verifier; not unrolled, as
 * both callers' bounds (an IPv4 header's 15 words, an ICMP quote's 34) would make it large. */
static __always_inline __u64 lvs_csum_pkt_words(void *start, __u32 nwords, __u32 max,
						void *data_end, __u64 sum)
{
#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < max && i < nwords; i++) {
		__u32 *w = start + i * 4;

		if ((void *)(w + 1) > data_end)
			break;
		sum += *w;
	}
	return sum;
}

/* RFC 1624 (eqn. 3): the checksum after one 16-bit word it covers changes from old to new. */
static __always_inline __u16 lvs_csum_replace16(__u16 check, __u16 old, __u16 new)
{
	return lvs_csum_fold((__u32)(__u16)~check + (__u16)~old + new);
}

#endif /* LVS_CSUM_H */
