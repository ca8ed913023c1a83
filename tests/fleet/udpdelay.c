/*
 * mxsurvey-udpdelay: a delaying UDP forwarder to put in front of a test DNS server, so
 * the resolver meets the latency (and loss) of a real network on loopback.
 *
 * Each query is forwarded to the upstream at once, under an id of our own (udpmap.h),
 * and its answer goes back to the client --delay-ms (+- --jitter-ms) after it came.
 * --loss-share drops that share of the queries, as a lossy path would. One event loop,
 * one socket each side; thousands of queries in flight. docs/fleet.md, "Network".
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>

#include "behaviour.h"
#include "fault.h"
#include "log.h"
#include "monotime.h"
#include "readyfile.h"
#include "timeutil.h"
#include "udpmap.h"

#define EXIT_USAGE 2
#define EXIT_BIND 3
#define DNS_HEADER 12              /* a datagram shorter than a DNS header is not a query */
#define DGRAM_MAX 65536
#define BATCH 256                  /* datagrams read per wakeup before others get a turn */
#define SOCKET_BUFFER (4 << 20)    /* bursts of thousands of queries */
#define QUERY_TTL_MS 30000         /* an unanswered query's id is reclaimed after this */

#define SALT_LOSS 0x6c6f73732d647273ULL    /* "loss-drs" */
#define SALT_DELAY 0x64656c61792d6473ULL   /* "delay-ds" */

struct udpdelay_opts {
	const char *listen, *upstream;
	unsigned delay_ms, jitter_ms;
	uint32_t loss_ppm;
	uint64_t seed;
	const char *ready_file;
	int watch_stdin;
};

struct held;

/* The forwarder's state; passed around, never global. */
struct udpdelay {
	struct udpdelay_opts opt;
	struct event_base *base;
	evutil_socket_t lfd, ufd;           /* clients' side, upstream side */
	struct event *lev, *uev, *sig_term, *sig_int, *stdin_ev;
	struct udpmap *map;
	struct held *held;                  /* answers waiting for their delay, a list */
	unsigned char buf[DGRAM_MAX];
	uint64_t queries, lost, overflow, malformed, forwarded, answers, unmatched, sent, errors;
};

/* One answer on its way back: owned by the list until its timer sends and frees it. */
struct held {
	struct udpdelay *u;
	struct held *prev, *next;
	struct event *timer;
	int64_t due_us;                     /* monotonic µs at which it goes back */
	struct udpmap_client to;
	size_t len;
	unsigned char data[];
};

static void held_free(struct held *h)
{
	struct udpdelay *u = h->u;

	if (h->prev != NULL)
		h->prev->next = h->next;
	else
		u->held = h->next;
	if (h->next != NULL)
		h->next->prev = h->prev;
	event_free(h->timer);
	free(h);
}

static void held_send(evutil_socket_t fd, short what, void *arg)
{
	struct held *h = arg;
	struct udpdelay *u = h->u;
	int64_t now = fleet_mono_us();

	if (now < h->due_us) { /* woke early (monotime.h): the delay is a floor */
		struct timeval tv = fleet_tv_until(h->due_us, now);
		evtimer_add(h->timer, &tv);
		return;
	}
	if (sendto(u->lfd, h->data, h->len, 0, &h->to.addr.sa, h->to.len) < 0)
		u->errors++;
	else
		u->sent++;
	held_free(h);
}

/* delay +- jitter for the n-th answer, never below 0. */
static unsigned answer_delay(const struct udpdelay *u, uint64_t n)
{
	int64_t d = u->opt.delay_ms;

	if (u->opt.jitter_ms > 0) {
		uint64_t r = fb_mix64(fb_mix64(u->opt.seed ^ SALT_DELAY) ^ n);
		d += (int64_t)(r % (2 * (uint64_t)u->opt.jitter_ms + 1)) - u->opt.jitter_ms;
	}
	return d < 0 ? 0 : (unsigned)d;
}

