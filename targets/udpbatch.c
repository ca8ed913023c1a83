#include "udpbatch.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define RBUF 4097 /* c-ares 1.18 reads into MAXENDSSZ + 1 bytes: never cut shorter */
#define SSLOT 512 /* a queued query; mxs_dns_build_query makes at most 512 bytes */
#define BATCH MXS_UDPB_BATCH

/* One UDP socket of c-ares. TCP sockets have none: they are passed straight through. */
struct usock {
	int fd;
	int err;                       /* a send error for the next read; 0: none */
	int dirty;                     /* in the dirty list: datagrams queued */
	/* read, not yet handed to c-ares: rmsg[ri..rn) */
	unsigned ri, rn;
	unsigned char *rbuf;           /* BATCH * RBUF, owned; allocated on the first read */
	struct mmsghdr rmsg[BATCH];
	struct iovec riov[BATCH];
	struct sockaddr_storage rfrom[BATCH];
	/* queued to send: smsg[0..sn) */
	unsigned sn;
	unsigned char *sbuf;           /* BATCH * SSLOT, owned; allocated on the first send */
	struct mmsghdr smsg[BATCH];
	struct iovec siov[BATCH];
};

struct mxs_udpb {
	struct event_base *base;
	int rcvbuf;
	mxs_udpb_error_cb on_error;
	void *arg;
	struct usock **socks;          /* indexed by fd; NULL: not ours (TCP, closed) */
	size_t nsocks;
	int *dirty;                    /* fds with datagrams queued or an error to report;
					  room for every socket of ours */
	size_t ndirty, cdirty, count;  /* count: sockets of ours */
	struct event *ev;              /* deferred flush */
	int scheduled;                 /* ev is active */
	struct mxs_udpb_stats st;
};

static struct usock *lookup(const struct mxs_udpb *b, int fd)
{
	return fd >= 0 && (size_t)fd < b->nsocks ? b->socks[fd] : NULL;
}

static void schedule(struct mxs_udpb *b)
{
	if (!b->scheduled) {
		b->scheduled = 1;
		event_active(b->ev, EV_TIMEOUT, 0);
	}
}

static void mark_dirty(struct mxs_udpb *b, struct usock *s)
{
	if (s->dirty)
		return;
	b->dirty[b->ndirty++] = s->fd; /* room for every socket: see u_socket */
	s->dirty = 1;
	schedule(b);
}

/*
 * Send what s has queued. Datagrams the socket cannot take now (EAGAIN, ENOBUFS) stay
 * queued; a hard error is kept in s->err for the next read and drops the rest, whose
 * queries end with the broken connection.
 */
static void flush_sock(struct mxs_udpb *b, struct usock *s)
{
	unsigned done = 0;

	while (done < s->sn) {
		int r = sendmmsg(s->fd, &s->smsg[done], s->sn - done, MSG_DONTWAIT);
		b->st.send_calls++;
		if (r > 0) {
			done += (unsigned)r;
			b->st.send_dgrams += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
			b->st.send_kept += s->sn - done;
			break;
		}
		s->err = r < 0 ? errno : EIO;
		done = s->sn;
	}
	if (done && done < s->sn) {
		unsigned left = s->sn - done;
		memmove(s->sbuf, s->sbuf + (size_t)done * SSLOT, (size_t)left * SSLOT);
		for (unsigned i = 0; i < left; i++)
			s->siov[i].iov_len = s->siov[done + i].iov_len;
	}
	s->sn -= done;
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct mxs_udpb *b = arg;

	b->scheduled = 0;
	mxs_udpb_flush(b);
}

