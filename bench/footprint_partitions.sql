-- The partitioning experiment of docs/deployment.md ("Sizing"): a copy of
-- a PostgreSQL registry's footprint index (footprint_cell) partitioned by
-- HEALPix cell range, one partition per cell of order :order (NESTED: the
-- index's cells of order 9 under one cell of order k are the range
-- [c << 2(9-k), (c+1) << 2(9-k))), which then takes the place of the plain
-- table so that bench_sia and bench_tap run on it unchanged:
--
--   psql URL-of-the-bench-database -v order=4 -f bench/footprint_partitions.sql
--   build/bench/bench_sia --rows 10000000 --backend postgresql --keep --dir DIR --postgresql-url URL --no-scan
--   psql URL-of-the-bench-database -f bench/footprint_partitions_undo.sql
--
-- The index order of the registry must be 9 (the default; registry_meta
-- says). Needs the disk of the index's table and primary key once more.
\set ON_ERROR_STOP on
SELECT 2 * (9 - :order) AS shift \gset

CREATE TABLE footprint_cell_part (
  cell        BIGINT NOT NULL,
  dataset_key BIGINT NOT NULL,
  PRIMARY KEY (cell, dataset_key)
) PARTITION BY RANGE (cell);

-- One partition per cell of order :order that holds rows.
SELECT format('CREATE TABLE footprint_cell_p%s PARTITION OF footprint_cell_part FOR VALUES FROM (%s) TO (%s)',
              p, p << :shift, (p + 1) << :shift)
FROM (SELECT DISTINCT cell >> :shift AS p FROM footprint_cell) AS parents ORDER BY p \gexec

\timing on
INSERT INTO footprint_cell_part SELECT cell, dataset_key FROM footprint_cell ORDER BY cell, dataset_key;
VACUUM (ANALYZE) footprint_cell_part;
\timing off

-- Swap: the partitioned copy becomes the registry's index.
BEGIN;
ALTER TABLE footprint_cell RENAME TO footprint_cell_plain;
ALTER TABLE footprint_cell_part RENAME TO footprint_cell;
COMMIT;
SELECT count(*) AS partitions FROM pg_inherits WHERE inhparent = 'footprint_cell'::regclass;
