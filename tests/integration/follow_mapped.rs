//! `copy --follow` of tables with column mappings: changed rows take the same read, filter and
//! transform as copied rows. The oracle is a bulk copy of the source, made after cutover with
//! the same job file into a second database: the followed target must hold exactly its rows,
//! rejects included, whatever moved in and out of the filter, into and out of rejects, or
//! changed only columns beside an unchanged TOASTed one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::{Cluster, ClusterDb};
use crate::support::{assert_success, describe, job_file, Howdah, TestDb};

const SCHEMA: &str = "
    CREATE TABLE orders (
      id bigint PRIMARY KEY,
      total numeric(12,4) NOT NULL,
      flag text,
      created timestamp,
      note varchar(20),
      qty text,
      secret text,
      code text,
      ratio double precision,
      doc text
    );
    CREATE TABLE readings (station text, reading text, at timestamp);
    ALTER TABLE readings REPLICA IDENTITY FULL;
    CREATE TABLE plain (id int PRIMARY KEY, v text);
    CREATE FUNCTION big(seed bigint) RETURNS text LANGUAGE sql AS
      $$ SELECT string_agg(md5(seed::text || ':' || g), '') FROM generate_series(1, 400) g $$;
    INSERT INTO orders
    SELECT i, i * 1.23455, CASE i % 3 WHEN 0 THEN 'Y' WHEN 1 THEN 'N' ELSE 'maybe' END,
           timestamp '2020-10-25 00:30' + i * interval '1 hour',
           CASE WHEN i % 5 = 0 THEN '  padded  ' ELSE 'n' || i END,
           CASE WHEN i % 97 = 0 THEN 'bad' ELSE (i % 100)::text END,
           's3cret', CASE WHEN i % 4 = 0 THEN '' WHEN i % 4 = 1 THEN NULL ELSE 'c' END,
           i + 0.5, CASE WHEN i % 40 = 0 THEN big(i) END
    FROM generate_series(1, 20000) AS i;
    INSERT INTO readings SELECT 'st' || (g % 10), (g % 50)::text, timestamp '2024-01-01' + g * interval '1 min'
      FROM generate_series(1, 3000) g;
    INSERT INTO plain SELECT g, 'p' || g FROM generate_series(1, 500) g;
";

const JOB: &str = r#"
[[table]]
name = "public.orders"
target = "sales.orders_v2"
exclude_columns = ["secret"]
where = "(id < 40000 OR id > 100000) AND coalesce(note, '') <> 'hide'"

[[table.column]]
name = "total"
rename = "amount"
type = "numeric(14,2)"

[[table.column]]
name = "flag"
type = "boolean"
map = { Y = true, N = false }
on_error = "null"

[[table.column]]
name = "created"
type = "timestamptz"
zone = "Europe/Paris"

[[table.column]]
name = "note"
trim = true

[[table.column]]
name = "qty"
type = "integer"

[[table.column]]
name = "code"
empty_as_null = true
default = "${job}"

[[table.column]]
name = "ratio"
type = "bigint"

[[table.add_column]]
name = "origin"
type = "text"
value = "legacy-${job}"
not_null = true

[[table]]
name = "public.readings"
target = "sales.readings"

[[table.column]]
name = "reading"
type = "integer"
on_error = "null"
"#;

/// One writer round: every kind of change a mapped table can see, in one transaction with an
/// unmapped table's (order across tables).
fn round(n: u64) -> String {
    let a = (n * 13) % 20000 + 1;
    let b = (n * 31) % 20000 + 1;
    let c = (n * 7) % 500 + 1;
    let d = (n * 41) % 20000 + 1;
    format!(
        "BEGIN;
         INSERT INTO orders VALUES ({new}, {n}.5, CASE WHEN {n} % 2 = 0 THEN 'Y' ELSE 'perhaps' END,
           timestamp '2021-03-28 01:30' + {n} * interval '1 minute', '  new {n}  ',
           CASE WHEN {n} % 5 = 0 THEN 'bad' ELSE '{n}' END, 'x', CASE WHEN {n} % 3 = 0 THEN '' END,
           {n} * 1.5, CASE WHEN {n} % 4 = 0 THEN big({n}) END);
         UPDATE plain SET v = v || '+' WHERE id = {c};
         -- Values into and out of rejects, and out of and back into the filter.
         UPDATE orders SET qty = CASE WHEN qty = 'bad' THEN '7' ELSE 'bad' END WHERE id = {a};
         UPDATE orders SET note = CASE WHEN note = 'hide' THEN 'shown' ELSE 'hide' END WHERE id = {b};
         -- Only columns beside the TOASTed doc (left unchanged, so not sent).
         UPDATE orders SET flag = 'N', ratio = ratio + 1
           WHERE id = (SELECT id FROM orders WHERE doc IS NOT NULL ORDER BY id OFFSET ({n} * 3) % 400 LIMIT 1);
         -- A key moved out of the filter, another moved in.
         UPDATE orders SET id = id + 40000 WHERE id = {d};
         UPDATE orders SET id = {n} + 25000 WHERE id = (SELECT min(id) FROM orders WHERE id BETWEEN 40001 AND 60000);
         DELETE FROM orders WHERE id = ({n} * 17) % 20000 + 1;
         INSERT INTO readings VALUES ('w', CASE WHEN {n} % 3 = 0 THEN 'n/a' ELSE '{n}' END, now()::timestamp(0));
         UPDATE readings SET reading = reading || '0' WHERE ctid = (SELECT ctid FROM readings WHERE at = timestamp '2024-01-01' + ({n} % 3000 + 1) * interval '1 min' LIMIT 1);
         DELETE FROM readings WHERE ctid = (SELECT ctid FROM readings WHERE station = 'st{s}' LIMIT 1);
         INSERT INTO plain VALUES (1000 + {n}, 'w');
         COMMIT;",
        new = 100000 + n,
        s = n % 10,
    )
}

