/* SPDX-License-Identifier: GPL-2.0 */
/* lvs_csum.h - Internet checksums for the headers the director writes. */
#ifndef LVS_CSUM_H
#define LVS_CSUM_H

#include <linux/types.h>
#include <linux/ip.h>

static __always_inline __u16 lvs_csum_fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~(__u16)sum;
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

#endif /* LVS_CSUM_H */
