//! `howdah copy` failures: exit codes, one-line messages, and no password in the output.

use std::time::Duration;

use crate::support::{assert_error, describe, pg_base, Howdah, TestDb};

const TIMEOUT: Duration = Duration::from_secs(60);
const SENTINEL: &str = "s3cr3t-SENTINEL";

/// Runs `howdah copy --source <source> --target <target> <extra...>` with `env`.
fn run(
    source: &str,
    target: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (std::process::Output, Duration) {
    let mut howdah = Howdah::copy(source, target).args(extra);
    for (k, v) in env {
        howdah = howdah.env(k, v);
    }
    howdah.run_timeout(TIMEOUT)
}

/// Panics if `needle` occurs anywhere in stdout or stderr.
#[track_caller]
fn assert_not_printed(out: &std::process::Output, needle: &str, what: &str) {
    let all = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(needle),
        "{what}: `{needle}` appears in the output\n{}",
        describe(out)
    );
}

/// A database URL on the local server for a database that does not exist.
fn missing_db_url(tag: &str) -> (String, String) {
    let name = format!("howdah_no_such_db_{tag}_{}", std::process::id());
    (format!("{}/{name}?sslmode=disable", pg_base()), name)
}

/// A scratch file under the temp dir, removed on drop.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str, contents: &str) -> Self {
        let path = std::env::temp_dir().join(format!("howdah_test_{}_{name}", std::process::id()));
        std::fs::write(&path, contents).expect("write temp file");
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn unreachable_host_exits_3_quickly() {
    let dst = TestDb::new("err_unreach_dst");
    let (out, took) = run(
        "postgres://postgres@127.0.0.1:1/x?sslmode=disable",
        &dst.url(),
        &[],
        &[],
    );
    let line = assert_error(&out, 3, "unreachable source host");
    assert!(
        line.contains("127.0.0.1:1"),
        "the error must name host:port 127.0.0.1:1\n{}",
        describe(&out)
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} to report an unreachable host\n{}",
        describe(&out)
    );

    // Same for the target side.
    let src = TestDb::new("err_unreach_src");
    let (out, took) = run(
        &src.url(),
        "postgres://postgres@127.0.0.1:1/y?sslmode=disable",
        &[],
        &[],
    );
    let line = assert_error(&out, 3, "unreachable target host");
    assert!(
        line.contains("127.0.0.1:1"),
        "the error must name host:port 127.0.0.1:1\n{}",
        describe(&out)
    );
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} to report an unreachable host\n{}",
        describe(&out)
    );
}

#[test]
fn missing_database_exits_3() {
    let dst = TestDb::new("err_nodb_dst");
    let (url, name) = missing_db_url("src");
    let (out, _) = run(&url, &dst.url(), &[], &[]);
    let line = assert_error(&out, 3, "nonexistent source database");
    assert!(
        line.contains(&name),
        "the error must name the database {name}\n{}",
        describe(&out)
    );

    let src = TestDb::new("err_nodb_src");
    src.exec("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);");
    let (url, name) = missing_db_url("dst");
    let (out, _) = run(&src.url(), &url, &[], &[]);
    let line = assert_error(&out, 3, "nonexistent target database");
    assert!(
        line.contains(&name),
        "the error must name the database {name}\n{}",
        describe(&out)
    );
}

