#include "dbout.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "exitcode.h"
#include "log.h"

const char *dbout_url(const char *arg)
{
	return arg == NULL || strcmp(arg, "auto") == 0 ? NULL : arg;
}

int dbout_open(struct dbout *d, const struct dbout_opts *o, char *err, size_t errlen)
{
	struct mxs_db_opts dbo = { .url = o->url, .data_dir = o->data_dir };
	struct mxs_scan_info info = {
		.command_line = o->command_line,
		.ehlo_name = o->ehlo_name,
		.profile = o->profile,
		.label = o->label,
	};
	struct mxs_sink_opts so = { .block_when_full = 0 };

	memset(d, 0, sizeof(*d));
	if (mxs_db_open(&dbo, &d->db, err, errlen) < 0)
		return -1;
	if (o->resume_id > 0) {
		d->scan_id = o->resume_id;
		if (mxs_scan_resume(d->db, d->scan_id, err, errlen) < 0)
			goto fail;
	} else if (o->label != NULL) {
		int created = 0;
		if (mxs_scan_find_or_create(d->db, &info, &d->scan_id, &created, err, errlen) < 0)
			goto fail;
		if (!created)
			mxs_info("db", "scan label '%s' exists: continuing scan %" PRId64, o->label, d->scan_id);
	} else if (mxs_scan_create(d->db, &info, &d->scan_id, err, errlen) < 0) {
		goto fail;
	}
	d->shard_index = o->shard_index;
	d->shard_count = o->shard_count > 1 ? o->shard_count : 1;
	if (d->shard_count > 1 &&
	    mxs_scan_shard_begin(d->db, d->scan_id, d->shard_index, d->shard_count, err, errlen) < 0)
		goto fail;
	d->sink = mxs_sink_open(d->db, d->scan_id, &so, err, errlen);
	if (d->sink == NULL)
		goto fail;
	mxs_info("db", "scan %" PRId64 " on %s", d->scan_id,
		 *mxs_db_conninfo(d->db) ? "the given database" : "the environment's database");
	return 0;
fail:
	mxs_db_close(d->db);
	d->db = NULL;
	return -1;
}

int dbout_put(struct dbout *d, const char *line, size_t len)
{
	if (mxs_sink_put(d->sink, line, len) < 0) {
		if (!d->put_failed)
			mxs_err("db", "a result could be neither queued nor spooled");
		d->put_failed = true;
		return -1;
	}
	return 0;
}

/*
 * A shard ends: record its progress; the last shard to finish finishes the scan, and
 * only then can targets read be set against rows stored.
 */
static int finish_shard(struct dbout *d, enum mxs_scan_state state, uint64_t targets_scanned,
			const struct mxs_sink_counts *c, int rc)
{
	struct mxs_shard_progress pr = { 0 };
	struct mxs_scan_totals t = { 0 };
	char err[512];

	/* The shard's targets: those this run scanned plus those done before a resume. */
	if (mxs_scan_shard_finish(d->db, d->scan_id, d->shard_index, d->shard_count, state,
				  targets_scanned + d->resumed_done, &pr, err, sizeof(err)) < 0) {
		mxs_err("db", "cannot record shard %u/%u of scan %" PRId64 ": %s", d->shard_index,
			d->shard_count, d->scan_id, err);
		return rc == MXS_EXIT_OK ? MXS_EXIT_SPOOLED : rc;
	}
	fprintf(stderr, "db: scan %" PRId64 " shard %u/%u: %" PRIu64 " targets read, %" PRIu64
		" result lines sent; %u of %u shards done\n", d->scan_id, d->shard_index,
		d->shard_count, targets_scanned + d->resumed_done, c->results, pr.shards_done,
		d->shard_count);
	if (pr.all_done || state != MXS_SCAN_DONE) {
		if (mxs_scan_finish(d->db, d->scan_id, pr.all_done ? MXS_SCAN_DONE : state,
				    pr.targets_read, &t, err, sizeof(err)) < 0) {
			mxs_err("db", "cannot finish scan %" PRId64 ": %s", d->scan_id, err);
			return rc == MXS_EXIT_OK ? MXS_EXIT_SPOOLED : rc;
		}
		if (pr.all_done)
			fprintf(stderr, "db: scan %" PRId64 ": all %u shards done: %" PRIu64
				" targets read, %" PRIu64 " result rows stored\n", d->scan_id,
				d->shard_count, pr.targets_read, t.results);
		mxs_scan_rollup(d->db, d->scan_id);
	}
	return rc;
}

