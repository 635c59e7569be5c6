#!/usr/bin/env bash
# MySQL/MariaDB benchmark dataset: (re)creates one MariaDB database holding
# one table `t` of 2,000,000 rows and ~530 MiB of InnoDB data (data_length)
# with mixed types, for benches/mysql.sh.
#
#   benches/mysql_dataset.sh
#
# The data is deterministic: every value is derived from the row number
# (MariaDB's SEQUENCE engine, seq_1_to_N) through md5, crc32 or arithmetic,
# never RAND().  A few rows hold the zero date '0000-00-00' in the nullable
# DATE column `ship_date` (loaded with sql_mode = '' in this session only).
#
# Environment:
#   BENCH_MY_DB      database name (howdah_bench_my); DROPPED and recreated,
#                    so it must match ^howdah_bench[a-z0-9_]*$
#   BENCH_MY_ROWS    rows (2000000)
#   MYSQL_HOST / MYSQL_PORT / MYSQL_USER   server (127.0.0.1 / 3306 / root,
#                    password from MYSQL_PWD, empty by default)
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
    exit 0
fi

DB="${BENCH_MY_DB:-howdah_bench_my}"
ROWS="${BENCH_MY_ROWS:-2000000}"
MY_HOST="${MYSQL_HOST:-127.0.0.1}"
MY_PORT="${MYSQL_PORT:-3306}"
MY_USER="${MYSQL_USER:-root}"
# Rows per INSERT ... SELECT (one transaction each).
BATCH=500000

if [[ ! "${DB}" =~ ^howdah_bench[a-z0-9_]*$ ]]; then
    echo "mysql_dataset.sh: refusing to use database '${DB}': name must match ^howdah_bench[a-z0-9_]*\$" >&2
    exit 2
fi
if [[ ! "${ROWS}" =~ ^[1-9][0-9]*$ ]]; then
    echo "mysql_dataset.sh: BENCH_MY_ROWS must be a positive integer" >&2
    exit 2
fi

log() { printf '[mysql_dataset %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
my() {
    mariadb --protocol=tcp -h "${MY_HOST}" -P "${MY_PORT}" -u "${MY_USER}" --batch --skip-column-names "$@"
}

t0=$(date +%s.%N)
log "recreating ${DB} on ${MY_HOST}:${MY_PORT}"
my <<SQL
DROP DATABASE IF EXISTS \`${DB}\`;
CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
USE \`${DB}\`;
CREATE TABLE t (
  id          bigint NOT NULL AUTO_INCREMENT,
  account     int NOT NULL,
  name        varchar(64) NOT NULL,
  body        text NULL,
  amount      decimal(14,4) NOT NULL,
  created_at  datetime NOT NULL,
  ship_date   date NULL,
  updated_at  timestamp NULL DEFAULT NULL,
  active      tinyint(1) NOT NULL,
  status      enum('new','paid','shipped','cancelled','returned') NOT NULL,
  score       double NULL,
  attrs       json NULL,
  city        varchar(40) CHARACTER SET latin1 NULL,
  note        varchar(100) NULL,
  PRIMARY KEY (id),
  KEY t_account (account)
) ENGINE=InnoDB;
SQL

# Values, all from the row number s:
#   body       NULL every 17th row, else 40-179 characters of md5 hex
#   ship_date  '0000-00-00' when s % 100000 = 50000 (ROWS/100000 rows), NULL every 10th row
#   updated_at NULL every 7th row; score NULL every 11th; attrs NULL every 5th;
#   city       NULL every 13th, else one of six names with non-ASCII letters (latin1)
#   note       NULL every 4th row
insert_batch() {
    local from=$1 n=$2
    my "${DB}" <<SQL
SET SESSION sql_mode = '';
SET SESSION unique_checks = 0;
SET SESSION time_zone = '+00:00';
INSERT INTO t
SELECT s,
  crc32(s) % 100000,
  concat('customer-', md5(s)),
  CASE WHEN s % 17 = 0 THEN NULL
       ELSE left(repeat(concat(md5(s), ' ', md5(s + 7), ' '), 4), 40 + crc32(s + 1) % 140) END,
  (crc32(s + 2) % 1000000000) / 100 - 1000000,
  TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (s * 47) SECOND,
  CASE WHEN s % 100000 = 50000 THEN '0000-00-00'
       WHEN s % 10 = 3 THEN NULL
       ELSE DATE '2019-01-01' + INTERVAL (s % 3000) DAY END,
  CASE WHEN s % 7 = 0 THEN NULL ELSE from_unixtime(1500000000 + s * 31) END,
  s % 3 = 0,
  1 + s % 5,
  CASE WHEN s % 11 = 0 THEN NULL ELSE sqrt(s) * 1.25e0 END,
  CASE WHEN s % 5 = 0 THEN NULL
       ELSE json_object('k', s % 1000, 'tag', substr(md5(s), 1, 8), 'ok', s % 2 = 0) END,
  CASE WHEN s % 13 = 0 THEN NULL
       ELSE elt(1 + s % 6, 'München', 'Zürich', 'Besançon', 'Malmö', 'Reykjavík', 'Paris') END,
  CASE WHEN s % 4 = 0 THEN NULL ELSE concat('note ', s) END
FROM (SELECT seq + ${from} - 1 AS s FROM seq_1_to_${n}) g;
SQL
}

done_rows=0
while ((done_rows < ROWS)); do
    n=$((ROWS - done_rows))
    ((n > BATCH)) && n=${BATCH}
    log "rows $((done_rows + 1))..$((done_rows + n))"
    insert_batch "$((done_rows + 1))" "${n}"
    done_rows=$((done_rows + n))
done

my "${DB}" -e "ANALYZE TABLE t" >/dev/null
read -r rows zero data_len index_len < <(my "${DB}" -e "
SELECT (SELECT count(*) FROM t),
       (SELECT count(*) FROM t WHERE ship_date = '0000-00-00'),
       data_length, index_length
FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 't'")
t1=$(date +%s.%N)
log "$(awk -v r="${rows}" -v z="${zero}" -v d="${data_len}" -v i="${index_len}" -v a="${t0}" -v b="${t1}" 'BEGIN {
    printf "done in %.0f s: t has %d rows (%d zero dates), data_length %d bytes (%.0f MiB), index_length %.0f MiB",
        b - a, r, z, d, d / 1048576, i / 1048576 }')"