/* Hold an answer for its delay; returns 0, or -1 (out of memory: the answer is lost). */
static int hold_answer(struct udpdelay *u, const struct udpmap_client *to, size_t len)
{
	struct held *h = malloc(sizeof(*h) + len);
	int64_t now = fleet_mono_us();
	struct timeval tv;

	if (h == NULL)
		return -1;
	h->timer = evtimer_new(u->base, held_send, h);
	if (h->timer == NULL) {
		free(h);
		return -1;
	}
	h->u = u;
	h->due_us = now + (int64_t)answer_delay(u, u->answers) * 1000;
	tv = fleet_tv_until(h->due_us, now);
	h->to = *to;
	h->len = len;
	memcpy(h->data, u->buf, len);
	/* The answer carries the id the client chose, not ours. */
	h->data[0] = (unsigned char)(to->qid >> 8);
	h->data[1] = (unsigned char)(to->qid & 0xff);
	h->prev = NULL;
	h->next = u->held;
	if (u->held != NULL)
		u->held->prev = h;
	u->held = h;
	evtimer_add(h->timer, &tv);
	return 0;
}

/* Queries from clients: forward each under an id of ours, or lose it. */
static void on_query(evutil_socket_t fd, short what, void *arg)
{
	struct udpdelay *u = arg;

	for (int i = 0; i < BATCH; i++) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, u->buf, sizeof(u->buf), 0, (struct sockaddr *)&from, &fromlen);
		uint16_t qid;
		int id;

		if (n < 0)
			return; /* EAGAIN: all read; anything else: nothing to do about it here */
		u->queries++;
		if (n < DNS_HEADER) {
			u->malformed++;
			continue;
		}
		if (fb_mix64(fb_mix64(u->opt.seed ^ SALT_LOSS) ^ u->queries) % FB_PPM < u->opt.loss_ppm) {
			u->lost++;
			continue;
		}
		qid = (uint16_t)(u->buf[0] << 8 | u->buf[1]);
		id = udpmap_add(u->map, (struct sockaddr *)&from, fromlen, qid, mxs_mono_ms());
		if (id < 0) {
			u->overflow++;
			continue;
		}
		u->buf[0] = (unsigned char)(id >> 8);
		u->buf[1] = (unsigned char)(id & 0xff);
		if (send(u->ufd, u->buf, (size_t)n, 0) < 0) {
			struct udpmap_client gone;
			udpmap_take(u->map, (uint16_t)id, &gone);
			u->errors++;
			continue;
		}
		u->forwarded++;
	}
}

/* Answers from upstream: back to whoever asked, after the delay. */
static void on_answer(evutil_socket_t fd, short what, void *arg)
{
	struct udpdelay *u = arg;

	for (int i = 0; i < BATCH; i++) {
		ssize_t n = recv(fd, u->buf, sizeof(u->buf), 0);
		struct udpmap_client to;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			u->errors++; /* ECONNREFUSED: the upstream is not there (yet) */
			continue;
		}
		if (n < DNS_HEADER || udpmap_take(u->map, (uint16_t)(u->buf[0] << 8 | u->buf[1]), &to) < 0) {
			u->unmatched++;
			continue;
		}
		if (hold_answer(u, &to, (size_t)n) < 0)
			u->errors++;
		u->answers++;
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct udpdelay *u = arg;

	mxs_info("udpdelay", "signal sig=%d stopping", (int)sig);
	event_base_loopbreak(u->base);
}

/* The harness holds our stdin and never writes: end of file means it is gone. */
static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct udpdelay *u = arg;
	char b[256];
	ssize_t n = read(fd, b, sizeof(b));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		mxs_info("udpdelay", "stdin closed, stopping");
		event_base_loopbreak(u->base);
	}
}

/*
 * A non-blocking UDP socket with large buffers, bound to bind_to or connected to
 * connect_to (the other NULL). Returns the socket, or -errno.
 */
static evutil_socket_t udp_socket(const struct sockaddr *bind_to, const struct sockaddr *connect_to,
				  socklen_t len)
{
	const struct sockaddr *sa = bind_to != NULL ? bind_to : connect_to;
	int size = SOCKET_BUFFER, err;
	evutil_socket_t fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	if (bind_to != NULL ? bind(fd, bind_to, len) == 0 : connect(fd, connect_to, len) == 0)
		return fd;
	err = errno;
	close(fd);
	return -err;
}

