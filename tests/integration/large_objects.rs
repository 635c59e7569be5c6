//! Large objects: copied under their OIDs with owners, privileges and comments, streamed in
//! pieces, resumable chunk by chunk after kill -9, and checked by `verify`.

use std::time::{Duration, Instant};

use crate::support::{assert_success, describe, Howdah, TestDb};
use crate::verify::{table, verify};

/// Every object: OID, owner, ACL, comment and the md5 of its bytes, in OID order.
const OBJECTS: &str = "SELECT count(*) || ' ' || coalesce(md5(string_agg(m.oid || ':' || pg_get_userbyid(m.lomowner) \
    || ':' || coalesce(m.lomacl::text, '') || ':' || coalesce(obj_description(m.oid, 'pg_largeobject'), '') \
    || ':' || md5(lo_get(m.oid)), ',' ORDER BY m.oid)), '') FROM pg_largeobject_metadata m";

#[test]
fn large_objects_arrive_with_oids_owners_privileges_and_comments() {
    let pid = std::process::id();
    let (owner, reader) = (
        format!("howdah_test_loown_{pid}"),
        format!("howdah_test_lord_{pid}"),
    );
    let src = TestDb::new("lo_src");
    src.exec(&format!(
        "DROP ROLE IF EXISTS {owner}; DROP ROLE IF EXISTS {reader}; CREATE ROLE {owner}; CREATE ROLE {reader};
         SELECT lo_from_bytea(424242, ''::bytea);
         SELECT lo_from_bytea(424243, decode(repeat('ab', 1048576), 'hex'));
         SELECT lo_from_bytea(424244, (SELECT decode(string_agg(md5(g::text), ''), 'hex') FROM generate_series(1, 163840) g));
         SELECT lo_from_bytea(0, decode(repeat(md5(g::text), g), 'hex')) FROM generate_series(1, 60) g;
         CREATE TABLE docs (id int PRIMARY KEY, body oid);
         INSERT INTO docs SELECT row_number() OVER (ORDER BY oid), oid FROM pg_largeobject_metadata;
         ALTER LARGE OBJECT 424243 OWNER TO {owner};
         GRANT SELECT ON LARGE OBJECT 424243 TO {reader};
         GRANT SELECT, UPDATE ON LARGE OBJECT 424244 TO PUBLIC;
         COMMENT ON LARGE OBJECT 424244 IS 'two and a half MiB';"
    ));
    let dst = TestDb::new("lo_dst");
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--owners", "--grants", "--jobs", "3"])
        .run();
    let narrowed = TestDb::new("lo_narrow");
    let narrowed_out = Howdah::copy(&src.url(), &narrowed.url())
        .args(["--tables", "public.docs"])
        .run();
    let results = (
        src.query(OBJECTS),
        dst.query(OBJECTS),
        narrowed.query("SELECT count(*) FROM pg_largeobject_metadata"),
        dst.query("SELECT count(*) FROM docs d JOIN pg_largeobject_metadata m ON m.oid = d.body"),
    );
    let (equal_code, equal_report, equal_out) = verify(&src.url(), &dst, &[]);
    dst.exec("SELECT lo_put(424244, 100000, '\\x00ff'::bytea)");
    let (changed_code, changed_report, _) = verify(&src.url(), &dst, &[]);
    let again = Howdah::copy(&src.url(), &dst.url())
        .args(["--owners", "--grants", "--schema", "recreate", "--restart"])
        .run();
    let after_recreate = dst.query(OBJECTS);
    drop((dst, narrowed));
    src.exec(&format!(
        "SELECT lo_unlink(oid) FROM pg_largeobject_metadata; DROP ROLE {owner}; DROP ROLE {reader};"
    ));
    assert_success(&out, "copy with large objects");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("large objects: 63"),
        "the summary counts the large objects\n{}",
        describe(&out)
    );
    assert_success(&narrowed_out, "copy narrowed by --tables");
    assert_success(&again, "copy again with --schema recreate --restart");
    assert_eq!(
        after_recreate, results.0,
        "recreate replaces the target's objects with the source's"
    );
    assert!(
        results.0.starts_with("63 "),
        "source objects: {}",
        results.0
    );
    assert_eq!(
        results.1, results.0,
        "every object arrives with its OID, owner, ACL, comment and bytes"
    );
    assert_eq!(
        results.2, "0",
        "--tables narrows the copy to tables, as pg_dump -t does"
    );
    assert_eq!(
        results.3, "63",
        "every oid column points at an object on the target"
    );
    assert_eq!(
        equal_code,
        0,
        "an equal copy verifies\n{}",
        describe(&equal_out)
    );
    let lo = table(&equal_report, "large objects");
    assert_eq!(lo["source_rows"], 63, "verify counts the objects: {lo}");
    assert_eq!(lo["matched"], lo["chunks"], "{lo}");
    assert_ne!(changed_code, 0, "verify finds a changed byte");
    let lo = table(&changed_report, "large objects");
    assert_eq!(lo["mismatches"].as_array().map(Vec::len), Some(1), "{lo}");
}