fn writer(url: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    crate::follow::pg_writer(url, stop, round)
}

fn wait_phase(dst: &TestDb, job: &str, phase: &str, timeout: Duration) {
    crate::support::wait_follow_phase(&dst.url(), job, phase, timeout);
}

fn sorted(db: &TestDb, sql: &str) -> Vec<String> {
    let mut rows: Vec<String> = db.query(sql).lines().map(str::to_string).collect();
    rows.sort_unstable();
    rows
}

fn assert_same(a: &TestDb, b: &TestDb, sql: &str) {
    let (x, y) = (sorted(a, sql), sorted(b, sql));
    if x == y {
        return;
    }
    let only_x: Vec<&String> = x
        .iter()
        .filter(|r| y.binary_search(r).is_err())
        .take(8)
        .collect();
    let only_y: Vec<&String> = y
        .iter()
        .filter(|r| x.binary_search(r).is_err())
        .take(8)
        .collect();
    panic!(
        "rows differ for {sql} ({} followed, {} copied): only followed {only_x:?}, only copied \
         {only_y:?} (or the same rows a different number of times)",
        x.len(),
        y.len()
    );
}

fn kill9(child: &mut std::process::Child) {
    crate::support::kill9(child);
}

fn follow(src: &ClusterDb, dst: &TestDb, job: &str) -> Howdah {
    Howdah::copy(&src.url(), &dst.url()).args([
        "--follow",
        "--config",
        job,
        "--job",
        "m",
        "-j",
        "2",
        "--chunk-rows",
        "4000",
    ])
}

#[test]
fn mapped_tables_follow_with_the_copy_transform() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SCHEMA);
    let dst = TestDb::new("follow_map");
    dst.exec("CREATE SCHEMA sales");
    let job = job_file("follow_map", JOB);
    let stop = Arc::new(AtomicBool::new(false));
    let w = writer(src.url(), stop.clone());
    let mut child = follow(&src, &dst, &job).spawn();
    wait_phase(&dst, "m", "follow", Duration::from_secs(120));
    std::thread::sleep(Duration::from_secs(2));
    // A follower killed while applying resumes from its committed position.
    kill9(&mut child);
    std::thread::sleep(Duration::from_secs(1));
    let child = follow(&src, &dst, &job).spawn();
    wait_phase(&dst, "m", "follow", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let rounds = w.join().expect("writer");
    assert!(rounds > 20, "the writer ran only {rounds} rounds");
    let out = Howdah::new("cutover")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--job",
            "m",
            "--timeout",
            "90",
        ])
        .run();
    assert_success(&out, "cutover");
    let out = child.wait_with_output().expect("wait for copy --follow");
    assert_success(&out, "copy --follow");

    // The oracle: the source copied now, in bulk, with the same job file.
    let oracle = TestDb::new("follow_map_oracle");
    oracle.exec("CREATE SCHEMA sales");
    let out = Howdah::copy(&src.url(), &oracle.url())
        .args(["--config", &job, "--job", "m"])
        .run();
    assert_success(&out, "oracle copy");
    assert_same(
        &dst,
        &oracle,
        "SELECT id, amount, flag, created, note, qty, code, ratio, md5(doc), origin FROM sales.orders_v2",
    );
    assert_same(
        &dst,
        &oracle,
        "SELECT station, reading, at FROM sales.readings",
    );
    assert_same(&dst, &oracle, "SELECT id, v FROM plain");
    // Every row the bulk copy rejects now was rejected on the way, with the same reason.
    let rejects =
        "SELECT key, column_name, reason FROM howdah.rejects WHERE table_name = 'sales.orders_v2'";
    let followed = sorted(&dst, rejects);
    let missing: Vec<String> = sorted(&oracle, rejects)
        .into_iter()
        .filter(|r| !followed.contains(r))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "rejects not recorded by the follow: {missing:?}"
    );
    // The changes reached every path: moved in, rejected after insert.
    assert_ne!(
        oracle.query("SELECT count(*) FROM sales.orders_v2 WHERE id > 25000"),
        "0"
    );
    assert!(
        followed.iter().any(|r| r
            .split('|')
            .next()
            .and_then(|k| k.strip_prefix("id="))
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v > 100000)),
        "no reject of a row inserted while following: {followed:?}"
    );
    eprintln!("{}", describe(&out));
    assert_eq!(src.query("SELECT count(*) FROM pg_replication_slots"), "0");
}

