/*
 * Batched UDP behind c-ares' socket functions (targets/udpbatch.c), on real loopback
 * sockets: what c-ares sees must be what plain sendto/recvfrom would give it.
 */
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "udpbatch.h"

struct fixture {
	struct event_base *base;
	struct mxs_udpb *b;
	const struct ares_socket_functions *f;
	int server;                 /* a plain UDP socket on 127.0.0.1 */
	struct sockaddr_in server_addr;
	int fd;                     /* the batched client socket, connected to server */
	int errors, error_fd;
};

static void on_error(int fd, void *arg)
{
	struct fixture *x = arg;

	x->errors++;
	x->error_fd = fd;
}

static int setup(void **state)
{
	static struct fixture x;
	socklen_t len = sizeof(x.server_addr);

	memset(&x, 0, sizeof(x));
	x.base = event_base_new();
	assert_non_null(x.base);
	x.b = mxs_udpb_new(x.base, 1 << 20, on_error, &x);
	assert_non_null(x.b);
	x.f = mxs_udpb_funcs();
	x.server = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	assert_true(x.server >= 0);
	x.server_addr.sin_family = AF_INET;
	x.server_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(x.server, (struct sockaddr *)&x.server_addr, sizeof(x.server_addr)), 0);
	assert_int_equal(getsockname(x.server, (struct sockaddr *)&x.server_addr, &len), 0);
	x.fd = x.f->asocket(AF_INET, SOCK_DGRAM, 0, x.b);
	assert_true(x.fd >= 0);
	assert_int_equal(x.f->aconnect(x.fd, (struct sockaddr *)&x.server_addr,
				       sizeof(x.server_addr), x.b), 0);
	*state = &x;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *x = *state;

	x->f->aclose(x->fd, x->b);
	mxs_udpb_free(x->b);
	close(x->server);
	event_base_free(x->base);
	return 0;
}

/* c-ares' way to send: one datagram in iovecs; returns what asendv returned */
static ssize_t send_q(struct fixture *x, int i)
{
	char head[8], tail[16];
	struct iovec iov[2];

	snprintf(head, sizeof(head), "q%05d", i);
	snprintf(tail, sizeof(tail), "-payload");
	iov[0].iov_base = head;
	iov[0].iov_len = strlen(head);
	iov[1].iov_base = tail;
	iov[1].iov_len = strlen(tail);
	return x->f->asendv(x->fd, iov, 2, x->b);
}

/* every datagram the server has now, checked to be q<first>..q<first+n-1> in order */
static int server_reads(struct fixture *x, int first)
{
	char buf[64], want[32];
	int n = 0;
	ssize_t r;

	while ((r = recv(x->server, buf, sizeof(buf) - 1, 0)) >= 0) {
		buf[r] = '\0';
		snprintf(want, sizeof(want), "q%05d-payload", first + n);
		assert_string_equal(buf, want);
		n++;
	}
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	return n;
}

static void test_sends_are_queued_and_flushed(void **state)
{
	struct fixture *x = *state;
	struct mxs_udpb_stats st;

	/* a full queue goes at once, in one system call */
	for (int i = 0; i < 100; i++)
		assert_int_equal(send_q(x, i), 14);
	assert_int_equal(server_reads(x, 0), MXS_UDPB_BATCH);
	/* the rest with the loop's turn */
	assert_true(event_base_loop(x->base, EVLOOP_NONBLOCK) >= 0);
	assert_int_equal(server_reads(x, MXS_UDPB_BATCH), 100 - MXS_UDPB_BATCH);
	mxs_udpb_stats(x->b, &st);
	assert_int_equal(st.send_calls, 2);
	assert_int_equal(st.send_dgrams, 100);
	assert_int_equal(st.send_direct, 0);
	/* and an explicit flush */
	for (int i = 0; i < 3; i++)
		send_q(x, 500 + i);
	mxs_udpb_flush(x->b);
	assert_int_equal(server_reads(x, 500), 3);
	assert_int_equal(x->errors, 0);
}

