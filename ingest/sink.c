/*
 * The streaming sink: mxs_sink_put queues lines; one thread sends them in batches
 * (batch.c) over two connections ("lanes") used in turn: while one lane's COMMIT waits
 * for its WAL flush, the other streams the next batch. A lane keeps its batch's lines
 * until the COMMIT is confirmed. When the database is away the batches go to the spool,
 * and the thread reconnects every retry_ms and replays the spool once it is back, as it
 * does at start for files left by earlier runs.
 *
 * Thread ownership: everything under "sink thread" is touched only by that thread;
 * the overflow writer and its counters only under ovf_mu; put counters are atomic.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "ingest.h"
#include "lineq.h"
#include "linevec.h"
#include "log.h"
#include "pgutil.h"
#include "spool.h"
#include "timeutil.h"

struct mxs_sink {
	struct mxs_sink_opts o;
	char *conninfo;             /* owned */
	char instance[64];
	char spool_dir[1100];
	int64_t scan_id;
	struct lineq *q;            /* owned */
	pthread_t thread;

	/* sink thread */
	struct lane {
		PGconn *conn;           /* owned */
		struct batcher *batcher;/* owned */
		struct linevec lines;   /* the batch whose COMMIT is in flight */
	} lanes[2];
	int cur;                    /* the lane for the next batch */
	struct linevec batch;
	int64_t batch_first_ms;
	struct spool_writer *spool; /* owned: batches that could not be sent */
	int64_t next_retry_ms;
	int conn_failed_logged;
	struct batch_counts bc;
	uint64_t spooled, replayed, reconnects;
	int lost;

	/* put side */
	pthread_mutex_t ovf_mu;
	struct spool_writer *ovf;   /* owned: lines that found the queue full */
	uint64_t ovf_lines;
	int ovf_dirty;              /* written since the last fsync */
	atomic_int spool_pending;   /* spool files of ours may be waiting */
	atomic_uint_fast64_t put_lines, put_results;
	atomic_int put_lost;

	/* set once the thread's first connection and replay attempt is over */
	pthread_mutex_t start_mu;
	pthread_cond_t start_cv;
	int started;
};

static void mark_started(struct mxs_sink *s)
{
	pthread_mutex_lock(&s->start_mu);
	s->started = 1;
	pthread_cond_broadcast(&s->start_cv);
	pthread_mutex_unlock(&s->start_mu);
}

void mxs_sink_wait_started(struct mxs_sink *s)
{
	pthread_mutex_lock(&s->start_mu);
	while (!s->started)
		pthread_cond_wait(&s->start_cv, &s->start_mu);
	pthread_mutex_unlock(&s->start_mu);
}

/* Does the line say "type":"result"? A cheap look; the converter decides for real. */
static int is_result_line(const char *p, size_t n)
{
	const char *end = p + n;
	const char *t = memmem(p, n, "\"type\"", 6);
	if (t == NULL)
		return 0;
	t += 6;
	while (t < end && (*t == ' ' || *t == ':' || *t == '\t'))
		t++;
	return (size_t)(end - t) >= 8 && memcmp(t, "\"result\"", 8) == 0;
}

static void disconnect(struct mxs_sink *s, struct lane *l)
{
	if (l->conn != NULL)
		PQfinish(l->conn);
	l->conn = NULL;
	s->next_retry_ms = mxs_mono_ms() + s->o.retry_ms;
}

static int try_connect(struct mxs_sink *s, struct lane *l)
{
	char err[512];
	if (l->conn != NULL)
		return 1;
	l->conn = pg_connect(s->conninfo, "mxsurvey ingest", err, sizeof(err));
	if (l->conn != NULL && batcher_prepare(l->batcher, l->conn, err, sizeof(err)) != 0) {
		PQfinish(l->conn);
		l->conn = NULL;
	}
	if (l->conn == NULL) {
		if (!s->conn_failed_logged)
			mxs_warn("ingest", "database unreachable, spooling error=\"%s\"", err);
		s->conn_failed_logged = 1;
		s->next_retry_ms = mxs_mono_ms() + s->o.retry_ms;
		return 0;
	}
	if (s->conn_failed_logged) {
		s->reconnects++;
		mxs_info("ingest", "database back, replaying spool");
	}
	s->conn_failed_logged = 0;
	return 1;
}

