/*
 * A bufferevent freed while its deferred callbacks are queued is released when its event
 * base is closed: every block libevent allocated is given back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "evbase.h"

/* libevent's blocks still allocated (its allocator is routed through the three below). */
static long live_blocks;

static void *count_malloc(size_t n)
{
	void *p = malloc(n);
	if (p != NULL)
		live_blocks++;
	return p;
}

static void *count_realloc(void *old, size_t n)
{
	void *p = realloc(old, n);
	if (old == NULL && p != NULL)
		live_blocks++;
	return p;
}

static void count_free(void *p)
{
	if (p != NULL)
		live_blocks--;
	free(p);
}

static void ignore_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)arg;
}

/* One bufferevent with a deferred read callback queued, freed before the loop runs it. */
static void free_with_deferred_callback(struct event_base *base, int fd)
{
	struct bufferevent *bev =
		bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	assert_non_null(bev);
	bufferevent_setcb(bev, ignore_read, NULL, NULL, NULL);
	assert_int_equal(bufferevent_write(bev, "QUIT\r\n", 6), 0);
	bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	bufferevent_free(bev);
}

static void test_deferred_callback_released(void **state)
{
	(void)state;
	int sv[2];
	struct event_base *base = event_base_new();

	assert_non_null(base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	free_with_deferred_callback(base, sv[0]);
	assert_true(live_blocks > 0);
	mxs_event_base_close(base);
	assert_int_equal(live_blocks, 0);
	close(sv[1]);
}

static void test_null_ignored(void **state)
{
	(void)state;
	mxs_event_base_close(NULL);
}

int main(void)
{
	/* Before libevent allocates anything. */
	event_set_mem_functions(count_malloc, count_realloc, count_free);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deferred_callback_released),
		cmocka_unit_test(test_null_ignored),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
