//! A table without a key, cut into `ctid` block ranges, resumed after the source changed: the
//! resumed ranges are read in a new snapshot, where an updated row's new version may sit in
//! a range already copied (the row was lost) or a range already copied may have held its old
//! version (the row was copied twice). The resumed copy must equal the source.

use std::time::Duration;

use crate::held;
use crate::proxy::Proxy;
use crate::support::{assert_same, assert_success, describe, Howdah, TestDb};

const NOKEY: &str = "CREATE TABLE nokey (a int, b text);";

/// The first block after the first range of `nokey` on the target's plan.
fn chunk0_end(dst: &TestDb) -> i64 {
    dst.query(
        "SELECT end_block FROM howdah.chunks WHERE table_name = 'public.nokey' AND chunk_no = 0",
    )
    .parse()
    .expect("chunk 0 is a block range")
}

/// The block of row `a` of `nokey` on the source.
fn block_of(src: &TestDb, a: i32) -> i64 {
    src.query(&format!(
        "SELECT (ctid::text::point)[0]::bigint FROM ONLY nokey WHERE a = {a}"
    ))
    .parse()
    .expect("a block number")
}

/// Copies `src` into `dst` (created by `target_ddl`) with block ranges of 70,000 rows, kills
/// the copy once the first range of `nokey` is committed, runs `change` on the source (with
/// the first block after that range), resumes, and returns the resumed run's stderr after
/// checking that `nokey` on the target equals the source.
fn kill_change_resume(
    src: &TestDb,
    target_ddl: &str,
    change: impl FnOnce(&TestDb, i64),
) -> (TestDb, String) {
    let dst = TestDb::new("nokey_dst");
    dst.exec(target_ddl);
    let first_done = "EXISTS (SELECT 1 FROM howdah.chunks WHERE table_name = 'public.nokey' AND status = 'done')";
    held::install(&dst, "nokey", first_done);
    let args = ["--jobs", "1", "--chunk-rows", "70000"];
    let mut first = held::spawn_copy(src, &dst, &args);
    held::wait_for(
        &dst,
        &format!("SELECT {first_done}"),
        &mut first,
        Duration::from_secs(120),
    );
    held::kill(&mut first, &dst, "nokey");
    assert_eq!(
        dst.query(
            "SELECT count(*) > 1, count(*) FILTER (WHERE status = 'done') FROM howdah.chunks \
             WHERE table_name = 'public.nokey'"
        ),
        "t|1",
        "block ranges, the first one copied"
    );
    change(src, chunk0_end(&dst));
    let out = held::spawn_copy(src, &dst, &args)
        .wait_with_output()
        .expect("wait for the resumed copy");
    assert!(out.status.success(), "resume failed\n{}", describe(&out));
    assert_same(src, &dst, "SELECT a, b FROM ONLY nokey");
    (dst, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn source(tag: &str, free_space_in_first_range: bool) -> TestDb {
    let src = TestDb::new(tag);
    src.exec(&format!(
        "{NOKEY}
         INSERT INTO nokey SELECT g, repeat(md5(g::text), 3) FROM generate_series(1, 200000) g;"
    ));
    src.exec("VACUUM ANALYZE nokey");
    if free_space_in_first_range {
        src.exec("DELETE FROM nokey WHERE a BETWEEN 100 AND 160");
        src.exec("VACUUM nokey");
    }
    src
}

#[test]
fn a_row_moved_into_a_copied_block_range_is_not_lost_on_resume() {
    let src = source("nokey_loss", true);
    let (_, log) = kill_change_resume(&src, NOKEY, |src, end| {
        assert!(
            block_of(src, 150_000) >= end,
            "row 150000 starts in a later range"
        );
        src.exec("UPDATE nokey SET b = b || repeat('z', 300) WHERE a = 150000");
        assert!(
            block_of(src, 150_000) < end,
            "the update must move the row into the copied range for this test to mean anything"
        );
    });
    assert!(
        log.contains(
            "public.nokey: 1 of its 3 block ranges were copied in a snapshot that is gone"
        ),
        "the resumed run says why it copies the table again\n{log}"
    );
}

#[test]
fn a_row_moved_out_of_a_copied_block_range_is_not_copied_twice_on_resume() {
    let src = source("nokey_dup", false);
    kill_change_resume(&src, NOKEY, |src, end| {
        assert!(block_of(src, 9) < end, "row 9 starts in the copied range");
        src.exec(
            "UPDATE nokey SET b = (SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 45))
             WHERE a = 9",
        );
        assert!(
            block_of(src, 9) >= end,
            "the update must move the row out of the copied range for this test to mean anything"
        );
    });
}

/// A table started over deletes only its own rows: not those of its inheritance children
/// (nor of other partitions), which are other tables of the copy, maybe already copied.
#[test]
fn starting_a_table_over_keeps_the_rows_of_its_children() {
    let src = source("nokey_inh", true);
    // Bigger than its parent, so it is copied first, whole.
    let child = "CREATE TABLE nokey_child (c int) INHERITS (nokey);";
    src.exec(child);
    src.exec(
        "INSERT INTO nokey_child SELECT -g, repeat(md5(g::text), 31), g FROM generate_series(1, 30000) g",
    );
    src.exec("VACUUM ANALYZE nokey_child");
    let (dst, log) = kill_change_resume(&src, &format!("{NOKEY} {child}"), |src, end| {
        src.exec("UPDATE ONLY nokey SET b = b || repeat('z', 300) WHERE a = 150000");
        assert!(
            block_of(src, 150_000) < end,
            "the row moves into the copied range"
        );
    });
    assert!(log.contains("public.nokey: 1 of its"), "{log}");
    assert_same(&src, &dst, "SELECT a, b, c FROM nokey_child");
}

/// Every connection cut mid-COPY, the one holding the run's snapshot included, while the
/// source keeps moving rows between blocks: retried lanes read in new snapshots, and the
/// table still ends with every row exactly once (each snapshot holds rows 1..200000 once).
#[test]
fn block_ranges_retried_in_new_snapshots_keep_every_row_once() {
    use std::process::{Command, Stdio};
    let src = source("nokey_cut", false);
    // Grows random rows, so their new versions move to other blocks, until killed.
    let mut writer = Command::new("psql")
        .args(["-X", "-q", "-d", &src.url(), "-c"])
        .arg(
            "DO $$ BEGIN LOOP
               UPDATE nokey SET b = b || md5(random()::text) WHERE a = 1 + (random() * 199999)::int;
               COMMIT;
               PERFORM pg_sleep(0.002);
             END LOOP; END $$",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the source writer");
    let proxy = Proxy::to_postgres();
    // The proxy looks for a running COPY every 250 ms; a copy that ends before it looks cuts
    // nothing and proves nothing: run it again on a fresh target (it is checked every time).
    let mut cut = false;
    for _ in 0..4 {
        let dst = TestDb::new("nokey_cut_dst");
        let child = proxy
            .copy(&src, &dst)
            .args(["--jobs", "2", "--chunk-rows", "70000", "-q"])
            .spawn();
        let cuts = proxy.cut_during_copy(&dst, 2, Duration::from_secs(20));
        let out = child.wait_with_output().expect("wait for howdah");
        assert!(out.status.success(), "{}", describe(&out));
        assert_eq!(
            dst.query("SELECT count(*), count(DISTINCT a), min(a), max(a) FROM nokey"),
            "200000|200000|1|200000",
            "{}",
            describe(&out)
        );
        if cuts > 0 {
            cut = true;
            break;
        }
    }
    let _ = writer.kill();
    let _ = writer.wait();
    assert!(cut, "no cut happened during a COPY in four copies");
}

/// State written by a build of layout 2 (no `chunks.snapshot`, no index of the open chunks)
/// is migrated in place.
#[test]
fn layout_two_state_gains_chunk_snapshots_and_the_open_chunks_index() {
    let src = TestDb::new("layout_src");
    src.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);");
    let dst = TestDb::new("layout_dst");
    let run = || {
        Howdah::copy(&src.url(), &dst.url())
            .args(["-q"])
            .run_timeout(Duration::from_secs(60))
            .0
    };
    assert_success(&run(), "first copy");
    dst.exec(
        "ALTER TABLE howdah.chunks DROP COLUMN snapshot; DROP INDEX howdah.chunks_open; \
         UPDATE howdah.meta SET version = 2;",
    );
    // The finished job is reported as such, after the migration.
    let out = run();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert_eq!(
        dst.query(
            "SELECT version, (SELECT count(*) FROM information_schema.columns \
             WHERE table_schema = 'howdah' AND table_name = 'chunks' AND column_name = 'snapshot') \
             FROM howdah.meta"
        ),
        "3|1"
    );
    // Claims read the open chunks through it instead of sorting every chunk of the job.
    assert_eq!(
        dst.query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'howdah' AND indexname = 'chunks_open'"
        ),
        "CREATE INDEX chunks_open ON howdah.chunks USING btree (job, priority, table_no, chunk_no) \
         WHERE (status = ANY (ARRAY['pending'::text, 'running'::text]))"
    );
}