/* Keep lines in the sink's own spool file; 0, or -1 if they are lost. */
static int spool_lines(struct mxs_sink *s, const struct linevec *v)
{
	char err[512];
	if (s->spool == NULL)
		s->spool = spool_writer_open(s->spool_dir, s->instance, s->scan_id, err, sizeof(err));
	if (s->spool == NULL || spool_writer_append(s->spool, v->buf, v->len, 1, err, sizeof(err)) != 0) {
		mxs_err("ingest", "spool failed, lines lost lines=%zu error=\"%s\"", v->n, err);
		s->lost = 1;
		return -1;
	}
	s->spooled += v->n;
	atomic_store(&s->spool_pending, 1);
	return 0;
}

/* Wait for a lane's COMMIT in flight; if it failed, its lines go to the spool. */
static void settle(struct mxs_sink *s, struct lane *l)
{
	char err[1024];
	if (l->conn != NULL && batcher_pending(l->batcher)) {
		enum pg_fail f = batcher_commit_wait(l->batcher, l->conn, &s->bc, err, sizeof(err));
		if (f != PGF_OK) {
			mxs_warn("ingest", "commit failed, spooling class=%s lines=%zu error=\"%s\"",
			         pg_fail_names[f], l->lines.n, err);
			s->conn_failed_logged = 1;
			disconnect(s, l);
			spool_lines(s, &l->lines);
		} else {
			/* committed: the other lane need not send its values and certificates */
			batcher_share(l->batcher, s->lanes[l == &s->lanes[0]].batcher);
		}
	} else if (l->conn == NULL && l->lines.n > 0) {
		spool_lines(s, &l->lines);
	}
	linevec_clear(&l->lines);
}

static void settle_all(struct mxs_sink *s)
{
	settle(s, &s->lanes[0]);
	settle(s, &s->lanes[1]);
}

/* Send the current batch on the next lane, or spool it. */
static void flush(struct mxs_sink *s)
{
	char err[1024];
	if (s->batch.n == 0)
		return;
	struct lane *l = &s->lanes[s->cur];
	s->cur ^= 1;
	settle(s, l);
	if (l->conn == NULL && mxs_mono_ms() >= s->next_retry_ms)
		try_connect(s, l);
	if (l->conn == NULL && s->lanes[s->cur].conn != NULL) {
		/* one connection is better than a spool (the server may be out of slots) */
		l = &s->lanes[s->cur];
		settle(s, l);
	}
	if (l->conn != NULL) {
		/* the lane takes the batch's lines; the sink keeps the lane's empty buffer */
		struct linevec tmp = l->lines;
		l->lines = s->batch;
		s->batch = tmp;
		enum pg_fail f = batcher_send(l->batcher, l->conn, s->scan_id, &l->lines, 0,
		                              l->lines.n, 1, &s->bc, err, sizeof(err));
		if (f == PGF_OK) {
			if (!batcher_pending(l->batcher)) {
				linevec_clear(&l->lines);
				batcher_share(l->batcher, s->lanes[l == &s->lanes[0]].batcher);
			}
			return;
		}
		mxs_warn("ingest", "batch failed, spooling class=%s lines=%zu error=\"%s\"",
		         pg_fail_names[f], l->lines.n, err);
		s->conn_failed_logged = 1;
		disconnect(s, l);
		spool_lines(s, &l->lines);
		linevec_clear(&l->lines);
		return;
	}
	spool_lines(s, &s->batch);
	linevec_clear(&s->batch);
}

