/* Freeing an event base after its deferred callbacks have run. */
#include "evbase.h"

#include <event2/event.h>

/* Rounds of the loop allowed to empty the queue: a deferred callback may queue another. */
enum { DRAIN_ROUNDS_MAX = 64 };

void mxs_event_base_close(struct event_base *base)
{
	if (base == NULL)
		return;
	for (int i = 0; i < DRAIN_ROUNDS_MAX; i++) {
		if (event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
			break;
		event_base_loop(base, EVLOOP_NONBLOCK);
	}
	event_base_free(base);
}
