/*
 * net_fast.c: the networking part of the C fast path of `nsbox run`:
 *
 *   nsbox [-n NS] run --net --bridge BR --addr A.B.C.D/N [--gateway A.B.C.D]
 *         [--ifname NAME] ... -- CMD
 *
 * included by run_fast.c and run from its ELF constructor, before the Go
 * runtime starts. It does what nsnet.CheckBridge and nsnet.Attach do for a
 * static address, with a minimal rtnetlink client (raw NETLINK_ROUTE socket,
 * NLM_F_ACK on every request, every ack's error checked):
 *
 * - before the spawn: a netlink socket in the bridge's namespace (-n NS:
 *   setns into /run/netns/NS for the socket() call and straight back; the
 *   constructor is single-threaded), RTM_GETLINK of BR, which must be a
 *   bridge (IFLA_LINKINFO kind);
 * - while the child is held at the shim's go-ahead (the spawn hook): one
 *   RTM_NEWLINK creates the veth, host end nsb%x (the child's pid; while
 *   that name is taken, nsb%x-%x with the try number) with
 *   IFLA_MASTER BR and IFF_UP, peer --ifname (default eth0) created
 *   directly in the child's namespace (IFLA_NET_NS_FD of /proc/PID/ns/net);
 *   then one batch in the child's namespace: lo up, the interface up, the
 *   address (IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS 0, scope universe, no
 *   broadcast, as rtnl.AddAddr) and the default route via the gateway
 *   (table main, protocol boot, scope universe, unicast, RTA_GATEWAY and
 *   RTA_OIF, as rtnl.AddRoute). Three netlink round trips in all; then,
 *   as nsnet's waitRunning, RTM_GETLINK of both ends until each reports
 *   IFF_RUNNING (bounded by NSB_LINK_RUNNING_WAIT_NS, generated from
 *   internal/abi): until the kernel's link watcher has run, the payload's
 *   first packet (a SYN, a DISCOVER) is dropped and costs 1 s.
 *
 * Errors: this file never prints. The parser leaves anything unusual to Go
 * (IPv6, --dhcp, non-canonical addresses, a network address, a gateway
 * outside the subnet...). Any failure before the spawn returns to Go before
 * anything exists; a failure in the hook deletes the host end if it was
 * created (an RCU grace period, fine on the error path), closes every fd
 * that holds the child's namespace, and makes the spawn kill and reap the
 * child before it ran anything; run_fast.c then restores its signal state
 * and returns to Go, which does everything again and prints its own
 * canonical `nsbox: ...` line (exit 125). So the error messages are Go's by
 * construction.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "nsb_name.h" /* name rules and defaults generated from Go */

#ifndef IFA_FLAGS
#define IFA_FLAGS 8
#endif

/* nsb_net is the static network of one sandbox: the parsed flags, then the
 * state shared by the steps. */
struct nsb_net {
	const char *bridge_ns; /* -n NAME, or NULL: nsbox's own namespace */
	const char *bridge;
	const char *ifname;    /* the sandbox end; "eth0" by default */
	uint32_t addr, gw;     /* host byte order */
	int prefix, has_gw;

	int br_index; /* the bridge's ifindex in its namespace */
	int fd;       /* netlink socket in the bridge's namespace, or -1 */
	uint32_t seq;
};

/* nsb_net_name_ok accepts a link name of rtnl.ValidateLinkName's rule
 * (internal/names.Link, generated), ASCII only. */
static int nsb_net_name_ok(const char *s) { return nsb_name_ok(&nsb_rule_link, s); }

/* nsb_net_nsname_ok accepts a name of /run/netns (netns.ValidateName's rule
 * internal/names.Netns, generated), ASCII only and not flag-like. */
static int nsb_net_nsname_ok(const char *s) { return nsb_name_ok(&nsb_rule_netns, s); }

/* nsb_net_ipv4 parses a canonical dotted quad (no leading zeros, as
 * netip.ParseAddr wants) at s; it returns the end, or NULL. */
static const char *nsb_net_ipv4(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned o = 0;
		int digits = 0;
		if (i > 0 && *s++ != '.')
			return NULL;
		if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
			return NULL;
		for (; *s >= '0' && *s <= '9' && digits < 4; s++, digits++)
			o = o * 10 + (unsigned)(*s - '0');
		if (digits == 0 || digits > 3 || o > 255)
			return NULL;
		v = v << 8 | o;
	}
	*out = v;
	return s;
}

