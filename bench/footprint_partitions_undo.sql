-- Undoes bench/footprint_partitions.sql: the plain footprint index is the
-- registry's again and the partitioned copy is dropped.
\set ON_ERROR_STOP on
BEGIN;
DROP TABLE footprint_cell;
ALTER TABLE footprint_cell_plain RENAME TO footprint_cell;
COMMIT;