#[test]
fn password_never_printed() {
    let dst = TestDb::new("err_pw_dst");
    let with_pw = |url: &str, pw: &str| url.replacen("postgres@", &format!("postgres:{pw}@"), 1);

    // Unreachable host, password in the URL and in PGPASSWORD.
    let src = with_pw(
        "postgres://postgres@127.0.0.1:1/x?sslmode=disable",
        SENTINEL,
    );
    let (out, _) = run(
        &src,
        &dst.url(),
        &[],
        &[("PGPASSWORD", SENTINEL), ("RUST_LOG", "trace")],
    );
    assert_error(&out, 3, "unreachable host with a password");
    assert_not_printed(
        &out,
        SENTINEL,
        "unreachable host, password in URL and PGPASSWORD",
    );

    // Nonexistent database (the server trusts 127.0.0.1, so the failure is the database).
    let (url, _) = missing_db_url("pw");
    let (out, _) = run(
        &with_pw(&url, SENTINEL),
        &dst.url(),
        &[],
        &[("PGPASSWORD", SENTINEL)],
    );
    assert_error(&out, 3, "nonexistent database with a password");
    assert_not_printed(&out, SENTINEL, "nonexistent database, password in URL");

    // Percent-encoded password (`-` as %2D): neither form may appear.
    let encoded = "s3cr3t%2DSENTINEL";
    let (out, _) = run(&with_pw(&url, encoded), &dst.url(), &[], &[]);
    assert_error(
        &out,
        3,
        "nonexistent database with a percent-encoded password",
    );
    assert_not_printed(&out, SENTINEL, "percent-encoded password (decoded form)");
    assert_not_printed(&out, encoded, "percent-encoded password (encoded form)");

    // A usage error on a URL that holds a password must not echo the URL.
    let bad = with_pw(&format!("{}/postgres?sslmode=bogus", pg_base()), SENTINEL);
    let (out, _) = run(&bad, &dst.url(), &[], &[]);
    assert_error(&out, 2, "bad sslmode in a URL with a password");
    assert_not_printed(&out, SENTINEL, "bad sslmode, password in URL");

    // A runtime error whose message names the source database (no table matched).
    let src = TestDb::new("err_pw_src");
    let (out, _) = run(
        &with_pw(&src.url(), SENTINEL),
        &with_pw(&dst.url(), SENTINEL),
        &["--tables", "public.does_not_exist"],
        &[("PGPASSWORD", SENTINEL)],
    );
    assert!(
        !out.status.success(),
        "--tables matching nothing must fail\n{}",
        describe(&out)
    );
    assert_not_printed(&out, SENTINEL, "no table matched, password in both URLs");

    // PGPASSWORD only, target side failing.
    let (out, _) = run(
        &dst.url(),
        "postgres://postgres@127.0.0.1:1/y?sslmode=disable",
        &[],
        &[("PGPASSWORD", SENTINEL)],
    );
    assert_error(&out, 3, "unreachable target with PGPASSWORD");
    assert_not_printed(&out, SENTINEL, "PGPASSWORD, unreachable target");
}

#[test]
fn no_table_matched() {
    let src = TestDb::new("err_nomatch_src");
    let dst = TestDb::new("err_nomatch_dst");
    src.exec("CREATE TABLE real_table (id int PRIMARY KEY); INSERT INTO real_table VALUES (1);");
    let (out, _) = run(
        &src.url(),
        &dst.url(),
        &["--tables", "public.does_not_exist"],
        &[],
    );
    let code = out.status.code();
    assert!(
        code == Some(1) || code == Some(2),
        "a pattern matching no table must exit 1 or 2\n{}",
        describe(&out)
    );
    let line = assert_error(&out, code.unwrap_or(-1), "--tables matching nothing");
    assert!(
        line.to_lowercase().contains("match"),
        "the error must say that no table matched\n{}",
        describe(&out)
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
        "0",
        "nothing may be created on the target"
    );
}

#[test]
fn config_errors_exit_2() {
    let src = TestDb::new("err_cfg_src");
    let dst = TestDb::new("err_cfg_dst");

    let cfg = TempFile::new("unknown_key.toml", "no_such_option = true\n");
    let (out, _) = run(&src.url(), &dst.url(), &["--config", cfg.path()], &[]);
    let line = assert_error(&out, 2, "config file with an unknown key");
    assert!(
        line.contains("no_such_option"),
        "the error must name the unknown key\n{}",
        describe(&out)
    );

    let missing =
        std::env::temp_dir().join(format!("howdah_test_{}_missing.toml", std::process::id()));
    let missing = missing.to_str().expect("utf-8 temp path");
    let (out, _) = run(&src.url(), &dst.url(), &["--config", missing], &[]);
    let line = assert_error(&out, 2, "missing config file");
    assert!(
        line.contains(missing),
        "the error must name the missing file\n{}",
        describe(&out)
    );

    let cfg = TempFile::new("syntax.toml", "jobs = = 3\n");
    let (out, _) = run(&src.url(), &dst.url(), &["--config", cfg.path()], &[]);
    assert_error(&out, 2, "config file that is not valid TOML");
}

#[test]
fn usage_errors_exit_2() {
    let src = TestDb::new("err_usage_src");
    let dst = TestDb::new("err_usage_dst");

    let bad = src.url().replace("sslmode=disable", "sslmode=bogus");
    let (out, _) = run(&bad, &dst.url(), &[], &[]);
    let line = assert_error(&out, 2, "bad sslmode value");
    assert!(
        line.contains("sslmode"),
        "the error must name sslmode\n{}",
        describe(&out)
    );

    let (out, _) = Howdah::new("copy")
        .args(["--source", &src.url()])
        .run_timeout(TIMEOUT);
    assert_eq!(
        out.status.code(),
        Some(2),
        "missing --target\n{}",
        describe(&out)
    );

    let (out, _) = run(&src.url(), &dst.url(), &["--schema", "bogus"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "--schema bogus\n{}",
        describe(&out)
    );

    let (out, _) = run("not a url", &dst.url(), &[], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "unparsable --source\n{}",
        describe(&out)
    );
}