/* The port a bound socket got (the kernel's choice for port 0). */
static int bound_port(evutil_socket_t fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/*
 * "127.0.0.1:53" or "[::1]:53" into *ss; port 0 allowed (libevent's parser refuses it,
 * and a test listens on port 0). Returns the address length, or -1.
 */
static socklen_t parse_addr_port(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon = strrchr(s, ':'), *h = s;
	size_t hlen;
	unsigned long long port;
	char *end;

	if (colon == NULL || colon[1] < '0' || colon[1] > '9')
		return (socklen_t)-1;
	hlen = (size_t)(colon - s);
	if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']')
		h = s + 1, hlen -= 2;
	errno = 0;
	port = strtoull(colon + 1, &end, 10);
	if (hlen == 0 || hlen >= sizeof(host) || *end != '\0' || errno != 0 || port > 65535)
		return (socklen_t)-1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (h == s) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		return evutil_inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? sizeof(*sin) : (socklen_t)-1;
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		return evutil_inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1 ? sizeof(*sin6)
										 : (socklen_t)-1;
	}
}

/* Sockets and events. Returns 0, EXIT_BIND (the listen port is taken) or 1 (logged). */
static int udpdelay_open(struct udpdelay *u)
{
	struct sockaddr_storage lss, uss;
	socklen_t llen = parse_addr_port(u->opt.listen, &lss), ulen = parse_addr_port(u->opt.upstream, &uss);

	if (llen == (socklen_t)-1 || ulen == (socklen_t)-1) {
		mxs_err("udpdelay", "bad address listen=%s upstream=%s", u->opt.listen, u->opt.upstream);
		return 1;
	}
	u->lfd = udp_socket((struct sockaddr *)&lss, NULL, llen);
	if (u->lfd < 0) {
		mxs_err("udpdelay", "bind addr=%s error=\"%s\"", u->opt.listen, strerror((int)-u->lfd));
		return u->lfd == -EADDRINUSE ? EXIT_BIND : 1;
	}
	u->ufd = udp_socket(NULL, (struct sockaddr *)&uss, ulen);
	if (u->ufd < 0) {
		mxs_err("udpdelay", "connect addr=%s error=\"%s\"", u->opt.upstream, strerror((int)-u->ufd));
		return 1;
	}
	u->lev = event_new(u->base, u->lfd, EV_READ | EV_PERSIST, on_query, u);
	u->uev = event_new(u->base, u->ufd, EV_READ | EV_PERSIST, on_answer, u);
	u->sig_term = evsignal_new(u->base, SIGTERM, on_signal, u);
	u->sig_int = evsignal_new(u->base, SIGINT, on_signal, u);
	if (u->lev == NULL || u->uev == NULL || u->sig_term == NULL || u->sig_int == NULL ||
	    event_add(u->lev, NULL) < 0 || event_add(u->uev, NULL) < 0 ||
	    evsignal_add(u->sig_term, NULL) < 0 || evsignal_add(u->sig_int, NULL) < 0)
		return 1;
	if (u->opt.watch_stdin) {
		u->stdin_ev = event_new(u->base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, u);
		if (u->stdin_ev == NULL || event_add(u->stdin_ev, NULL) < 0)
			return 1;
	}
	return 0;
}

static void udpdelay_close(struct udpdelay *u)
{
	struct event *evs[] = { u->lev, u->uev, u->sig_term, u->sig_int, u->stdin_ev };

	while (u->held != NULL)
		held_free(u->held); /* answers still on their way are dropped */
	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	if (u->lfd >= 0)
		close(u->lfd);
	if (u->ufd >= 0)
		close(u->ufd);
	udpmap_free(u->map);
	if (u->base != NULL)
		event_base_free(u->base);
}