/* nsb_net_unusual is true for 0/8, 127/8 (to which rtnl.AddAddr gives host
 * scope), multicast and class E: left to Go. */
static int nsb_net_unusual(uint32_t a)
{
	uint32_t first = a >> 24;
	return first == 0 || first == 127 || first >= 224;
}

/* nsb_net_parse_addr fills n from --addr and --gateway (gw may be NULL),
 * as strict as nsnet.Config.Validate: 0 when the fast path can take them. */
static int nsb_net_parse_addr(struct nsb_net *n, const char *addr, const char *gw)
{
	const char *p = nsb_net_ipv4(addr, &n->addr);
	uint32_t mask;
	int bits = 0;

	if (!p || *p++ != '/' || *p < '0' || *p > '9' || (p[0] == '0' && p[1]))
		return -1;
	for (; *p >= '0' && *p <= '9' && bits <= 32; p++)
		bits = bits * 10 + (*p - '0');
	if (*p || bits < 1 || bits > 32 || nsb_net_unusual(n->addr))
		return -1;
	n->prefix = bits;
	mask = bits == 32 ? ~0U : ~(~0U >> bits);
	if (bits < 31 && ((n->addr & mask) == n->addr || (n->addr | ~mask) == n->addr))
		return -1; /* the network or broadcast address of its subnet */
	if (!gw)
		return 0;
	p = nsb_net_ipv4(gw, &n->gw);
	if (!p || *p || nsb_net_unusual(n->gw) || (n->gw & mask) != (n->addr & mask) || n->gw == n->addr)
		return -1;
	n->has_gw = 1;
	return 0;
}

/* nsb_net_parse checks the raw flag values (bridge_ns may be NULL; ifname
 * and gw too) and fills n. It returns 0 when the fast path can take them. */
static int nsb_net_parse(struct nsb_net *n, const char *bridge_ns, const char *bridge, const char *addr,
			 const char *gw, const char *ifname)
{
	memset(n, 0, sizeof *n);
	n->fd = -1;
	if (bridge_ns && !nsb_net_nsname_ok(bridge_ns))
		return -1;
	if (!bridge || !addr || !nsb_net_name_ok(bridge) || (ifname && !nsb_net_name_ok(ifname)))
		return -1;
	n->bridge_ns = bridge_ns;
	n->bridge = bridge;
	n->ifname = ifname ? ifname : NSB_DEFAULT_IFNAME;
	return nsb_net_parse_addr(n, addr, gw);
}

/* nsb_nl is one netlink request buffer: messages appended one after the
 * other (a batch), each acked. */
struct nsb_nl {
	union {
		char buf[2048];
		struct nlmsghdr align;
	} u;
	size_t len, msg; /* used bytes; offset of the open message */
	int nmsg;
	uint32_t first_seq;
};

#define NSB_ALIGN(x) (((x) + 3U) & ~3U)

/* nsb_nl_put appends len bytes (zeros when data is NULL), aligned to 4. */
static void *nsb_nl_put(struct nsb_nl *b, const void *data, size_t len)
{
	char *p;
	if (b->len + NSB_ALIGN(len) > sizeof b->u.buf)
		return NULL;
	p = b->u.buf + b->len;
	memset(p, 0, NSB_ALIGN(len));
	if (data)
		memcpy(p, data, len);
	b->len += NSB_ALIGN(len);
	return p;
}

/* nsb_nl_begin opens a message of type with NLM_F_REQUEST|NLM_F_ACK|flags
 * and its fixed header (hdr, hlen). */
static int nsb_nl_begin(struct nsb_nl *b, struct nsb_net *n, uint16_t type, uint16_t flags, const void *hdr,
			size_t hlen)
{
	struct nlmsghdr h = {0, type, (uint16_t)(NLM_F_REQUEST | NLM_F_ACK | flags), ++n->seq, 0};
	if (b->nmsg++ == 0)
		b->first_seq = h.nlmsg_seq;
	b->msg = b->len;
	if (!nsb_nl_put(b, &h, sizeof h) || !nsb_nl_put(b, hdr, hlen))
		return -1;
	return 0;
}

