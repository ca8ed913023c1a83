/*
 * Batched UDP for c-ares (ares_set_socket_functions): the sockets of a channel are ours,
 * answers are read with recvmmsg, up to MXS_UDPB_BATCH a call, and handed to c-ares one
 * by one from that batch; queries are queued and sent with sendmmsg, once per loop turn
 * (a deferred event) or when the queue is full. On loopback a survey is bound by one
 * sendto and one recvfrom per query; batching them leaves the per-packet work and takes
 * away most of the system calls and of the resolver's wake-ups.
 *
 * What c-ares sees does not change:
 * - a datagram is read as with recvfrom into c-ares' buffer (cut to its size, as
 *   recvfrom would), with the sender's address; EAGAIN when none is left;
 * - a query is "sent" when asendv returns its length. A queue that cannot be flushed
 *   (the socket buffer full) keeps its datagrams for the next turn; when it is full and
 *   still cannot be flushed, the datagram is sent directly and its error returned, as
 *   with a plain send. A hard error of a queued send (ECONNREFUSED from an earlier ICMP
 *   message, ...) is kept and returned by the socket's next read, which c-ares treats as
 *   a broken connection, as it does for such an error from recvfrom: the queries on that
 *   socket move on or end with c-ares' own status, the datagrams not yet sent with them;
 * - TCP sockets (truncated answers) are passed straight through.
 * c-ares sets no option on sockets it does not create itself: they are created here
 * non-blocking, close-on-exec, with the receive buffer asked for.
 */
#ifndef MXS_UDPBATCH_H
#define MXS_UDPBATCH_H

#include <ares.h>

struct event_base;
struct mxs_udpb;

#define MXS_UDPB_BATCH 64

/*
 * Called (from the flush event) with a socket whose queued send failed for good, so the
 * owner can make c-ares read it now (ares_process_fd) and see the error.
 */
typedef void (*mxs_udpb_error_cb)(int fd, void *arg);

/* rcvbuf: SO_RCVBUF for new sockets (0: the kernel's default). NULL if out of memory. */
struct mxs_udpb *mxs_udpb_new(struct event_base *base, int rcvbuf, mxs_udpb_error_cb on_error,
			      void *arg);

/* Frees the queues and buffers; the sockets are c-ares' to close (before this). */
void mxs_udpb_free(struct mxs_udpb *b);

/* The functions to give ares_set_socket_functions, with b as its user_data. */
const struct ares_socket_functions *mxs_udpb_funcs(void);

/*
 * Reads that c-ares has not seen yet on fd: datagrams already read from the kernel and a
 * kept send error (0 for a socket not ours). The owner calls ares_process_fd again while
 * this is not 0: the kernel will not say the socket is readable for them.
 */
unsigned mxs_udpb_pending(const struct mxs_udpb *b, int fd);

/* Send every queued datagram now (as far as the sockets take them). */
void mxs_udpb_flush(struct mxs_udpb *b);

/* Counters: system calls and datagrams, for the debug summary. */
struct mxs_udpb_stats {
	unsigned long recv_calls, recv_dgrams, send_calls, send_dgrams, send_direct, send_kept;
};
void mxs_udpb_stats(const struct mxs_udpb *b, struct mxs_udpb_stats *st);

#endif
