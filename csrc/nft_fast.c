/*
 * nft_fast.c: `--publish` on the C fast path of `nsbox run` (with
 * --bridge BR --addr CIDR), included by run_fast.c after net_fast.c:
 *
 *   nsbox [-n NS] run --net --bridge BR --addr A.B.C.D/N ... \
 *         --publish [IP:]HOSTPORT:PORT[/tcp|/udp] ... -- CMD
 *
 * It does what package nat's Table.Publish and Table.Unpublish do, on the
 * same table ("ip nsbox" in the bridge's namespace), under the same lock
 * (flock of /run/nsbox/nat.lock), with the same rules and comments, so Go
 * and C runs see each other's ports: every netlink message is a template
 * that go generate ./nat recorded from google/nftables for nat's own rules
 * (csrc/nat_gen.h), with the variable fields (bridge, addresses, ports,
 * protocol, handles) patched in at generated offsets and the comment built
 * from generated parts; nothing here knows an nf_tables attribute except
 * the few it reads back (table, chain, handle, userdata).
 *
 * Before the spawn, under the lock, on one NETLINK_NETFILTER socket made in
 * the bridge's namespace and kept until the end (closing a netfilter socket
 * can wait for a kernel grace period, so none is closed on the way to the
 * payload's first instruction): the table is looked up, then its chains and
 * the rules of its base chains. The common cases stay here: the table
 * exists with its four chains and every entry's owner lives and holds
 * another port; or the table does not exist, and then it is created with
 * its chains (and IPv4 forwarding turned on and recorded, as nat's ensure
 * does). Anything else (a base chain missing, an entry whose owner is gone,
 * the port taken, a loopback host address, a value it does not parse
 * exactly as Go would) returns to Go before anything was added; Go then
 * collects, adds or prints its own `nsbox: ...` line. The rules are added
 * in one batch, the lock released.
 *
 * When the payload has ended (or when the spawn failed and Go will run the
 * command again): under the lock, the base chains' rules are read again,
 * the rules whose comment is one of this run's are deleted by handle, and
 * when no other entry is left the table too, with forwarding turned off
 * again if the table had turned it on (nat's finish). Entries of dead
 * owners are left to the next Go call, which collects them, as it collects
 * this run's own if nsbox dies of SIGKILL.
 */
#include <pthread.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "nat_gen.h" /* generated from package nat: messages, offsets, comment parts */
#include "nsb_file.h" /* nsb_proc_ticks */

#define NSB_MAX_PUBLISH 8

/* nsb_pub is one --publish. */
struct nsb_pub {
	int udp;
	int has_hostip;
	uint32_t hostip; /* host byte order */
	uint16_t hostport, port;
	char comment[256]; /* the rules' comment, NUL-terminated */
};

/* nsb_nft is the published ports of one run and what they hold. */
struct nsb_nft {
	int npub;
	struct nsb_pub pub[NSB_MAX_PUBLISH];
	int fd;        /* NETLINK_NETFILTER socket in the bridge's namespace, or -1 */
	int nsfd;      /* the bridge's namespace (-n NS), or -1 */
	int published; /* the rules were added */
	uint32_t seq;
	int fwdfd;     /* ip_forward of the bridge's namespace, open O_RDWR when read, or -1 */

	/* The publish runs on a thread while the child is cloned (its network
	 * namespace is the costly part), as Go's run does in a goroutine. */
	pthread_t th;
	int running;   /* th exists (joined, or detached when it did nothing) */
	int taken;     /* who publishes: 0 nobody yet, 1 the thread, 2 the main thread */
	int rc;        /* nsb_nft_publish's result */
	const char *bridge_ns, *bridge;
	uint32_t addr;
};

/* nsb_nft_port parses a port as strconv.Atoi would and Go accepts it (1 to
 * 65535), digits only without a leading zero: anything else is Go's. */