static void test_reads_come_from_a_batch(void **state)
{
	struct fixture *x = *state;
	struct sockaddr_in me, from;
	socklen_t len = sizeof(me);
	char buf[4097], want[32];
	struct mxs_udpb_stats st;

	assert_int_equal(getsockname(x->fd, (struct sockaddr *)&me, &len), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(want, sizeof(want), "a%05d", i);
		assert_int_equal(sendto(x->server, want, strlen(want), 0, (struct sockaddr *)&me,
					sizeof(me)), 6);
	}
	for (int i = 0; i < 100; i++) {
		ares_socklen_t fl = sizeof(from);
		memset(&from, 0, sizeof(from));
		ssize_t r = x->f->arecvfrom(x->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl,
					    x->b);
		assert_int_equal(r, 6);
		buf[r] = '\0';
		snprintf(want, sizeof(want), "a%05d", i);
		assert_string_equal(buf, want);
		assert_int_equal(fl, sizeof(struct sockaddr_in));
		assert_int_equal(from.sin_port, x->server_addr.sin_port);
		assert_int_equal(from.sin_addr.s_addr, x->server_addr.sin_addr.s_addr);
		if (i == 0)
			assert_int_equal(mxs_udpb_pending(x->b, x->fd), MXS_UDPB_BATCH - 1);
	}
	assert_int_equal(mxs_udpb_pending(x->b, x->fd), 0);
	assert_int_equal(x->f->arecvfrom(x->fd, buf, sizeof(buf), 0, NULL, NULL, x->b), -1);
	assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
	mxs_udpb_stats(x->b, &st);
	assert_int_equal(st.recv_dgrams, 100);
	assert_int_equal(st.recv_calls, 3); /* 64, 36, then EAGAIN */

	/* a caller's buffer shorter than the datagram: cut, as recvfrom cuts */
	assert_int_equal(sendto(x->server, "0123456789", 10, 0, (struct sockaddr *)&me, sizeof(me)),
			 10);
	assert_int_equal(x->f->arecvfrom(x->fd, buf, 4, 0, NULL, NULL, x->b), 4);
	assert_memory_equal(buf, "0123", 4);
}

static void test_hard_send_error_is_read_by_cares(void **state)
{
	struct fixture *x = *state;
	char buf[512];
	int i;

	/* nothing listens any more: the kernel's port-unreachable comes back as
	 * ECONNREFUSED on a later send, which the next read must report */
	close(x->server);
	x->server = socket(AF_INET, SOCK_DGRAM, 0); /* for teardown */
	for (i = 0; i < 1000 && !x->errors; i++) {
		send_q(x, i);
		mxs_udpb_flush(x->b);
	}
	assert_int_equal(x->errors, 1);
	assert_int_equal(x->error_fd, x->fd);
	assert_int_equal(mxs_udpb_pending(x->b, x->fd), 1);
	assert_int_equal(x->f->arecvfrom(x->fd, buf, sizeof(buf), 0, NULL, NULL, x->b), -1);
	assert_int_equal(errno, ECONNREFUSED);
	assert_int_equal(mxs_udpb_pending(x->b, x->fd), 0);
}

static void test_close_drops_the_queue(void **state)
{
	struct fixture *x = *state;

	for (int i = 0; i < 3; i++)
		send_q(x, i);
	assert_int_equal(x->f->aclose(x->fd, x->b), 0);
	x->fd = x->f->asocket(AF_INET, SOCK_DGRAM, 0, x->b); /* likely the same number */
	assert_true(x->fd >= 0);
	assert_int_equal(mxs_udpb_pending(x->b, x->fd), 0);
	mxs_udpb_flush(x->b);
	assert_int_equal(server_reads(x, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sends_are_queued_and_flushed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reads_come_from_a_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hard_send_error_is_read_by_cares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_drops_the_queue, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