static int udpdelay_run(const struct udpdelay_opts *opt)
{
	struct udpdelay *u = calloc(1, sizeof(*u)); /* the datagram buffer is too big for a stack */
	int rc;

	if (u == NULL)
		return 1;
	u->opt = *opt;
	u->lfd = u->ufd = -1;
	signal(SIGPIPE, SIG_IGN);
	u->base = event_base_new();
	u->map = udpmap_new(QUERY_TTL_MS);
	rc = u->base == NULL || u->map == NULL ? 1 : udpdelay_open(u);
	if (rc == 0 && opt->ready_file != NULL &&
	    fleet_ready_file_write(opt->ready_file, bound_port(u->lfd)) < 0) {
		mxs_err("udpdelay", "ready-file path=%s error=\"%s\"", opt->ready_file, strerror(errno));
		rc = 1;
	}
	if (rc == 0) {
		mxs_info("udpdelay", "listen addr=%s port=%d upstream=%s delay_ms=%u jitter_ms=%u "
			 "loss_ppm=%u", opt->listen, bound_port(u->lfd), opt->upstream, opt->delay_ms,
			 opt->jitter_ms, (unsigned)opt->loss_ppm);
		rc = event_base_dispatch(u->base) < 0 ? 1 : 0;
		mxs_info("udpdelay", "stop queries=%llu forwarded=%llu lost=%llu overflow=%llu "
			 "malformed=%llu answers=%llu sent=%llu unmatched=%llu expired=%llu "
			 "in_flight=%u errors=%llu",
			 (unsigned long long)u->queries, (unsigned long long)u->forwarded,
			 (unsigned long long)u->lost, (unsigned long long)u->overflow,
			 (unsigned long long)u->malformed, (unsigned long long)u->answers,
			 (unsigned long long)u->sent, (unsigned long long)u->unmatched,
			 (unsigned long long)udpmap_expired(u->map), udpmap_in_flight(u->map),
			 (unsigned long long)u->errors);
	}
	udpdelay_close(u);
	free(u);
	return rc;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: mxsurvey-udpdelay --listen ADDR:PORT --upstream ADDR:PORT [--delay-ms N]\n"
		"                         [--jitter-ms J] [--loss-share P] [--seed S]\n"
		"                         [--ready-file F] [--watch-stdin] [--verbose]\n"
		"Forwards DNS over UDP to the upstream; answers come back after N +- J ms;\n"
		"a share P (0.01) of queries is lost. ADDR: 127.0.0.1 or [::1]; PORT 0: any.\n");
}

/* A decimal number in [0, max]; -1 if s is not one. */
static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno != 0 || *end != '\0' || *out > max ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "upstream", required_argument, NULL, 'u' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "jitter-ms", required_argument, NULL, 'j' },
		{ "loss-share", required_argument, NULL, 'L' },
		{ "seed", required_argument, NULL, 's' },
		{ "ready-file", required_argument, NULL, 'r' },
		{ "watch-stdin", no_argument, NULL, 'w' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct udpdelay_opts opt = { 0 };
	unsigned long long v;
	int c;

	while ((c = getopt_long(argc, argv, "l:u:d:j:L:s:r:wvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			opt.listen = optarg;
			break;
		case 'u':
			opt.upstream = optarg;
			break;
		case 'd':
		case 'j':
			if (parse_num(optarg, 600000, &v) < 0) {
				fprintf(stderr, "mxsurvey-udpdelay: bad milliseconds '%s'\n", optarg);
				return EXIT_USAGE;
			}
			*(c == 'd' ? &opt.delay_ms : &opt.jitter_ms) = (unsigned)v;
			break;
		case 'L':
			if (fb_share_parse(optarg, &opt.loss_ppm) < 0) {
				fprintf(stderr, "mxsurvey-udpdelay: bad --loss-share '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_num(optarg, UINT64_MAX, &v) < 0) {
				fprintf(stderr, "mxsurvey-udpdelay: bad --seed '%s'\n", optarg);
				return EXIT_USAGE;
			}
			opt.seed = v;
			break;
		case 'r':
			opt.ready_file = optarg;
			break;
		case 'w':
			opt.watch_stdin = 1;
			break;
		case 'v':
			mxs_log_set_level(MXS_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc || opt.listen == NULL || opt.upstream == NULL) {
		usage(stderr);
		return EXIT_USAGE;
	}
	return udpdelay_run(&opt);
}