const SMALL: &str = "
    CREATE TABLE m (id int PRIMARY KEY, v text);
    INSERT INTO m SELECT g, '  v' || g || '  ' FROM generate_series(1, 100) g;
";

const SMALL_JOB: &str = r#"
[[table]]
name = "public.m"
[[table.column]]
name = "v"
trim = true
"#;

#[test]
fn a_schema_change_keeps_the_mapped_changes_before_it() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SMALL);
    let dst = TestDb::new("follow_map_ddl");
    let job = job_file("follow_map_ddl", SMALL_JOB);
    let child = follow(&src, &dst, &job).spawn();
    wait_phase(&dst, "m", "follow", Duration::from_secs(90));
    // The follower reads the source's catalog after it enters the phase: the ALTER must come
    // after that, or it starts with the new shape and stops before the first insert (it
    // failed that way once in a full run). A change applied shows it has read it.
    src.exec("INSERT INTO m VALUES (1000, 'marker')");
    dst.wait_for(
        "SELECT count(*) FROM m WHERE id = 1000",
        "1",
        Duration::from_secs(60),
        "the follower applied nothing",
    );
    // Three transactions within one apply batch: a mapped insert, then a column added, then a
    // change that shows the new shape. The first must be applied, the last must stop the apply.
    src.exec(
        "BEGIN; INSERT INTO m VALUES (1001, '  before  '); COMMIT;
         BEGIN; ALTER TABLE m ADD COLUMN w int; COMMIT;
         BEGIN; INSERT INTO m VALUES (1002, 'after', 1); COMMIT;",
    );
    let out = child.wait_with_output().expect("wait for copy --follow");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public.m") && err.contains("w"),
        "{}",
        describe(&out)
    );
    assert_eq!(dst.query("SELECT v FROM m WHERE id = 1001"), "before");
    assert_eq!(dst.query("SELECT count(*) FROM m WHERE id = 1002"), "0");
}

#[test]
fn following_without_the_copy_job_file_is_refused() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SMALL);
    let dst = TestDb::new("follow_map_nojob");
    let job = job_file("follow_map_nojob", SMALL_JOB);
    let mut child = follow(&src, &dst, &job).spawn();
    wait_phase(&dst, "m", "follow", Duration::from_secs(90));
    kill9(&mut child);
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--follow", "--job", "m"])
        .run();
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("other column mappings") && err.contains("--config"),
        "{}",
        describe(&out)
    );
    // With the job file it follows again, and cutover ends it.
    let child = follow(&src, &dst, &job).spawn();
    src.exec("UPDATE m SET v = '  x  ' WHERE id = 5");
    let out = Howdah::new("cutover")
        .args([
            "--source",
            &src.url(),
            "--target",
            &dst.url(),
            "--job",
            "m",
            "--config",
            &job,
            "--verify",
        ])
        .run();
    assert_success(&out, "cutover --verify");
    assert_success(
        &child.wait_with_output().expect("wait for copy --follow"),
        "copy --follow",
    );
    assert_eq!(dst.query("SELECT v FROM m WHERE id = 5"), "x");
}

/// A source whose `synchronous_standby_names` names the follower would make each wait for
/// the other: its commits wait for the follower's confirmation, while the follower waits to
/// see them before it reads a mapped row the change left out (on fd2e623 each lookup gave up
/// after 30 s, again and again). The follower refuses to start, naming the setting.
#[test]
fn a_source_that_waits_for_the_follower_as_a_synchronous_standby_is_refused() {
    let cluster = Cluster::logical();
    let src = cluster.db("src");
    src.exec(SMALL);
    let dst = TestDb::new("follow_map_sync");
    let job = job_file("follow_map_sync", SMALL_JOB);
    let mut child = follow(&src, &dst, &job).spawn();
    wait_phase(&dst, "m", "follow", Duration::from_secs(90));
    kill9(&mut child);
    src.exec("ALTER SYSTEM SET synchronous_standby_names = 'FIRST 1 (standby1, \"howdah/m\")'");
    src.exec("SELECT pg_reload_conf()");
    let out = follow(&src, &dst, &job).run();
    src.exec("ALTER SYSTEM RESET synchronous_standby_names");
    src.exec("SELECT pg_reload_conf()");
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("synchronous_standby_names") && err.contains("howdah/m"),
        "{}",
        describe(&out)
    );
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("synchronous_standby_names"),
        "status does not say why the job has no follower: {}",
        describe(&status)
    );
}