/* nsb_nl_end sets the length of the open message. */
static void nsb_nl_end(struct nsb_nl *b)
{
	((struct nlmsghdr *)(void *)(b->u.buf + b->msg))->nlmsg_len = (uint32_t)(b->len - b->msg);
}

/* nsb_nl_attr appends an attribute; it returns its offset, or 0 when full. */
static size_t nsb_nl_attr(struct nsb_nl *b, uint16_t type, const void *data, size_t len)
{
	struct nlattr a = {(uint16_t)(NLA_HDRLEN + len), type};
	size_t off = b->len;
	if (!nsb_nl_put(b, &a, sizeof a) || (len && !nsb_nl_put(b, data, len)))
		return 0;
	return off;
}

/* nsb_nl_nest_end closes the nested attribute that starts at off. */
static void nsb_nl_nest_end(struct nsb_nl *b, size_t off)
{
	((struct nlattr *)(void *)(b->u.buf + off))->nla_len = (uint16_t)(b->len - off);
}

static int nsb_nl_u32(struct nsb_nl *b, uint16_t type, uint32_t v)
{
	return nsb_nl_attr(b, type, &v, sizeof v) ? 0 : -1;
}

static int nsb_nl_str(struct nsb_nl *b, uint16_t type, const char *s)
{
	return nsb_nl_attr(b, type, s, strlen(s) + 1) ? 0 : -1;
}

/* nsb_nl_socket opens a netlink socket of protocol (NETLINK_ROUTE here,
 * NETLINK_NETFILTER for nft_fast.c) in the network namespace nsfd (-1: the
 * current one). The socket() call is the only thing done in that
 * namespace: the thread is back in its own before this returns. */
static int nsb_nl_socket(int nsfd, int protocol)
{
	struct timeval tv = {5, 0};
	int self = -1, fd = -1;

	if (nsfd >= 0) {
		self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self < 0 || setns(nsfd, CLONE_NEWNET) < 0)
			goto out;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (nsfd >= 0 && setns(self, CLONE_NEWNET) < 0) {
		/* Cannot happen (we came from there, as root). Go must never
		 * run in a foreign namespace: die without running anything. */
		_exit(125);
	}
	/* Below 3 (a closed stdio fd) the child would take it for the
	 * payload's stdin, stdout or stderr: leave that case to Go. */
	if (fd >= 0 && (fd < 3 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)) {
		close(fd);
		fd = -1;
	}
out:
	if (self >= 0)
		close(self);
	return fd;
}

/* nsb_net_open_ns opens /run/netns/NAME (as netns.Open: it must be an nsfs
 * file); -1 on failure. */
static int nsb_net_open_ns(const char *name)
{
	char path[300];
	struct statfs st;
	int fd;

	if (snprintf(path, sizeof path, NSB_NETNS_DIR "/%s", name) >= (int)sizeof path)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && (fstatfs(fd, &st) < 0 || st.f_type != NSFS_MAGIC)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* nsb_nl_reply receives a message that is not an ack (RTM_NEWLINK of a
 * get); ctx is the caller's. */
typedef int (*nsb_nl_reply)(void *ctx, const struct nlmsghdr *h);

/* nsb_nl_send sends the batch b on fd and reads until every message of it
 * is acked. It returns 0, or the first negative errno (of an ack, of the
 * socket, or -EPROTO for a reply it cannot take). */
static int nsb_nl_send(int fd, struct nsb_nl *b, nsb_nl_reply reply, void *ctx)
{
	static union {
		char buf[16384];
		struct nlmsghdr align;
	} in;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	int acked = 0, first_err = 0;
	ssize_t n;

	do
		n = sendto(fd, b->u.buf, b->len, 0, (struct sockaddr *)&kernel, sizeof kernel);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)b->len)
		return n < 0 ? -errno : -EPROTO;
	while (acked < b->nmsg) {
		do
			n = recv(fd, in.buf, sizeof in.buf, MSG_TRUNC);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n > (ssize_t)sizeof in.buf)
			return -EMSGSIZE;
		for (struct nlmsghdr *h = &in.align; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq < b->first_seq || h->nlmsg_seq >= b->first_seq + (uint32_t)b->nmsg)
				continue; /* not ours */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
					return -EPROTO;
				acked++;
				if (e->error < 0 && first_err == 0)
					first_err = e->error;
			} else if (!reply || reply(ctx, h) < 0) {
				if (first_err == 0)
					first_err = -EPROTO;
			}
		}
	}
	return first_err;
}

