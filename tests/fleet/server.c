#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "conn.h"
#include "log.h"
#include "pki.h"
#include "readyfile.h"
#include "tlsctx.h"

#define LISTEN_BACKLOG 4096
#define RELISTEN_MS 100     /* pause accepting this long after accept() failed (EMFILE) */

/* Thousands of concurrent sessions need as many descriptors as the hard limit allows. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			mxs_warn("fleet", "setrlimit error=\"%s\"", strerror(errno));
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		mxs_info("fleet", "nofile limit=%llu", (unsigned long long)rl.rlim_cur);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *peer,
		      int peerlen, void *arg)
{
	struct fleet *fl = arg;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct fleet_addr local;

	/* Bound to 0.0.0.0, but only the simulated loopback internet is served. */
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    fleet_addr_from_sockaddr(&local, (struct sockaddr *)&ss) < 0 ||
	    !fleet_addr_is_served(&local)) {
		fl->refused++;
		evutil_closesocket(fd);
		return;
	}
	fl->accepted++;
	fconn_start(fl, fd, &local);
}

static void on_relisten(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *fl = arg;

	for (int i = 0; i < fl->nlisteners; i++)
		evconnlistener_enable(fl->listeners[i]);
}

/* accept() failed, most likely out of descriptors: back off instead of spinning. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct fleet *fl = arg;
	struct timeval tv = { .tv_sec = 0, .tv_usec = RELISTEN_MS * 1000 };

	mxs_warn("fleet", "accept error=\"%s\" open-connections-limit-reached=%d",
		 strerror(errno), errno == EMFILE || errno == ENFILE);
	for (int i = 0; i < fl->nlisteners; i++)
		evconnlistener_disable(fl->listeners[i]);
	evtimer_add(fl->relisten, &tv);
}

/*
 * Bind family's address (0.0.0.0 or ::1) on *port and listen. A zero *port is replaced
 * by the one the kernel chose. Returns 0, or -errno.
 */
static int listen_on(struct fleet *fl, int family, int *port)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int one = 1, fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)*port);
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sl = sizeof(*sin);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)*port);
		sin6->sin6_addr = in6addr_loopback;
		sl = sizeof(*sin6);
	}
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		goto fail;
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	fl->listeners[fl->nlisteners] = evconnlistener_new(fl->base, on_accept, fl,
							   LEV_OPT_CLOSE_ON_FREE, LISTEN_BACKLOG, fd);
	if (fl->listeners[fl->nlisteners] == NULL)
		goto fail;
	evconnlistener_set_error_cb(fl->listeners[fl->nlisteners], on_accept_error);
	fl->nlisteners++;
	return 0;
fail:
	err = errno;
	close(fd);
	return -err;
}

static int open_listeners(struct fleet *fl, int *port)
{
	int rc = listen_on(fl, AF_INET, port);

	if (rc < 0) {
		mxs_err("fleet", "listen addr=0.0.0.0 port=%d error=\"%s\"", *port, strerror(-rc));
		return rc == -EADDRINUSE ? FLEET_EXIT_BIND : 1;
	}
	rc = listen_on(fl, AF_INET6, port);
	if (rc == -EADDRINUSE) {
		mxs_err("fleet", "listen addr=::1 port=%d error=\"%s\"", *port, strerror(-rc));
		return FLEET_EXIT_BIND;
	}
	if (rc < 0) /* a host without IPv6 still serves IPv4 */
		mxs_warn("fleet", "listen addr=::1 port=%d error=\"%s\"", *port, strerror(-rc));
	return 0;
}

static int make_tls_contexts(struct fleet *fl)
{
	for (int i = 0; i < fl->opt.proto->nbehaviours; i++) {
		const struct fb_behaviour *b = &fb_behaviours[i];
		/* Implicit TLS: every server shakes hands, except the one answering with junk. */
		int tls = fl->opt.proto->implicit ? (b->after_starttls != FB_AFTER_NOT_TLS &&
						     b->after_starttls != FB_AFTER_CANNED) : fb_speaks_tls(b);
		if (!tls || fl->ctx[b->tls][b->leaf] != NULL)
			continue;
		fl->ctx[b->tls][b->leaf] = fleet_tls_ctx_new(&fb_tls_profiles[b->tls],
							     &fb_leaves[b->leaf], fl->opt.certdir);
		if (fl->ctx[b->tls][b->leaf] == NULL)
			return -1;
	}
	return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct fleet *fl = arg;

	mxs_info("fleet", "signal sig=%d stopping", (int)sig);
	event_base_loopbreak(fl->base);
}

/*
 * A test harness keeps our stdin open and never writes to it: end of file means it is
 * gone (even killed with SIGKILL), so the fleet must not outlive it.
 */
