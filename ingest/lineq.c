#include "lineq.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK_SIZE (256u * 1024u)
#define LINEQ_SPARE 8   /* released chunks kept for reuse (2 MiB) */

const char *const lineq_push_names[LINEQ_PUSH_LAST] = {
	[LINEQ_OK] = "ok",
	[LINEQ_FULL] = "full",
	[LINEQ_CLOSED] = "closed",
	[LINEQ_NOMEM] = "nomem",
};

struct lineq {
	pthread_mutex_t mu;
	pthread_cond_t nonempty;
	pthread_cond_t nonfull;
	struct lineq_chunk *head, *tail;   /* owned; queued, the tail is being filled */
	struct lineq_chunk *spare;         /* owned; released standard chunks for reuse */
	int nspare;
	size_t bytes;                      /* capacity of queued and taken chunks */
	size_t max_bytes;
	int closed;
};

struct lineq *lineq_new(size_t max_bytes)
{
	struct lineq *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->nonempty, NULL);
	pthread_cond_init(&q->nonfull, NULL);
	q->max_bytes = max_bytes < 2 * CHUNK_SIZE ? 2 * CHUNK_SIZE : max_bytes;
	return q;
}

static void free_list(struct lineq_chunk *c)
{
	while (c != NULL) {
		struct lineq_chunk *n = c->next;
		free(c);
		c = n;
	}
}

void lineq_free(struct lineq *q)
{
	if (q == NULL)
		return;
	free_list(q->head);
	free_list(q->spare);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->nonempty);
	pthread_cond_destroy(&q->nonfull);
	free(q);
}

enum lineq_push lineq_push(struct lineq *q, const char *line, size_t len, int block)
{
	uint32_t n32 = (uint32_t)len;
	size_t need = sizeof(n32) + len;
	enum lineq_push rc = LINEQ_OK;

	if (len > UINT32_MAX)
		return LINEQ_NOMEM;
	pthread_mutex_lock(&q->mu);
	for (;;) {
		if (q->closed) {
			rc = LINEQ_CLOSED;
			goto out;
		}
		if (q->tail != NULL && q->tail->cap - q->tail->len >= need)
			break;
		size_t cap = need > CHUNK_SIZE ? need : CHUNK_SIZE;
		/* an oversized line is let in when nothing else is waiting, never starved */
		if (q->bytes + cap <= q->max_bytes || q->bytes == 0) {
			/* reuse a released chunk: fresh large allocations cost page faults */
			struct lineq_chunk *c;
			if (cap == CHUNK_SIZE && q->spare != NULL) {
				c = q->spare;
				q->spare = c->next;
				q->nspare--;
			} else if ((c = malloc(sizeof(*c) + cap)) == NULL) {
				rc = LINEQ_NOMEM;
				goto out;
			}
			c->next = NULL;
			c->len = 0;
			c->cap = cap;
			if (q->tail)
				q->tail->next = c;
			else
				q->head = c;
			q->tail = c;
			q->bytes += cap;
			break;
		}
		if (!block) {
			rc = LINEQ_FULL;
			goto out;
		}
		pthread_cond_wait(&q->nonfull, &q->mu);
	}
	memcpy(q->tail->data + q->tail->len, &n32, sizeof(n32));
	memcpy(q->tail->data + q->tail->len + sizeof(n32), line, len);
	q->tail->len += need;
	pthread_cond_signal(&q->nonempty);
out:
	pthread_mutex_unlock(&q->mu);
	return rc;
}

struct lineq_chunk *lineq_take(struct lineq *q, int timeout_ms, int *closed)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->mu);
	while (q->head == NULL && !q->closed && timeout_ms > 0)
		if (pthread_cond_timedwait(&q->nonempty, &q->mu, &until) == ETIMEDOUT)
			break;
	struct lineq_chunk *list = q->head;
	q->head = q->tail = NULL;
	*closed = q->closed && list == NULL;
	pthread_mutex_unlock(&q->mu);
	return list;
}

void lineq_release(struct lineq *q, struct lineq_chunk *list)
{
	pthread_mutex_lock(&q->mu);
	while (list != NULL) {
		struct lineq_chunk *c = list;
		list = c->next;
		q->bytes -= c->cap;
		if (c->cap == CHUNK_SIZE && q->nspare < LINEQ_SPARE) {
			c->next = q->spare;
			q->spare = c;
			q->nspare++;
		} else {
			free(c);
		}
	}
	pthread_cond_broadcast(&q->nonfull);
	pthread_mutex_unlock(&q->mu);
}

void lineq_close(struct lineq *q)
{
	pthread_mutex_lock(&q->mu);
	q->closed = 1;
	pthread_cond_broadcast(&q->nonempty);
	pthread_cond_broadcast(&q->nonfull);
	pthread_mutex_unlock(&q->mu);
}

size_t lineq_bytes(struct lineq *q)
{
	pthread_mutex_lock(&q->mu);
	size_t b = q->bytes;
	pthread_mutex_unlock(&q->mu);
	return b;
}

int lineq_chunk_next(const struct lineq_chunk *c, size_t *pos, const char **line, size_t *len)
{
	uint32_t n32;
	if (*pos + sizeof(n32) > c->len)
		return 0;
	memcpy(&n32, c->data + *pos, sizeof(n32));
	*line = c->data + *pos + sizeof(n32);
	*len = n32;
	*pos += sizeof(n32) + n32;
	return 1;
}
