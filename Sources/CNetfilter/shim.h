#ifndef NFTPROXY_CNETFILTER_SHIM_H
#define NFTPROXY_CNETFILTER_SHIM_H
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/uio.h>
#include <linux/netlink.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <libmnl/libmnl.h>
#include <libnftnl/table.h>
#include <libnftnl/chain.h>
#include <libnftnl/rule.h>
#include <libnftnl/expr.h>
#include <libnftnl/set.h>
#include <libnftnl/batch.h>
#include <libnftnl/gen.h>
#include <libnftnl/common.h>

/* glibc declares setns(2) only under _GNU_SOURCE, which must not be defined here: it would change
 * libc struct layouts against Swift's Glibc module. Declare it ourselves. */
extern int setns(int fd, int nstype);
#define NFTP_CLONE_NEWNET 0x40000000 /* CLONE_NEWNET */
static inline int nftp_setns(int fd) { return setns(fd, NFTP_CLONE_NEWNET); }

/* Netlink socket options that are macros. */
static inline int nftp_sol_netlink(void) { return SOL_NETLINK; }
static inline int nftp_netlink_ext_ack(void) { return NETLINK_EXT_ACK; }
static inline int nftp_netlink_cap_ack(void) { return NETLINK_CAP_ACK; }
static inline int nftp_so_sndbufforce(void) { return SO_SNDBUFFORCE; }
static inline int nftp_so_rcvbufforce(void) { return SO_RCVBUFFORCE; }

/* CTA_FILTER_ORIG_FLAGS bit selecting the L4 protocol number: kernel ABI (nf_internals.h),
 * not exported in the UAPI headers. */
#define NFTP_CTA_FILTER_FLAG_PROTO_NUM (1u << 3)
#endif