static void on_stdin(evutil_socket_t fd, short what, void *arg)
{
	struct fleet *fl = arg;
	char buf[256];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		mxs_info("fleet", "stdin closed, stopping");
		event_base_loopbreak(fl->base);
	}
}

/*
 * The loop was broken off at once (event_base_loopbreak), so callbacks activated in its
 * last pass may still be queued. A bufferevent's deferred callback holds a reference to
 * it: event_base_free() cancels such a callback without dropping that reference, and the
 * session's bufferevent, its buffers and socket (and a TLS filter's SSL) would leak, which
 * the sanitizer build reports at exit. Run what is queued, with nothing left that could
 * start new work; bufferevent_free() has cleared every session callback by now, so this
 * only releases the references and runs libevent's finalizers. Bounded: every pass
 * releases what the one before queued.
 */
static void drain_queued_callbacks(struct event_base *base)
{
	for (int pass = 0; pass < 64; pass++)
		if (event_base_loop(base, EVLOOP_NONBLOCK) != 0 ||
		    event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
}

static void fleet_cleanup(struct fleet *fl)
{
	/* First whatever could start new work, then the sessions, then what they queued. */
	for (int i = 0; i < fl->nlisteners; i++)
		evconnlistener_free(fl->listeners[i]);
	if (fl->sig_term != NULL)
		event_free(fl->sig_term);
	if (fl->sig_int != NULL)
		event_free(fl->sig_int);
	if (fl->relisten != NULL)
		event_free(fl->relisten);
	if (fl->stdin_ev != NULL)
		event_free(fl->stdin_ev);
	fconn_free_all(fl);
	if (fl->base != NULL)
		drain_queued_callbacks(fl->base);
	for (int t = 0; t < FB_TLS_LAST; t++)
		for (int l = 0; l < FB_LEAF_LAST; l++)
			SSL_CTX_free(fl->ctx[t][l]);
	fleet_addrcount_free(fl->counts);
	if (fl->base != NULL)
		event_base_free(fl->base);
}

int fleet_serve(const struct fleet_opts *opt)
{
	struct fleet fl = { .opt = *opt };
	struct timeval idle = { .tv_sec = opt->idle_ms / 1000, .tv_usec = (opt->idle_ms % 1000) * 1000 };
	int port = opt->port, rc = 1;

	/* A client that resets mid-write must cost a connection, not the process. */
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	if (fleet_pki_ensure(opt->certdir) < 0)
		return 1;
	fl.base = event_base_new();
	fl.counts = fleet_addrcount_new();
	if (fl.base == NULL || fl.counts == NULL || make_tls_contexts(&fl) < 0)
		goto out;
	fl.idle_tv = event_base_init_common_timeout(fl.base, &idle);
	fl.sig_term = evsignal_new(fl.base, SIGTERM, on_signal, &fl);
	fl.sig_int = evsignal_new(fl.base, SIGINT, on_signal, &fl);
	fl.relisten = evtimer_new(fl.base, on_relisten, &fl);
	if (fl.idle_tv == NULL || fl.sig_term == NULL || fl.sig_int == NULL || fl.relisten == NULL ||
	    evsignal_add(fl.sig_term, NULL) < 0 || evsignal_add(fl.sig_int, NULL) < 0)
		goto out;
	if (opt->watch_stdin) {
		fl.stdin_ev = event_new(fl.base, STDIN_FILENO, EV_READ | EV_PERSIST, on_stdin, &fl);
		if (fl.stdin_ev == NULL || event_add(fl.stdin_ev, NULL) < 0)
			goto out;
	}
	rc = open_listeners(&fl, &port);
	if (rc != 0)
		goto out;
	if (opt->ready_file != NULL && fleet_ready_file_write(opt->ready_file, port) < 0) {
		mxs_err("fleet", "ready-file path=%s error=\"%s\"", opt->ready_file, strerror(errno));
		rc = 1;
		goto out;
	}
	mxs_info("fleet", "listen port=%d proto=%s seed=%llu behaviours=%d delay_ms=%u idle_ms=%u certdir=%s "
		 "rtt_ms=%u jitter_ms=%u stall_ppm=%u drop_ppm=%u",
		 port, opt->proto->name, (unsigned long long)opt->seed, opt->proto->nbehaviours, opt->delay_ms, opt->idle_ms,
		 opt->certdir, opt->rtt_ms, opt->jitter_ms, (unsigned)opt->faults.stall_ppm,
		 (unsigned)opt->faults.drop_ppm);
	rc = event_base_dispatch(fl.base) < 0 ? 1 : 0;
	mxs_info("fleet", "stop accepted=%llu refused=%llu", (unsigned long long)fl.accepted,
		 (unsigned long long)fl.refused);
out:
	fleet_cleanup(&fl);
	return rc;
}