void mxs_udpb_flush(struct mxs_udpb *b)
{
	size_t keep = 0, n = b->ndirty;
	int *errs = NULL;
	size_t nerrs = 0;

	for (size_t i = 0; i < n; i++) {
		struct usock *s = lookup(b, b->dirty[i]);
		if (!s)
			continue;
		flush_sock(b, s);
		if (s->err && b->on_error) {
			if (!errs && !(errs = malloc(n * sizeof(*errs)))) {
				b->dirty[keep++] = s->fd; /* reported by a later flush */
				continue;
			}
			errs[nerrs++] = s->fd;
		}
		if (s->sn)
			b->dirty[keep++] = s->fd;
		else
			s->dirty = 0;
	}
	b->ndirty = keep;
	if (keep) {
		/* the socket buffer is full: try again in a millisecond */
		struct timeval ms = { 0, 1000 };
		event_add(b->ev, &ms);
	}
	/* last: the owner lets c-ares read the error, which may close and open sockets */
	for (size_t i = 0; i < nerrs; i++)
		if (lookup(b, errs[i]))
			b->on_error(errs[i], b->arg);
	free(errs);
}

/* ---- the socket functions ---- */

static ares_socket_t u_socket(int domain, int type, int protocol, void *ud)
{
	struct mxs_udpb *b = ud;
	int fd = socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);

	if (fd < 0)
		return ARES_SOCKET_BAD;
	if (b->rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &b->rcvbuf, sizeof(b->rcvbuf));
	if (type == SOCK_STREAM) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		return fd;
	}
	if ((size_t)fd >= b->nsocks) {
		size_t n = b->nsocks ? b->nsocks : 64;
		while (n <= (size_t)fd)
			n *= 2;
		struct usock **ns = realloc(b->socks, n * sizeof(*ns));
		if (!ns)
			return fd; /* unbatched, still correct */
		memset(ns + b->nsocks, 0, (n - b->nsocks) * sizeof(*ns));
		b->socks = ns;
		b->nsocks = n;
	}
	if (b->count == b->cdirty) {
		size_t n = b->cdirty ? b->cdirty * 2 : 8;
		int *nd = realloc(b->dirty, n * sizeof(*nd));
		if (!nd)
			return fd;
		b->dirty = nd;
		b->cdirty = n;
	}
	struct usock *s = calloc(1, sizeof(*s));
	if (!s)
		return fd;
	b->count++;
	s->fd = fd;
	for (unsigned i = 0; i < BATCH; i++) {
		s->rmsg[i].msg_hdr.msg_iov = &s->riov[i];
		s->rmsg[i].msg_hdr.msg_iovlen = 1;
		s->smsg[i].msg_hdr.msg_iov = &s->siov[i];
		s->smsg[i].msg_hdr.msg_iovlen = 1;
	}
	b->socks[fd] = s;
	return fd;
}

static int u_close(ares_socket_t fd, void *ud)
{
	struct mxs_udpb *b = ud;
	struct usock *s = lookup(b, fd);

	if (s) {
		/* what is queued belongs to queries c-ares has given up with this socket */
		for (size_t i = 0; i < b->ndirty; i++)
			if (b->dirty[i] == fd) {
				b->dirty[i] = b->dirty[--b->ndirty];
				break;
			}
		b->socks[fd] = NULL;
		b->count--;
		free(s->rbuf);
		free(s->sbuf);
		free(s);
	}
	return close(fd);
}

static int u_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *ud)
{
	return connect(fd, sa, len);
}

static ares_ssize_t u_recvfrom(ares_socket_t fd, void *data, size_t len, int flags,
			       struct sockaddr *from, ares_socklen_t *fromlen, void *ud)
{
	struct mxs_udpb *b = ud;
	struct usock *s = lookup(b, fd);