int dbout_finish(struct dbout *d, enum mxs_scan_state state, uint64_t targets_scanned)
{
	struct mxs_sink_counts c = { 0 };
	struct mxs_scan_totals t = { 0 };
	char err[512];
	int sr = mxs_sink_close(d->sink, &c), rc = MXS_EXIT_OK;
	bool finished = false, stored_ok = true;

	d->sink = NULL;
	if (sr < 0 || d->put_failed) {
		rc = MXS_EXIT_DB;
		if (state == MXS_SCAN_DONE)
			state = MXS_SCAN_FAILED;
	} else if (sr > 0) {
		rc = MXS_EXIT_SPOOLED;
		if (state == MXS_SCAN_DONE)
			state = MXS_SCAN_PARTIAL;
	}
	if (d->shard_count > 1)
		return finish_shard(d, state, targets_scanned, &c, rc);
	if (mxs_scan_finish(d->db, d->scan_id, state, targets_scanned + d->resumed_done, &t, err,
			    sizeof(err)) < 0) {
		mxs_err("db", "cannot finish scan %" PRId64 ": %s", d->scan_id, err);
		if (rc == MXS_EXIT_OK)
			rc = MXS_EXIT_SPOOLED;
	} else {
		finished = true;
		mxs_scan_rollup(d->db, d->scan_id);
	}
	/*
	 * A scan that could not be finished is counted apart; with the database still away,
	 * what this run's commits confirmed is a floor (never a 0 that hides stored rows).
	 */
	bool counted = finished || mxs_scan_counts(d->db, d->scan_id, &t.results, &t.domains,
						   &t.rejects, err, sizeof(err)) == 0;
	if (counted)
		fprintf(stderr, "db: scan %" PRId64 ": %" PRIu64 " targets read, %" PRIu64
			" result rows stored", d->scan_id, targets_scanned + d->resumed_done, t.results);
	else
		fprintf(stderr, "db: scan %" PRId64 ": %" PRIu64 " targets read, at least %" PRIu64
			" result rows stored (committed by this run; the database cannot count them now)",
			d->scan_id, targets_scanned + d->resumed_done, c.results_new + c.results_replaced);
	stored_ok = t.results + t.rejects >= targets_scanned + d->resumed_done;
	if (c.domains && counted)
		fprintf(stderr, ", %" PRIu64 " domain rows", t.domains);
	if (c.spooled)
		fprintf(stderr, ", %" PRIu64 " spooled (%" PRIu64 " replayed, %" PRIu64 " still waiting)",
			c.spooled, c.replayed, c.spool_left);
	if (t.rejects)
		fprintf(stderr, ", %" PRIu64 " rejected lines", t.rejects);
	fprintf(stderr, "\n");
	/*
	 * Every target read must have its row. A run that ends with nothing spooled and
	 * fewer rows says so, and the scan is left partial for a resume to finish.
	 */
	if (rc == MXS_EXIT_OK && state == MXS_SCAN_DONE && finished && !stored_ok) {
		uint64_t want = targets_scanned + d->resumed_done;
		mxs_err("db", "scan %" PRId64 ": %" PRIu64 " of %" PRIu64 " targets read have no row;"
			" run again with --resume to store them", d->scan_id,
			want - t.results - t.rejects, want);
		if (mxs_scan_finish(d->db, d->scan_id, MXS_SCAN_PARTIAL, want, NULL, err, sizeof(err)) < 0)
			mxs_err("db", "cannot mark scan %" PRId64 " partial: %s", d->scan_id, err);
		rc = MXS_EXIT_FAILURE;
	}
	return rc;
}

void dbout_free(struct dbout *d)
{
	if (d->sink != NULL)
		mxs_sink_close(d->sink, NULL);
	d->sink = NULL;
	mxs_db_close(d->db);
	d->db = NULL;
}
