-- Shards: several scanners (--shard I/N) fill one scan. Each records its own progress
-- here; the scan is done when every shard of it is.
CREATE TABLE scan_shards (
	scan_id      bigint NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
	shard_index  integer NOT NULL,
	shard_count  integer NOT NULL CHECK (shard_count > 0 AND shard_index >= 0 AND shard_index < shard_count),
	state        text NOT NULL DEFAULT 'running',
	started_at   timestamptz NOT NULL DEFAULT now(),
	ended_at     timestamptz,
	targets_read bigint,
	runs         integer NOT NULL DEFAULT 1,   -- 2 and more: the shard was resumed
	PRIMARY KEY (scan_id, shard_count, shard_index)
);

-- Shards of one scan start together: serialise the creation of its partitions, since
-- CREATE TABLE IF NOT EXISTS is not safe against a concurrent twin ("already exists").
CREATE OR REPLACE FUNCTION mxs_scan_partitions(p_scan bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_advisory_xact_lock(28024, p_scan::integer);  -- 28024: 'mx', this function's key
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF results FOR VALUES IN (%s)',
	               'results_s' || p_scan, p_scan);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF domains FOR VALUES IN (%s)',
	               'domains_s' || p_scan, p_scan);
	EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF domain_mx FOR VALUES IN (%s)',
	               'domain_mx_s' || p_scan, p_scan);
END $$;