/* nsb_net_bridge_reply takes the RTM_NEWLINK reply about the bridge: it
 * records the index, and fails unless IFLA_LINKINFO's IFLA_INFO_KIND is
 * "bridge". */
static int nsb_net_bridge_reply(void *ctx, const struct nlmsghdr *h)
{
	struct nsb_net *n = ctx;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	int len, is_bridge = 0;

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof *ifi))
		return -1;
	len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof *ifi));
	for (const struct rtattr *a = IFLA_RTA(ifi); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		if ((a->rta_type & NLA_TYPE_MASK) != IFLA_LINKINFO)
			continue;
		int ilen = (int)RTA_PAYLOAD(a);
		for (const struct rtattr *k = RTA_DATA(a); RTA_OK(k, ilen); k = RTA_NEXT(k, ilen))
			if ((k->rta_type & NLA_TYPE_MASK) == IFLA_INFO_KIND &&
			    RTA_PAYLOAD(k) >= sizeof "bridge" - 1 &&
			    strncmp(RTA_DATA(k), "bridge", RTA_PAYLOAD(k)) == 0)
				is_bridge = 1;
	}
	if (!is_bridge || ifi->ifi_index <= 0)
		return -1;
	n->br_index = ifi->ifi_index;
	return 0;
}

/* nsb_net_check_bridge opens the socket in the bridge's namespace and
 * checks that BR is a bridge (as nsnet.CheckBridge); 0 on success. On
 * failure nothing stays open. */