	if (!s || flags)
		return recvfrom(fd, data, len, flags, from, fromlen);
	if (s->ri == s->rn) {
		if (s->err) {
			errno = s->err;
			s->err = 0;
			return -1;
		}
		if (!s->rbuf && !(s->rbuf = malloc((size_t)BATCH * RBUF)))
			return recvfrom(fd, data, len, flags, from, fromlen);
		for (unsigned i = 0; i < BATCH; i++) {
			s->riov[i].iov_base = s->rbuf + (size_t)i * RBUF;
			s->riov[i].iov_len = RBUF;
			s->rmsg[i].msg_hdr.msg_name = &s->rfrom[i];
			s->rmsg[i].msg_hdr.msg_namelen = sizeof(s->rfrom[i]);
			s->rmsg[i].msg_hdr.msg_control = NULL;
			s->rmsg[i].msg_hdr.msg_controllen = 0;
			s->rmsg[i].msg_hdr.msg_flags = 0;
		}
		int r = recvmmsg(fd, s->rmsg, BATCH, MSG_DONTWAIT, NULL);
		b->st.recv_calls++;
		if (r <= 0)
			return -1; /* errno from recvmmsg: EAGAIN, or the socket's error */
		s->ri = 0;
		s->rn = (unsigned)r;
		b->st.recv_dgrams += (unsigned)r;
	}
	/* as recvfrom: the datagram cut to the caller's buffer, the sender's address */
	const struct mmsghdr *m = &s->rmsg[s->ri];
	size_t n = m->msg_len < len ? m->msg_len : len;
	memcpy(data, s->riov[s->ri].iov_base, n);
	if (from && fromlen) {
		socklen_t al = m->msg_hdr.msg_namelen;
		memcpy(from, &s->rfrom[s->ri], al < *fromlen ? al : *fromlen);
		*fromlen = al;
	}
	s->ri++;
	return (ares_ssize_t)n;
}

static ares_ssize_t u_sendv(ares_socket_t fd, const struct iovec *iov, int iovcnt, void *ud)
{
	struct mxs_udpb *b = ud;
	struct usock *s = lookup(b, fd);
	size_t total = 0;

	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	if (!s || total > SSLOT || total == 0)
		goto direct;
	if (!s->sbuf && !(s->sbuf = malloc((size_t)BATCH * SSLOT)))
		goto direct;
	if (s->sn == BATCH) {
		flush_sock(b, s);
		if (s->err)
			schedule(b); /* the flush event reports it */
		if (s->sn == BATCH)
			goto direct; /* the socket takes nothing: its own error, as a plain send */
	}
	unsigned char *p = s->sbuf + (size_t)s->sn * SSLOT;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(p, iov[i].iov_base, iov[i].iov_len);
		p += iov[i].iov_len;
	}
	s->siov[s->sn].iov_base = s->sbuf + (size_t)s->sn * SSLOT;
	s->siov[s->sn].iov_len = total;
	s->smsg[s->sn].msg_hdr.msg_name = NULL;
	s->smsg[s->sn].msg_hdr.msg_namelen = 0;
	s->sn++;
	mark_dirty(b, s);
	if (s->sn == BATCH) {
		flush_sock(b, s);
		if (s->err)
			schedule(b);
	}
	return (ares_ssize_t)total;
direct:
	if (s)
		b->st.send_direct++;
	return writev(fd, iov, iovcnt);
}

static const struct ares_socket_functions funcs = {
	.asocket = u_socket,
	.aclose = u_close,
	.aconnect = u_connect,
	.arecvfrom = u_recvfrom,
	.asendv = u_sendv,
};

const struct ares_socket_functions *mxs_udpb_funcs(void)
{
	return &funcs;
}

struct mxs_udpb *mxs_udpb_new(struct event_base *base, int rcvbuf, mxs_udpb_error_cb on_error,
			      void *arg)
{
	struct mxs_udpb *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	b->base = base;
	b->rcvbuf = rcvbuf;
	b->on_error = on_error;
	b->arg = arg;
	if (!(b->ev = event_new(base, -1, 0, on_flush, b))) {
		free(b);
		return NULL;
	}
	return b;
}

void mxs_udpb_free(struct mxs_udpb *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nsocks; i++)
		if (b->socks[i]) {
			free(b->socks[i]->rbuf);
			free(b->socks[i]->sbuf);
			free(b->socks[i]);
		}
	free(b->socks);
	free(b->dirty);
	event_free(b->ev);
	free(b);
}

unsigned mxs_udpb_pending(const struct mxs_udpb *b, int fd)
{
	const struct usock *s = lookup(b, fd);

	return s ? s->rn - s->ri + (s->err != 0) : 0;
}

void mxs_udpb_stats(const struct mxs_udpb *b, struct mxs_udpb_stats *st)
{
	*st = b->st;
}