/*
 * Make the overflow file durable from the sink thread: fsync a duplicate of its
 * descriptor outside the lock, so a put never waits for the disk.
 */
static void sync_overflow(struct mxs_sink *s)
{
	int fd = -1;
	pthread_mutex_lock(&s->ovf_mu);
	if (s->ovf != NULL && s->ovf_dirty) {
		fd = spool_writer_dup(s->ovf);
		s->ovf_dirty = 0;
	}
	pthread_mutex_unlock(&s->ovf_mu);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* Seal the files being written so replay can take them. */
static void seal_spools(struct mxs_sink *s)
{
	if (s->spool != NULL) {
		spool_writer_close(s->spool);
		s->spool = NULL;
	}
	pthread_mutex_lock(&s->ovf_mu);
	if (s->ovf != NULL) {
		spool_writer_close(s->ovf);
		s->ovf = NULL;
	}
	pthread_mutex_unlock(&s->ovf_mu);
}

/* Does scan exist? Creates its partitions if so (a spool may outlive a dropped scan). */
static int scan_ready(struct mxs_sink *s, int64_t scan)
{
	char sql[160];
	snprintf(sql, sizeof(sql),
	         "SELECT mxs_scan_partitions(id) FROM scans WHERE id = %" PRId64, scan);
	PGresult *r = PQexec(s->lanes[0].conn, sql);
	int ok = PQresultStatus(r) == PGRES_TUPLES_OK ? PQntuples(r) : -1;
	PQclear(r);
	return ok;
}

/* Store every claimable spool file of this database; stops at the first failure. */
static void replay(struct mxs_sink *s)
{
	struct spool_file *files;
	struct linevec v;
	char err[1024];

	struct lane *l = &s->lanes[0];
	settle_all(s);
	seal_spools(s);
	atomic_store(&s->spool_pending, 0);
	int n = spool_claim(s->spool_dir, s->instance, &files);
	if (n <= 0)
		return;
	linevec_init(&v);
	int failed = 0;
	for (int i = 0; i < n && !failed && l->conn != NULL; i++) {
		int ready = scan_ready(s, files[i].scan);
		if (ready <= 0) {
			if (ready == 0)
				mxs_warn("spool", "scan gone, file kept file=%s scan=%" PRId64, files[i].path,
				         files[i].scan);
			else
				failed = 1;
			continue;
		}
		uint64_t lines = 0;
		int got;
		while ((got = spool_file_read(&files[i], s->o.batch_rows, &v, err, sizeof(err))) > 0) {
			enum pg_fail f = batcher_send(l->batcher, l->conn, files[i].scan, &v, 0, v.n, 0,
			                              &s->bc, err, sizeof(err));
			linevec_clear(&v);
			if (f != PGF_OK) {
				mxs_warn("spool", "replay failed class=%s file=%s error=\"%s\"",
				         pg_fail_names[f], files[i].path, err);
				failed = 1;
				s->conn_failed_logged = 1;
				disconnect(s, l);
				break;
			}
			lines += (uint64_t)got;
		}
		if (got < 0) {
			mxs_warn("spool", "replay read failed error=\"%s\"", err);
			failed = 1;
		}
		if (!failed) {
			spool_file_done(&files[i]);
			s->replayed += lines;
			mxs_info("spool", "replayed file=%s lines=%" PRIu64, files[i].path, lines);
		}
	}
	if (failed)
		atomic_store(&s->spool_pending, 1);
	linevec_free(&v);
	spool_files_free(files, n);
}

static void *sink_main(void *arg)
{
	struct mxs_sink *s = arg;
	struct lane *l0 = &s->lanes[0];
	int closed = 0;

	if (try_connect(s, l0))
		replay(s);
	mark_started(s);
	while (!closed) {
		int64_t now = mxs_mono_ms();
		int wait = s->o.flush_ms;
		if (s->batch.n > 0)
			wait = (int)(s->batch_first_ms + s->o.flush_ms - now);
		if (l0->conn == NULL && s->next_retry_ms - now < wait)
			wait = (int)(s->next_retry_ms - now);
		if (wait < 1)
			wait = 1;
		struct lineq_chunk *list = lineq_take(s->q, wait, &closed);
		for (struct lineq_chunk *c = list; c != NULL; c = c->next) {
			size_t pos = 0, len;
			const char *line;
			while (lineq_chunk_next(c, &pos, &line, &len)) {
				if (s->batch.n == 0)
					s->batch_first_ms = mxs_mono_ms();
				if (linevec_add(&s->batch, line, len) != 0) {
					/* no memory for one more line: send what we have, then retry it */
					flush(s);
					if (linevec_add(&s->batch, line, len) != 0) {
						mxs_err("ingest", "out of memory, line lost");
						s->lost = 1;
					}
				}
				if (s->batch.n >= s->o.batch_rows)
					flush(s);
			}
		}
		lineq_release(s->q, list);
		now = mxs_mono_ms();
		if (s->batch.n > 0 && (now - s->batch_first_ms >= s->o.flush_ms || closed)) {
			flush(s);
			/* a quiet moment: make what was sent visible rather than keep it in flight */
			if (list == NULL || closed)
				settle_all(s);
		} else if (list == NULL) {
			settle_all(s);
		}
		sync_overflow(s);
		if (l0->conn == NULL && now >= s->next_retry_ms && try_connect(s, l0))
			replay(s);
		else if (l0->conn != NULL && atomic_load(&s->spool_pending))
			replay(s);
	}
	flush(s);
	settle_all(s);
	/* closing: give a lost database close_wait_ms to come back before leaving a spool */
	int64_t deadline = mxs_mono_ms() + s->o.close_wait_ms;
	while (atomic_load(&s->spool_pending) && mxs_mono_ms() < deadline) {
		if (l0->conn == NULL && mxs_mono_ms() >= s->next_retry_ms)
			try_connect(s, l0);
		if (l0->conn != NULL) {
			replay(s);
			continue;
		}
		int64_t nap = s->next_retry_ms - mxs_mono_ms();
		if (nap > deadline - mxs_mono_ms())
			nap = deadline - mxs_mono_ms();
		if (nap > 0) {
			struct timespec ts = { nap / 1000, (nap % 1000) * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	seal_spools(s);
	for (int i = 0; i < 2; i++)
		disconnect(s, &s->lanes[i]);
	return NULL;
}

static void sink_free(struct mxs_sink *s)
{
	if (s == NULL)
		return;
	lineq_free(s->q);
	for (int i = 0; i < 2; i++) {
		batcher_free(s->lanes[i].batcher);
		linevec_free(&s->lanes[i].lines);
	}
	linevec_free(&s->batch);
	pthread_mutex_destroy(&s->ovf_mu);
	pthread_mutex_destroy(&s->start_mu);
	pthread_cond_destroy(&s->start_cv);
	free(s->conninfo);
	free(s);
}

struct mxs_sink *mxs_sink_open(struct mxs_db *db, int64_t scan_id,
                               const struct mxs_sink_opts *opts, char *err, size_t errlen)
{
	struct mxs_sink *s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (opts != NULL)
		s->o = *opts;
	if (s->o.queue_bytes == 0)
		s->o.queue_bytes = 64u << 20;
	if (s->o.batch_rows == 0)
		s->o.batch_rows = 10000;
	if (s->o.flush_ms <= 0)
		s->o.flush_ms = 1000;
	if (s->o.retry_ms <= 0)
		s->o.retry_ms = 2000;
	if (s->o.close_wait_ms <= 0)
		s->o.close_wait_ms = 10000;
	snprintf(s->spool_dir, sizeof(s->spool_dir), "%s",
	         s->o.spool_dir ? s->o.spool_dir : mxs_db_spool_dir(db));
	s->o.spool_dir = NULL;   /* copied; the caller's string may go */
	snprintf(s->instance, sizeof(s->instance), "%s", mxs_db_instance(db));
	s->scan_id = scan_id;
	pthread_mutex_init(&s->ovf_mu, NULL);
	pthread_mutex_init(&s->start_mu, NULL);
	pthread_cond_init(&s->start_cv, NULL);
	linevec_init(&s->batch);
	atomic_store(&s->spool_pending, 1);   /* earlier runs may have left files */
	s->conninfo = strdup(mxs_db_conninfo(db));
	s->q = lineq_new(s->o.queue_bytes);
	for (int i = 0; i < 2; i++) {
		linevec_init(&s->lanes[i].lines);
		s->lanes[i].batcher = batcher_new();
	}
	if (s->conninfo == NULL || s->q == NULL || s->lanes[0].batcher == NULL ||
	    s->lanes[1].batcher == NULL) {
		snprintf(err, errlen, "out of memory");
		sink_free(s);
		return NULL;
	}
	if (pthread_create(&s->thread, NULL, sink_main, s) != 0) {
		snprintf(err, errlen, "cannot start the ingest thread");
		sink_free(s);
		return NULL;
	}
	return s;
}

/* A line that found the queue full goes to the overflow spool file, synced in groups. */
static int overflow(struct mxs_sink *s, const char *line, size_t len)
{
	char err[512];
	int rc = 0;
	pthread_mutex_lock(&s->ovf_mu);
	if (s->ovf == NULL) {
		s->ovf = spool_writer_open(s->spool_dir, s->instance, s->scan_id, err, sizeof(err));
	}
	if (s->ovf == NULL || spool_writer_append(s->ovf, line, len, 0, err, sizeof(err)) != 0 ||
	    spool_writer_append(s->ovf, "\n", 1, 0, err, sizeof(err)) != 0) {
		mxs_err("ingest", "overflow spool failed error=\"%s\"", err);
		rc = -1;
	} else {
		/* no fsync here: the caller may be an event loop; the sink thread syncs */
		s->ovf_lines++;
		s->ovf_dirty = 1;
		atomic_store(&s->spool_pending, 1);
	}
	pthread_mutex_unlock(&s->ovf_mu);
	return rc;
}

int mxs_sink_put(struct mxs_sink *s, const char *line, size_t len)
{
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	atomic_fetch_add(&s->put_lines, 1);
	if (is_result_line(line, len))
		atomic_fetch_add(&s->put_results, 1);
	enum lineq_push r = lineq_push(s->q, line, len, s->o.block_when_full);
	if (r == LINEQ_OK || (r == LINEQ_FULL && overflow(s, line, len) == 0))
		return 0;
	mxs_err("ingest", "line lost reason=%s bytes=%zu", lineq_push_names[r], len);
	atomic_store(&s->put_lost, 1);
	return -1;
}

int mxs_sink_close(struct mxs_sink *s, struct mxs_sink_counts *out)
{
	struct mxs_sink_counts k = { 0 };
	lineq_close(s->q);
	pthread_join(s->thread, NULL);
	k.put_lines = atomic_load(&s->put_lines);
	k.put_results = atomic_load(&s->put_results);
	k.results = s->bc.results;
	k.results_new = s->bc.results_new;
	k.results_replaced = s->bc.results_replaced;
	k.domains = s->bc.domains;
	k.domains_new = s->bc.domains_new;
	k.certs_new = s->bc.certs_new;
	k.rejects = s->bc.rejects;
	k.spooled = s->spooled + s->ovf_lines;
	k.replayed = s->replayed;
	k.reconnects = s->reconnects;
	k.spool_left = spool_pending_lines(s->spool_dir, s->instance);
	int rc = s->lost || atomic_load(&s->put_lost) ? -1 : k.spool_left > 0 ? 1 : 0;
	if (out != NULL)
		*out = k;
	sink_free(s);
	return rc;
}