static int nsb_net_check_bridge(struct nsb_net *n)
{
	struct ifinfomsg ifi = {0};
	struct nsb_nl b = {0};
	int nsfd = -1;

	if (n->bridge_ns && (nsfd = nsb_net_open_ns(n->bridge_ns)) < 0)
		return -1;
	n->fd = nsb_nl_socket(nsfd, NETLINK_ROUTE);
	if (nsfd >= 0)
		close(nsfd);
	if (n->fd < 0)
		return -1;
	ifi.ifi_family = AF_UNSPEC;
	if (nsb_nl_begin(&b, n, RTM_GETLINK, 0, &ifi, sizeof ifi) < 0 || nsb_nl_str(&b, IFLA_IFNAME, n->bridge) < 0 ||
	    nsb_nl_u32(&b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
		goto fail;
	nsb_nl_end(&b);
	n->br_index = 0;
	if (nsb_nl_send(n->fd, &b, nsb_net_bridge_reply, n) < 0 || n->br_index <= 0)
		goto fail;
	return 0;
fail:
	close(n->fd);
	n->fd = -1;
	return -1;
}

/* nsb_net_add_veth creates the veth of child pid in one request, as
 * rtnl.AddVeth then rtnl.SetLink(master, up) do: host end host with
 * IFLA_MASTER and IFF_UP, peer n->ifname inside the namespace childns. (The
 * peer cannot be created up: the kernel configures it before the pair is
 * linked, and veth_open fails with ENOTCONN; nsb_net_configure sets it up.) */
static int nsb_net_add_veth(struct nsb_net *n, const char *host, int childns)
{
	struct ifinfomsg up = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	struct ifinfomsg down = {.ifi_family = AF_UNSPEC};
	struct nsb_nl b = {0};
	size_t info, data, peer;

	if (nsb_nl_begin(&b, n, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &up, sizeof up) < 0 ||
	    nsb_nl_str(&b, IFLA_IFNAME, host) < 0 || nsb_nl_u32(&b, IFLA_MASTER, (uint32_t)n->br_index) < 0 ||
	    !(info = nsb_nl_attr(&b, IFLA_LINKINFO, NULL, 0)) || nsb_nl_str(&b, IFLA_INFO_KIND, "veth") < 0 ||
	    !(data = nsb_nl_attr(&b, IFLA_INFO_DATA | NLA_F_NESTED, NULL, 0)) ||
	    !(peer = nsb_nl_attr(&b, VETH_INFO_PEER, &down, sizeof down)) || nsb_nl_str(&b, IFLA_IFNAME, n->ifname) < 0 ||
	    nsb_nl_u32(&b, IFLA_NET_NS_FD, (uint32_t)childns) < 0)
		return -EMSGSIZE;
	nsb_nl_nest_end(&b, peer);
	nsb_nl_nest_end(&b, data);
	nsb_nl_nest_end(&b, info);
	nsb_nl_end(&b);
	return nsb_nl_send(n->fd, &b, NULL, NULL);
}

/* nsb_net_del_link deletes the link name of the bridge's namespace (the
 * error path: both veth ends go); a link already gone is not an error. */
static int nsb_net_del_link(struct nsb_net *n, const char *name)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct nsb_nl b = {0};
	int err;

	if (nsb_nl_begin(&b, n, RTM_DELLINK, 0, &ifi, sizeof ifi) < 0 || nsb_nl_str(&b, IFLA_IFNAME, name) < 0)
		return -EMSGSIZE;
	nsb_nl_end(&b);
	err = nsb_nl_send(n->fd, &b, NULL, NULL);
	return err == -ENODEV ? 0 : err;
}

/* nsb_net_configure configures the sandbox's side through sock, a netlink
 * socket in its namespace, in one batch (the kernel handles the messages in
 * order and acks each): lo up, the interface ifindex up, its address (as
 * rtnl.AddAddr), the default route via the gateway (as rtnl.AddRoute). */
static int nsb_net_configure(struct nsb_net *n, int sock, int ifindex)
{
	struct ifinfomsg up = {.ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP};
	struct ifaddrmsg ifa = {.ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)n->prefix,
				.ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (uint32_t)ifindex};
	struct rtmsg rt = {.rtm_family = AF_INET, .rtm_table = RT_TABLE_MAIN, .rtm_protocol = RTPROT_BOOT,
			   .rtm_scope = RT_SCOPE_UNIVERSE, .rtm_type = RTN_UNICAST};
	uint32_t addr = htonl(n->addr), gw = htonl(n->gw);
	struct nsb_nl b = {0};

	if (nsb_nl_begin(&b, n, RTM_NEWLINK, 0, &up, sizeof up) < 0 || nsb_nl_str(&b, IFLA_IFNAME, "lo") < 0)
		return -EMSGSIZE;
	nsb_nl_end(&b);
	if (nsb_nl_begin(&b, n, RTM_NEWLINK, 0, &up, sizeof up) < 0 || nsb_nl_str(&b, IFLA_IFNAME, n->ifname) < 0)
		return -EMSGSIZE;
	nsb_nl_end(&b);
	if (nsb_nl_begin(&b, n, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa) < 0 ||
	    !nsb_nl_attr(&b, IFA_ADDRESS, &addr, 4) || !nsb_nl_attr(&b, IFA_LOCAL, &addr, 4) ||
	    nsb_nl_u32(&b, IFA_FLAGS, 0) < 0)
		return -EMSGSIZE;
	nsb_nl_end(&b);
	if (n->has_gw) {
		if (nsb_nl_begin(&b, n, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rt, sizeof rt) < 0 ||
		    !nsb_nl_attr(&b, RTA_GATEWAY, &gw, 4) || nsb_nl_u32(&b, RTA_OIF, (uint32_t)ifindex) < 0)
			return -EMSGSIZE;
		nsb_nl_end(&b);
	}
	return nsb_nl_send(sock, &b, NULL, NULL);
}

/* nsb_net_ifindex returns the index of name in the namespace of sock (any
 * socket works for SIOCGIFINDEX), or a negative errno. */
static int nsb_net_ifindex(int sock, const char *name)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	strncpy(ifr.ifr_name, name, sizeof ifr.ifr_name - 1);
	if (ioctl(sock, SIOCGIFINDEX, &ifr) < 0)
		return -errno;
	return ifr.ifr_ifindex;
}

/* nsb_net_flags_reply takes the RTM_NEWLINK reply of a get: the flags. */
static int nsb_net_flags_reply(void *ctx, const struct nlmsghdr *h)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);

	if (h->nlmsg_type != RTM_NEWLINK || h->nlmsg_len < NLMSG_LENGTH(sizeof *ifi))
		return -1;
	*(unsigned *)ctx = ifi->ifi_flags;
	return 0;
}

/* nsb_net_running asks sock's namespace for the flags of name: 1 when it
 * is IFF_RUNNING, 0 when not yet, a negative errno on failure. */