/// Objects done in each chunk of the job: `chunk_no:done_at`, for chunks that are done.
fn done_chunks(dst: &TestDb) -> Vec<String> {
    dst.try_query(
        "SELECT string_agg(chunk_no || ':' || done_at, ' ' ORDER BY chunk_no) FROM howdah.large_objects WHERE done",
    )
    .map(|s| s.split_whitespace().map(str::to_string).collect::<Vec<_>>())
    .unwrap_or_default()
    .chunks(2)
    .map(|p| p.join(" "))
    .collect()
}

#[test]
fn large_objects_resume_after_kill_without_copying_a_chunk_twice() {
    let src = TestDb::new("lo_kill_src");
    src.exec(
        "SELECT lo_from_bytea(0, decode(repeat(md5(g::text), 1000 + (g * 7919) % 3000), 'hex'))
           FROM generate_series(1, 1500) g;
         CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);",
    );
    let dst = TestDb::new("lo_kill_dst");
    let mut child = Howdah::copy(&src.url(), &dst.url())
        .args(["--jobs", "2"])
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let before = loop {
        let done = done_chunks(&dst);
        if !done.is_empty() || Instant::now() > deadline {
            break done;
        }
        if let Ok(Some(_)) = child.try_wait() {
            break done;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    child.kill().expect("kill -9 howdah");
    let _ = child.wait();
    let before_kill = done_chunks(&dst);
    let total: usize = dst
        .query("SELECT count(*) FROM howdah.large_objects")
        .parse()
        .unwrap();
    assert!(
        !before.is_empty() && before_kill.len() < total,
        "the kill must land among the chunks of large objects: {} done before, {} at the kill",
        before.len(),
        before_kill.len()
    );
    let at_kill = (
        dst.query("SELECT count(*) FROM pg_largeobject_metadata"),
        dst.query("SELECT coalesce(sum(objects_done), 0) FROM howdah.large_objects WHERE done"),
    );
    assert_eq!(
        at_kill.0, at_kill.1,
        "after the kill the target holds exactly the objects of the done chunks"
    );
    let status = Howdah::new("status").args(["--target", &dst.url()]).run();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!(
            "large objects: {} of {total} chunks done",
            before_kill.len()
        )),
        "status shows the large objects' progress\n{}",
        describe(&status)
    );
    let out = Howdah::copy(&src.url(), &dst.url())
        .args(["--jobs", "2"])
        .run();
    assert_success(&out, "resumed copy");
    let after = done_chunks(&dst);
    assert_eq!(after.len(), total, "every chunk is done");
    for chunk in &before_kill {
        assert!(
            after.contains(chunk),
            "chunk {chunk} was done before the kill and must not be copied again: {after:?}"
        );
    }
    assert_eq!(
        dst.query(OBJECTS),
        src.query(OBJECTS),
        "every object is equal"
    );
    let (code, _, out) = verify(&src.url(), &dst, &[]);
    assert_eq!(code, 0, "the resumed copy verifies\n{}", describe(&out));
}

/// A database holding large objects and no table is copied too.
#[test]
fn a_database_of_large_objects_alone_is_copied() {
    let src = TestDb::new("lo_alone_src");
    src.exec("SELECT lo_from_bytea(0, decode(md5(g::text), 'hex')) FROM generate_series(1, 5) g");
    let dst = TestDb::new("lo_alone_dst");
    let out = Howdah::copy(&src.url(), &dst.url()).run();
    assert_success(&out, "copy of large objects alone");
    assert_eq!(dst.query(OBJECTS), src.query(OBJECTS));
}