static int nsb_nft_port(const char *s, const char *end, uint16_t *out)
{
	unsigned v = 0;
	if (s == end || *s == '0' || end - s > 5)
		return -1;
	for (; s < end; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

/* nsb_nft_parse_one parses a --publish value as parsePublish
 * (cmd/nsbox/run_pool.go), strictly: 0 when C takes it. */
static int nsb_nft_parse_one(struct nsb_pub *p, const char *v)
{
	const char *slash = strchr(v, '/'), *end = slash ? slash : v + strlen(v);
	const char *c1, *c2;

	memset(p, 0, sizeof *p);
	if (slash) {
		if (strcmp(slash + 1, "udp") == 0)
			p->udp = 1;
		else if (strcmp(slash + 1, "tcp") != 0)
			return -1;
	}
	c1 = memchr(v, ':', (size_t)(end - v));
	if (!c1)
		return -1;
	c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
	if (c2) {
		const char *ipend = nsb_net_ipv4(v, &p->hostip);
		/* 127/8 needs route_localnet (nat's ensureLocalnet): Go's. */
		if (ipend != c1 || (p->hostip >> 24) == 127 || memchr(c2 + 1, ':', (size_t)(end - c2 - 1)))
			return -1;
		p->has_hostip = 1;
		v = c1 + 1;
		c1 = c2;
	}
	if (nsb_nft_port(v, c1, &p->hostport) < 0 || nsb_nft_port(c1 + 1, end, &p->port) < 0)
		return -1;
	return 0;
}

/* nsb_nft_parse takes the --publish values (in the order given); a port
 * twice is Go's (its error names the holder). */
static int nsb_nft_parse(struct nsb_nft *t, const char *const *vals, int n)
{
	memset(t, 0, sizeof *t);
	t->fd = t->nsfd = t->fwdfd = -1;
	if (n > NSB_MAX_PUBLISH)
		return -1;
	for (int i = 0; i < n; i++) {
		if (nsb_nft_parse_one(&t->pub[i], vals[i]) < 0)
			return -1;
		for (int j = 0; j < i; j++)
			if (t->pub[j].udp == t->pub[i].udp && t->pub[j].hostport == t->pub[i].hostport)
				return -1;
	}
	t->npub = n;
	return 0;
}

/* nsb_nft_start_time is field 22 of /proc/PID/stat (nat's startTime:
 * nsb_file.h's nsb_proc_ticks); -1 when the process is gone or the file
 * unreadable. */
static int nsb_nft_start_time(long pid, unsigned long long *out)
{
	char state;
	long long v = nsb_proc_ticks(pid, &state);
	if (v < 0)
		return -1;
	*out = (unsigned long long)v;
	return 0;
}

/* nsb_nft_put appends s to out (at *n, size cap), escaped as
 * url.QueryEscape (the generated table); -1 when it does not fit. */
static int nsb_nft_put(char *out, size_t *n, size_t cap, const char *s, int escape)
{
	for (; *s; s++) {
		const char *e = escape ? nsb_nft_qescape[(unsigned char)*s] : (const char[2]){*s, 0};
		size_t l = strlen(e);
		if (*n + l >= cap)
			return -1;
		memcpy(out + *n, e, l);
		*n += l;
	}
	out[*n] = 0;
	return 0;
}

static void nsb_nft_dotted(char *buf, size_t cap, uint32_t a)
{
	snprintf(buf, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

/* nsb_nft_comment renders p's comment (nat's publishComment) from the
 * generated parts: owner pid and start, sandbox address addr on bridge. */
static int nsb_nft_comment(struct nsb_pub *p, const char *bridge, uint32_t addr, long pid, unsigned long long start)
{
	const struct nsb_nft_cpart *parts = p->has_hostip ? nsb_nft_publish_ip_comment : nsb_nft_publish_any_comment;
	char v[NSB_NFT_NFIELDS][64];
	size_t n = 0;

	memset(v, 0, sizeof v);
	snprintf(v[NSB_NFT_F_BRIDGE], sizeof v[0], "%s", bridge);
	nsb_nft_dotted(v[NSB_NFT_F_ADDR], sizeof v[0], addr);
	nsb_nft_dotted(v[NSB_NFT_F_HOSTIP], sizeof v[0], p->hostip);
	snprintf(v[NSB_NFT_F_PORT], sizeof v[0], "%u", p->port);
	snprintf(v[NSB_NFT_F_HOSTPORT], sizeof v[0], "%u", p->hostport);
	snprintf(v[NSB_NFT_F_PROTO], sizeof v[0], "%s", p->udp ? "udp" : "tcp");
	snprintf(v[NSB_NFT_F_PID], sizeof v[0], "%ld", pid);
	snprintf(v[NSB_NFT_F_START], sizeof v[0], "%llu", start);
	snprintf(v[NSB_NFT_F_NAME], sizeof v[0], "%s", NSB_RUN_OWNER_NAME /* nsbox_gen.h */);
	p->comment[0] = 0;
	for (; parts->lit; parts++)
		if (nsb_nft_put(p->comment, &n, sizeof p->comment, parts->lit, 0) < 0 ||
		    (parts->field >= 0 && nsb_nft_put(p->comment, &n, sizeof p->comment, v[parts->field], 1) < 0))
			return -1;
	/* userdata's length is one byte (the comment and its NUL). */
	return n + 1 <= 255 ? 0 : -1;
}

/* nsb_nft_buf is one outgoing batch or request. */
static struct {
	union {
		char buf[65536];
		struct nlmsghdr align;
	} u;
	size_t len;
	uint32_t first, last; /* seqs of the messages that want an ack */
	int nack;
} nsb_nft_out;

/* nsb_nft_in is the receive buffer (dumps of a busy table are large). */
static union {
	char buf[65536];
	struct nlmsghdr align;
} nsb_nft_in;

static void nsb_nft_reset(void)
{
	nsb_nft_out.len = 0;
	nsb_nft_out.nack = 0;
}

/* nsb_nft_msg appends m (its data patched afterwards through the returned
 * pointer, NULL when full). */
static char *nsb_nft_msg(struct nsb_nft *t, const struct nsb_nft_msg *m, size_t extra)
{
	size_t len = NLMSG_HDRLEN + m->len + extra;
	struct nlmsghdr *h;

	if (nsb_nft_out.len + NLMSG_ALIGN(len) > sizeof nsb_nft_out.u.buf)
		return NULL;
	h = (struct nlmsghdr *)(void *)(nsb_nft_out.u.buf + nsb_nft_out.len);
	memset(h, 0, NLMSG_ALIGN(len));
	h->nlmsg_len = (uint32_t)len;
	h->nlmsg_type = m->type;
	h->nlmsg_flags = m->flags;
	h->nlmsg_seq = ++t->seq;
	memcpy((char *)h + NLMSG_HDRLEN, m->data, m->len);
	if ((m->flags & NLM_F_ACK) && (m->flags & NLM_F_DUMP) != NLM_F_DUMP) { /* a dump is never acked */
		if (nsb_nft_out.nack++ == 0)
			nsb_nft_out.first = h->nlmsg_seq;
		nsb_nft_out.last = h->nlmsg_seq;
	}
	nsb_nft_out.len += NLMSG_ALIGN(len);
	return (char *)h + NLMSG_HDRLEN;
}

/* nsb_nft_rule appends the rule template tm patched for p on the sandbox
 * address addr and bridge, with p's comment as userdata. */
static int nsb_nft_rule(struct nsb_nft *t, const struct nsb_nft_tmpl *tm, const struct nsb_pub *p, const char *bridge,
			uint32_t addr)
{
	size_t clen = strlen(p->comment) + 1, ud = NLA_HDRLEN + 2 + clen;
	unsigned char f[NSB_NFT_NFIELDS][16];
	static const int width[NSB_NFT_NFIELDS] = {[NSB_NFT_F_BRIDGE] = 16, [NSB_NFT_F_ADDR] = 4, [NSB_NFT_F_PORT] = 2,
						   [NSB_NFT_F_HOSTPORT] = 2, [NSB_NFT_F_HOSTIP] = 4, [NSB_NFT_F_PROTO] = 1};
	uint32_t a = htonl(addr), h = htonl(p->hostip);
	uint16_t port = htons(p->port), hport = htons(p->hostport);
	char *d = nsb_nft_msg(t, &tm->msg, NLA_ALIGN(ud));
	struct nlattr *na;

	if (!d)
		return -1;
	memset(f, 0, sizeof f);
	strncpy((char *)f[NSB_NFT_F_BRIDGE], bridge, 15);
	memcpy(f[NSB_NFT_F_ADDR], &a, 4);
	memcpy(f[NSB_NFT_F_HOSTIP], &h, 4);
	memcpy(f[NSB_NFT_F_PORT], &port, 2);
	memcpy(f[NSB_NFT_F_HOSTPORT], &hport, 2);
	f[NSB_NFT_F_PROTO][0] = p->udp ? IPPROTO_UDP : IPPROTO_TCP;
	for (int i = 0; i < tm->npatch; i++) {
		int w = width[tm->patch[i].field];
		if (!w || tm->patch[i].off + w > tm->msg.len)
			return -1;
		memcpy(d + tm->patch[i].off, f[tm->patch[i].field], (size_t)w);
	}
	/* NFTA_RULE_USERDATA: one userdata TLV, the comment (last, as
	 * google/nftables puts it; its length varies). */
	na = (struct nlattr *)(void *)(d + tm->msg.len);
	na->nla_len = (uint16_t)ud;
	na->nla_type = NSB_NFT_USERDATA_ATTR;
	((unsigned char *)na)[NLA_HDRLEN] = NSB_NFT_UD_COMMENT;
	((unsigned char *)na)[NLA_HDRLEN + 1] = (unsigned char)clen;
	memcpy((char *)na + NLA_HDRLEN + 2, p->comment, clen);
	return 0;
}

/* nsb_nft_reply takes one message of a reply (not an ack). */
typedef int (*nsb_nft_reply_fn)(void *ctx, const struct nlmsghdr *h);

/* nsb_nft_send sends the buffer and reads until every message that wants
 * an ack is acked, and, with dump set, until the dump's NLMSG_DONE; a
 * get without an ack ends with its one reply. Replies go to fn. It
 * returns 0 or the first negative errno. */
static int nsb_nft_send(struct nsb_nft *t, int dump, nsb_nft_reply_fn fn, void *ctx)
{
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	uint32_t lo = ((struct nlmsghdr *)(void *)nsb_nft_out.u.buf)->nlmsg_seq;
	int acked = 0, done = !dump, got = 0, first_err = 0, want_one = !dump && nsb_nft_out.nack == 0;
	ssize_t n;

	do
		n = sendto(t->fd, nsb_nft_out.u.buf, nsb_nft_out.len, 0, (struct sockaddr *)&kernel, sizeof kernel);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)nsb_nft_out.len)
		return n < 0 ? -errno : -EPROTO;
	while (acked < nsb_nft_out.nack || !done || (want_one && !got)) {
		do
			n = recv(t->fd, nsb_nft_in.buf, sizeof nsb_nft_in.buf, MSG_TRUNC);
		while (n < 0 && errno == EINTR);
		if (n < 0)
			return -errno;
		if (n > (ssize_t)sizeof nsb_nft_in.buf)
			return -EMSGSIZE;
		for (struct nlmsghdr *h = &nsb_nft_in.align; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq < lo || h->nlmsg_seq > t->seq)
				continue; /* not this request's */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				if (h->nlmsg_len < NLMSG_LENGTH(sizeof *e))
					return -EPROTO;
				if (e->error < 0 && first_err == 0)
					first_err = e->error;
				if (nsb_nft_out.nack && h->nlmsg_seq >= nsb_nft_out.first && h->nlmsg_seq <= nsb_nft_out.last)
					acked++;
				else if (e->error < 0)
					return first_err; /* a failed get or dump, or a batch refused whole */
			} else if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
			} else {
				got = 1;
				if (fn && fn(ctx, h) < 0 && first_err == 0)
					first_err = -EPROTO;
			}
		}
	}
	return first_err;
}