static int nsb_net_running(struct nsb_net *n, int sock, const char *name)
{
	struct ifinfomsg ifi = {.ifi_family = AF_UNSPEC};
	struct nsb_nl b = {0};
	unsigned flags = 0;
	int err;

	if (nsb_nl_begin(&b, n, RTM_GETLINK, 0, &ifi, sizeof ifi) < 0 || nsb_nl_str(&b, IFLA_IFNAME, name) < 0 ||
	    nsb_nl_u32(&b, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS) < 0)
		return -EMSGSIZE;
	nsb_nl_end(&b);
	if ((err = nsb_nl_send(sock, &b, nsb_net_flags_reply, &flags)) < 0)
		return err;
	return (flags & IFF_RUNNING) != 0;
}

/* nsb_net_now_ns is CLOCK_MONOTONIC in nanoseconds. */
static long long nsb_net_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* nsb_net_wait_running waits until the sandbox's end (on sock) and then
 * the host end (on n->fd) report IFF_RUNNING, as nsnet's waitRunning: at
 * most NSB_LINK_RUNNING_WAIT_NS in all, polled every
 * NSB_LINK_RUNNING_POLL_NS (both from internal/abi). An error or the
 * deadline ends the wait of that end without failing the spawn: a missing
 * carrier costs a retransmission, not the sandbox. */
static void nsb_net_wait_running(struct nsb_net *n, int sock, const char *host)
{
	const struct timespec poll = {NSB_LINK_RUNNING_POLL_NS / 1000000000LL,
				      NSB_LINK_RUNNING_POLL_NS % 1000000000LL};
	long long deadline = nsb_net_now_ns() + NSB_LINK_RUNNING_WAIT_NS;
	const struct {
		int fd;
		const char *name;
	} side[2] = {{sock, n->ifname}, {n->fd, host}};

	for (int i = 0; i < 2; i++)
		while (nsb_net_now_ns() < deadline && nsb_net_running(n, side[i].fd, side[i].name) == 0)
			nanosleep(&poll, NULL);
}

/* nsb_net_attach wires child pid's network (the child is held at the
 * go-ahead): nsnet.Attach for a static address. On failure the host end is
 * deleted if it was created, and no fd of the child's namespace stays open
 * here, so the namespace dies with the child. 0 on success. */
static int nsb_net_attach(struct nsb_net *n, int pid)
{
	char nspath[64], host[16];
	int childns, sock = -1, ifindex, err;

	snprintf(nspath, sizeof nspath, "/proc/%d/ns/net", pid);
	childns = open(nspath, O_RDONLY | O_CLOEXEC);
	if (childns < 0)
		return -1;
	/* A link that has the name (a dead sandbox's host end of the same pid,
	 * which lives until the kernel has destroyed that sandbox's namespace,
	 * or a live one's) is never deleted: the next name is tried, as
	 * nsnet.Attach does (names and tries generated from internal/abi). */
	err = -EEXIST;
	for (int try = 0; try < NSB_HOST_IFNAME_TRIES && err == -EEXIST; try++) {
		if (try == 0)
			snprintf(host, sizeof host, NSB_HOST_IFNAME_FMT, (unsigned)pid);
		else
			snprintf(host, sizeof host, NSB_HOST_IFNAME_NEXT_FMT, (unsigned)pid, (unsigned)try);
		err = nsb_net_add_veth(n, host, childns);
	}
	if (err == 0)
		sock = nsb_nl_socket(childns, NETLINK_ROUTE);
	close(childns);
	if (err < 0)
		return -1; /* nothing was created: never delete a stranger's link */
	if (sock < 0 || (ifindex = nsb_net_ifindex(sock, n->ifname)) < 0 ||
	    nsb_net_configure(n, sock, ifindex) < 0) {
		if (sock >= 0)
			close(sock);
		nsb_net_del_link(n, host);
		return -1;
	}
	nsb_net_wait_running(n, sock, host);
	close(sock);
	return 0;
}

/* nsb_net_hook is the spawn hook (nsc_hook): 0 lets the child go on. */
static int nsb_net_hook(uintptr_t ctx, int pid)
{
	return nsb_net_attach((struct nsb_net *)ctx, pid) < 0 ? -1 : 0;
}

/* nsb_net_close closes the bridge namespace's socket. */
static void nsb_net_close(struct nsb_net *n)
{
	if (n->fd >= 0)
		close(n->fd);
	n->fd = -1;
}