/* nsb_nft_forwarding reads (want < 0) or writes IPv4 forwarding of the
 * bridge's namespace. /proc/sys/net follows the opener's namespace, so the
 * file is opened there once, read and write, and kept for the write back
 * at the end. It returns the value read (0 or 1), 0 after a write, or -1. */
static int nsb_nft_forwarding(struct nsb_nft *t, int want)
{
	char c = 0;

	if (t->fwdfd < 0) {
		int self = -1;
		if (t->nsfd >= 0) {
			self = openat(AT_FDCWD, "/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
			if (self < 0 || setns(t->nsfd, CLONE_NEWNET) < 0) {
				if (self >= 0)
					close(self);
				return -1;
			}
		}
		t->fwdfd = openat(AT_FDCWD, NSB_NFT_FORWARDING_PATH, O_RDWR | O_CLOEXEC);
		if (t->nsfd >= 0) {
			if (setns(self, CLONE_NEWNET) < 0)
				_exit(125); /* cannot happen; Go must never start in a foreign namespace */
			close(self);
		}
		if (t->fwdfd < 0)
			return -1;
	}
	if (want < 0)
		return pread(t->fwdfd, &c, 1, 0) == 1 ? c == '1' : -1;
	return pwrite(t->fwdfd, want ? "1\n" : "0\n", 2, 0) == 2 ? 0 : -1;
}

/* nsb_nft_lock takes nat's cross-process lock (Table.lock's file); the fd
 * is the lock. */
static int nsb_nft_lock(void)
{
	char dir[sizeof NSB_NFT_LOCK_PATH];
	int fd;

	memcpy(dir, NSB_NFT_LOCK_PATH, sizeof dir);
	*strrchr(dir, '/') = 0;
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -1;
	if ((fd = openat(AT_FDCWD, NSB_NFT_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* nsb_nft_attr finds attribute type in the attributes after the nfgenmsg
 * of h; NULL when absent. */
static const struct nlattr *nsb_nft_attr(const struct nlmsghdr *h, int type)
{
	const char *p = (const char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const char *end = (const char *)h + h->nlmsg_len;

	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const void *)p;
		if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

/* nsb_nft_attr_is compares a string attribute with s. */
static int nsb_nft_attr_is(const struct nlattr *a, const char *s)
{
	size_t l = strlen(s) + 1;
	return a && (size_t)(a->nla_len - NLA_HDRLEN) >= l && memcmp((const char *)a + NLA_HDRLEN, s, l) == 0;
}

/* nsb_nft_chains_reply marks which base chains of the table exist. */
static int nsb_nft_chains_reply(void *ctx, const struct nlmsghdr *h)
{
	int *have = ctx;
	if (!nsb_nft_attr_is(nsb_nft_attr(h, NFTA_CHAIN_TABLE), NSB_NFT_TABLE))
		return 0;
	for (int i = 0; i < 4; i++)
		if (nsb_nft_attr_is(nsb_nft_attr(h, NFTA_CHAIN_NAME), nsb_nft_chains[i]))
			have[i] = 1;
	return 0;
}

/* nsb_nft_query finds key's value in a comment's query (after "nsbox
 * KIND "); NULL when absent. The value ends at '&' or the end. */
static const char *nsb_nft_query(const char *q, const char *key, size_t *len)
{
	size_t kl = strlen(key);
	while (q && *q) {
		const char *amp = strchr(q, '&');
		if (strncmp(q, key, kl) == 0 && q[kl] == '=') {
			q += kl + 1;
			*len = amp ? (size_t)(amp - q) : strlen(q);
			return q;
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

/* nsb_nft_num parses a query value of digits; -1 otherwise. */
static int nsb_nft_num(const char *v, size_t len, unsigned long long *out)
{
	unsigned long long x = 0;
	if (!v || len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (unsigned long long)(v[i] - '0');
	}
	*out = x;
	return 0;
}

/* nsb_nft_rule_comment returns the comment of a rule message (userdata's
 * TypeComment, NUL-terminated there), or NULL. */
static const char *nsb_nft_rule_comment(const struct nlmsghdr *h)
{
	const struct nlattr *a = nsb_nft_attr(h, NSB_NFT_USERDATA_ATTR);
	const unsigned char *p, *end;

	if (!a)
		return NULL;
	p = (const unsigned char *)a + NLA_HDRLEN;
	end = (const unsigned char *)a + a->nla_len;
	while (p + 2 <= end) {
		if (p + 2 + p[1] > end)
			return NULL;
		if (p[0] == NSB_NFT_UD_COMMENT)
			return p[1] && p[2 + p[1] - 1] == 0 ? (const char *)p + 2 : NULL;
		p += 2 + p[1];
	}
	return NULL;
}

/* nsb_nft_scan is what a read of the base chains' rules found. */
struct nsb_nft_scan {
	struct nsb_nft *t;
	int publishing; /* before the publish: a dead owner or a taken port is Go's */
	int unusual;    /* something C leaves to Go */
	int left;       /* entries that are not this run's */
	int was_off, localnet;
	int chain;      /* the chain being read */
	int ndel;
	struct {
		int chain;
		uint64_t handle;
	} del[4 * NSB_MAX_PUBLISH];
};

/* nsb_nft_rules_reply classifies one rule of a base chain, as nat's
 * parseComment and collectDead do. */
static int nsb_nft_rules_reply(void *ctx, const struct nlmsghdr *h)
{
	struct nsb_nft_scan *s = ctx;
	const char *c = nsb_nft_rule_comment(h), *q, *v;
	const struct nlattr *ha = nsb_nft_attr(h, NFTA_RULE_HANDLE);
	unsigned long long pid = 0, start = 0, x;
	size_t len;
	int publish;

	if (!c || strncmp(c, "nsbox ", 6) != 0)
		return 0; /* not nsbox's: never touched */
	for (int i = 0; i < s->t->npub; i++)
		if (strcmp(c, s->t->pub[i].comment) == 0) {
			uint64_t handle;
			if (!ha || ha->nla_len != NLA_HDRLEN + 8 || s->ndel == 4 * NSB_MAX_PUBLISH) {
				s->unusual = 1;
				return 0;
			}
			memcpy(&handle, (const char *)ha + NLA_HDRLEN, 8);
			s->del[s->ndel].chain = s->chain;
			s->del[s->ndel++].handle = handle; /* big endian, as the message wants it */
			return 0;
		}
	if (strncmp(c, NSB_NFT_KIND_STATE, sizeof NSB_NFT_KIND_STATE - 1) == 0) {
		if (strncmp(c, NSB_NFT_STATE_LOCALNET, sizeof NSB_NFT_STATE_LOCALNET - 1) == 0)
			s->localnet = 1;
		else
			s->was_off = 1;
		return 0;
	}
	publish = strncmp(c, NSB_NFT_KIND_PUBLISH, sizeof NSB_NFT_KIND_PUBLISH - 1) == 0;
	if (!publish && strncmp(c, NSB_NFT_KIND_MASQ, sizeof NSB_NFT_KIND_MASQ - 1) != 0)
		return 0; /* a kind nat does not know: it ignores it too */
	s->left++;
	if (!s->publishing)
		return 0;
	q = strchr(c + 6, ' ') + 1;
	/* The owner: a pid and start time, or neither (nobody: alive). */
	v = nsb_nft_query(q, NSB_NFT_KEY_PID, &len);
	if (v && (nsb_nft_num(v, len, &pid) < 0 || pid == 0 || pid > 0x7fffffff ||
		  nsb_nft_num(nsb_nft_query(q, NSB_NFT_KEY_START, &len), len, &start) < 0 ||
		  nsb_nft_start_time((long)pid, &x) < 0 || x != start)) {
		s->unusual = 1; /* a dead owner (Go collects it) or a comment C cannot read */
		return 0;
	}
	if (!publish)
		return 0;
	v = nsb_nft_query(q, NSB_NFT_KEY_HOSTPORT, &len);
	if (nsb_nft_num(v, len, &x) < 0) {
		s->unusual = 1;
		return 0;
	}
	v = nsb_nft_query(q, NSB_NFT_KEY_PROTO, &len);
	for (int i = 0; i < s->t->npub; i++)
		if (x == s->t->pub[i].hostport && v && len == 3 && memcmp(v, s->t->pub[i].udp ? "udp" : "tcp", 3) == 0)
			s->unusual = 1; /* taken: Go's error names the holder */
	return 0;
}

/* nsb_nft_read_rules dumps the rules of the four base chains into s. */
static int nsb_nft_read_rules(struct nsb_nft *t, struct nsb_nft_scan *s)
{
	for (int i = 0; i < NSB_NFT_GET_RULES_N; i++) {
		int err;
		nsb_nft_reset();
		if (!nsb_nft_msg(t, &nsb_nft_get_rules[i], 0))
			return -1;
		s->chain = i;
		if ((err = nsb_nft_send(t, 1, nsb_nft_rules_reply, s)) < 0 && err != -ENOENT)
			return -1;
	}
	return 0;
}

/* nsb_nft_close closes what a publish holds open: the netfilter socket,
 * the bridge namespace's fd and ip_forward's. */
static void nsb_nft_close(struct nsb_nft *t)
{
	if (t->fd >= 0)
		close(t->fd);
	if (t->nsfd >= 0)
		close(t->nsfd);
	if (t->fwdfd >= 0)
		close(t->fwdfd);
	t->fd = t->nsfd = t->fwdfd = -1;
}

/* nsb_nft_publish adds the rules of every --publish for the sandbox
 * address addr on bridge (before the spawn). It returns 0 when they are
 * in, -1 when Go must do it (nothing was added; the socket stays open
 * only on success). */
static int nsb_nft_publish(struct nsb_nft *t, const char *bridge_ns, const char *bridge, uint32_t addr)
{
	static struct nsb_nft_scan s;
	unsigned long long start;
	int lock = -1, have[4] = {0}, exists, err, turned_on = 0;

	if (nsb_nft_start_time((long)getpid(), &start) < 0)
		return -1;
	for (int i = 0; i < t->npub; i++)
		if (nsb_nft_comment(&t->pub[i], bridge, addr, (long)getpid(), start) < 0)
			return -1;
	if (bridge_ns && (t->nsfd = nsb_net_open_ns(bridge_ns)) < 0)
		return -1;
	if ((t->fd = nsb_nl_socket(t->nsfd, NETLINK_NETFILTER)) < 0 || (lock = nsb_nft_lock()) < 0)
		goto fail;
	/* The table (Table.read): ENOENT when it does not exist. */
	nsb_nft_reset();
	if (!nsb_nft_msg(t, &nsb_nft_get_table[0], 0))
		goto fail;
	err = nsb_nft_send(t, 0, NULL, NULL);
	if (err < 0 && err != -ENOENT)
		goto fail;
	exists = err == 0;
	memset(&s, 0, sizeof s);
	s.t = t;
	s.publishing = 1;
	if (exists) {
		nsb_nft_reset();
		if (!nsb_nft_msg(t, &nsb_nft_get_chains[0], 0) || nsb_nft_send(t, 1, nsb_nft_chains_reply, have) < 0)
			goto fail;
		for (int i = 0; i < 4; i++)
			if (!have[i])
				goto fail; /* a base chain missing: Go re-adds it */
		if (nsb_nft_read_rules(t, &s) < 0 || s.unusual || s.ndel)
			goto fail;
	}
	nsb_nft_reset();
	if (!nsb_nft_msg(t, &nsb_nft_batch_begin[0], 0))
		goto fail;
	if (!exists) {
		/* nat's ensure: the table, its chains, and forwarding turned on
		 * (and recorded) when it was off. */
		int on = nsb_nft_forwarding(t, -1);
		if (on < 0)
			goto fail;
		for (int i = 0; i < NSB_NFT_ADD_TABLE_N; i++)
			if (!nsb_nft_msg(t, &nsb_nft_add_table[i], 0))
				goto fail;
		if (!on) {
			if (nsb_nft_forwarding(t, 1) < 0)
				goto fail;
			turned_on = 1;
			if (!nsb_nft_msg(t, &nsb_nft_state_rule[0], 0))
				goto fail;
		}
	}
	for (int i = 0; i < t->npub; i++) {
		const struct nsb_nft_tmpl *tm = t->pub[i].has_hostip ? nsb_nft_publish_ip : nsb_nft_publish_any;
		for (int k = 0; k < 4; k++)
			if (nsb_nft_rule(t, &tm[k], &t->pub[i], bridge, addr) < 0)
				goto fail;
	}
	if (!nsb_nft_msg(t, &nsb_nft_batch_end[0], 0) || nsb_nft_send(t, 0, NULL, NULL) < 0)
		goto fail;
	t->published = 1;
	close(lock);
	return 0;
fail:
	/* The batch is atomic: nothing of it stays when it failed. */
	if (turned_on)
		nsb_nft_forwarding(t, 0);
	if (lock >= 0)
		close(lock);
	nsb_nft_close(t);
	return -1;
}

/* nsb_nft_take claims the publish for who (1 the thread, 2 the main
 * thread): the first to come does it. */
static int nsb_nft_take(struct nsb_nft *t, int who)
{
	int nobody = 0;
	return __atomic_compare_exchange_n(&t->taken, &nobody, who, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static void *nsb_nft_thread(void *arg)
{
	struct nsb_nft *t = arg;
	if (nsb_nft_take(t, 1))
		t->rc = nsb_nft_publish(t, t->bridge_ns, t->bridge, t->addr);
	return NULL;
}

/* nsb_nft_publish_start starts the publish on a thread with every signal
 * blocked (the forwarder's handlers run on the main thread; setns there
 * moves that thread only), so that it overlaps the clone when a core is
 * free; where no thread can be made, it publishes inline.
 * nsb_nft_publish_wait gives the result. */
static void nsb_nft_publish_start(struct nsb_nft *t, const char *bridge_ns, const char *bridge, uint32_t addr)
{
	sigset_t all, old;

	t->bridge_ns = bridge_ns;
	t->bridge = bridge;
	t->addr = addr;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	t->running = pthread_create(&t->th, NULL, nsb_nft_thread, t) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!t->running && nsb_nft_take(t, 2))
		t->rc = nsb_nft_publish(t, t->bridge_ns, t->bridge, t->addr);
}

/* nsb_nft_publish_wait returns the publish's result (0 when the rules
 * are in): the thread's, joined, or, when the thread has not begun yet
 * (on a busy machine it waits for a core longer than the publish takes:
 * 0.5 ms against 0.2 ms at load 9-40 here), the main thread's own, the
 * thread then left to find it done and end alone (detached). */
static int nsb_nft_publish_wait(struct nsb_nft *t)
{
	if (!t->running)
		return t->rc;
	t->running = 0;
	if (nsb_nft_take(t, 2)) {
		pthread_detach(t->th);
		t->rc = nsb_nft_publish(t, t->bridge_ns, t->bridge, t->addr);
		return t->rc;
	}
	pthread_join(t->th, NULL);
	return t->rc;
}

/* nsb_nft_unpublish removes this run's rules (the payload ended, or the
 * spawn failed), and the table when no other entry is left (nat's
 * finish); the socket is closed by the process's exit, or here when the
 * spawn failed and Go takes over. It never fails the run: what it cannot
 * remove is collected by the next Go call, since this process is gone. */
static void nsb_nft_unpublish(struct nsb_nft *t, int closing)
{
	static struct nsb_nft_scan s;
	int lock;

	if (!t->published)
		return;
	t->published = 0;
	if ((lock = nsb_nft_lock()) < 0)
		goto out;
	memset(&s, 0, sizeof s);
	s.t = t;
	if (nsb_nft_read_rules(t, &s) < 0 || s.ndel == 0) {
		close(lock);
		goto out;
	}
	nsb_nft_reset();
	nsb_nft_msg(t, &nsb_nft_batch_begin[0], 0);
	for (int i = 0; i < s.ndel; i++) {
		char *d = nsb_nft_msg(t, &nsb_nft_del_rule[s.del[i].chain], 0);
		if (d)
			memcpy(d + nsb_nft_del_rule[s.del[i].chain].len - NSB_NFT_HANDLE_FROM_END, &s.del[i].handle, 8);
	}
	if (s.left == 0 && !s.localnet)
		nsb_nft_msg(t, &nsb_nft_del_table[0], 0);
	if (nsb_nft_msg(t, &nsb_nft_batch_end[0], 0) && nsb_nft_send(t, 0, NULL, NULL) == 0 && s.left == 0 &&
	    !s.localnet && s.was_off)
		nsb_nft_forwarding(t, 0);
	close(lock);
out:
	if (closing)
		nsb_nft_close(t);
}
