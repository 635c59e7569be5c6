//! Operator controls (issue 18): shell completions and the man page generated from the clap
//! definitions, identifier naming of MySQL sources, and the job-wide rate cap.

use crate::support::{assert_error, assert_success, describe, job_file, Howdah, MyDb, TestDb};

/// Every user-facing subcommand, as a completion script and the man page must name them.
const SUBCOMMANDS: &[&str] = &[
    "copy",
    "status",
    "verify",
    "demo",
    "plan",
    "cutover",
    "abort",
    "check-queries",
    "completions",
];

#[test]
fn completion_scripts_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let out = Howdah::new("completions").args([shell]).run();
        assert_success(&out, &format!("completions {shell}"));
        let script = String::from_utf8_lossy(&out.stdout);
        for sub in SUBCOMMANDS {
            assert!(
                script.contains(sub),
                "the {shell} completion script does not name `{sub}`"
            );
        }
        // Flags of a subcommand complete too.
        assert!(script.contains("max-rejects"), "{shell}: no --max-rejects");
        // The hidden man page generator is not offered.
        assert!(
            !script.contains("howdah__man"),
            "{shell}: offers the hidden `man`"
        );
    }
    // bash can load it.
    let out = Howdah::new("completions").args(["bash"]).run();
    let dir = std::env::temp_dir().join(format!("howdah-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("howdah.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let loaded = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("source {} && complete -p howdah", file.display()),
        ])
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "bash could not load the script: {}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn man_page_renders() {
    let out = Howdah::new("man").run();
    assert_success(&out, "man");
    // roff escapes a hyphen as `\-`.
    let roff = String::from_utf8_lossy(&out.stdout).replace("\\-", "-");
    assert!(
        roff.starts_with(".ie") || roff.contains(".TH howdah 1"),
        "not roff: {roff:.200}"
    );
    for sub in SUBCOMMANDS {
        assert!(roff.contains(sub), "the man page does not name `{sub}`");
    }
    // One page per subcommand with --dir.
    let dir = std::env::temp_dir().join(format!("howdah-man-{}", std::process::id()));
    let out = Howdah::new("man")
        .args(["--dir", dir.to_str().unwrap()])
        .run();
    assert_success(&out, "man --dir");
    for page in [
        "howdah.1",
        "howdah-copy.1",
        "howdah-status.1",
        "howdah-completions.1",
    ] {
        assert!(dir.join(page).exists(), "man --dir wrote no {page}");
    }
    // Rendered by groff when the machine has it: the text shows the flags of `copy`.
    let groff = std::process::Command::new("groff")
        .args(["-man", "-Tascii", "-P-cbou"])
        .arg(dir.join("howdah-copy.1"))
        .output();
    if let Ok(g) = groff {
        assert!(
            g.status.success(),
            "groff failed: {}",
            String::from_utf8_lossy(&g.stderr)
        );
        let text = String::from_utf8_lossy(&g.stdout);
        assert!(
            text.contains("--max-rejects"),
            "rendered page lacks --max-rejects: {text:.400}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// A MariaDB database named the way SQL Server and .NET people name things.
const MIXED_CASE: &str = "
CREATE TABLE `Customer` (`CustomerId` INT PRIMARY KEY, `FullName` VARCHAR(50) NOT NULL);
CREATE TABLE `InvoiceLine` (
  `InvoiceLineId` INT PRIMARY KEY AUTO_INCREMENT,
  `CustomerId` INT NOT NULL,
  `HTTPStatus` ENUM('OK','Gone') NOT NULL,
  `UnitPrice` DECIMAL(10,2),
  KEY `IX_CustomerId` (`CustomerId`),
  CONSTRAINT `FK_InvoiceLine_Customer` FOREIGN KEY (`CustomerId`) REFERENCES `Customer` (`CustomerId`)
);
INSERT INTO `Customer` VALUES (1, 'Ada'), (2, 'Grace');
INSERT INTO `InvoiceLine` (`CustomerId`, `HTTPStatus`, `UnitPrice`)
  VALUES (1, 'OK', 9.99), (2, 'Gone', NULL), (1, 'Gone', 0.50);
";

#[test]
fn snake_case_identifiers_are_copied_planned_and_verified() {
    let my = MyDb::new("snake");
    my.exec(MIXED_CASE);
    let pg = TestDb::new("snake");
    let job = job_file(
        "snake",
        "[mysql]\nidentifiers = \"snake_case\"\nschema = \"BillingData\"\n",
    );

    // --dry-run and plan show the target names, and write nothing.
    let dry = Howdah::copy(&my.url(), &pg.url())
        .args(["--config", &job, "--dry-run"])
        .run();
    assert_success(&dry, "copy --dry-run");
    let text = String::from_utf8_lossy(&dry.stdout);
    for name in [
        "billing_data.invoice_line",
        "customer_id",
        "http_status",
        "unit_price",
    ] {
        assert!(
            text.contains(name),
            "--dry-run does not show {name}:\n{text}"
        );
    }
    let plan = Howdah::new("plan")
        .args([
            "--source",
            &my.url(),
            "--target",
            &pg.url(),
            "--config",
            &job,
        ])
        .run();
    assert_success(&plan, "plan");
    let text = String::from_utf8_lossy(&plan.stdout);
    for name in ["invoice_line", "http_status", "invoice_line_id"] {
        assert!(text.contains(name), "the plan does not show {name}");
    }
    assert_eq!(
        pg.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'billing_data'"),
        "0"
    );

    let out = Howdah::copy(&my.url(), &pg.url())
        .args(["--config", &job])
        .run();
    assert_success(&out, "copy with identifiers = snake_case");
    assert_eq!(
        pg.query(
            "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, ordinal_position) \
             FROM information_schema.columns WHERE table_schema = 'billing_data'"
        ),
        "customer.customer_id,customer.full_name,invoice_line.invoice_line_id,\
         invoice_line.customer_id,invoice_line.http_status,invoice_line.unit_price"
    );
    assert_eq!(
        pg.query(
            "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes \
             WHERE schemaname = 'billing_data'"
        ),
        "customer_pkey,invoice_line_pkey,ix_customer_id"
    );
    assert_eq!(
        pg.query(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' \
             AND connamespace = 'billing_data'::regnamespace"
        ),
        "fk_invoice_line_customer"
    );
    assert_eq!(
        pg.query(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute \
             WHERE attrelid = 'billing_data.invoice_line'::regclass AND attname = 'http_status'"
        ),
        "billing_data.invoice_line_http_status"
    );
    assert_eq!(
        pg.query(
            "SELECT string_agg(invoice_line_id || ':' || customer_id || ':' || http_status || ':' \
             || coalesce(unit_price::text, '-'), ',' ORDER BY invoice_line_id) FROM billing_data.invoice_line"
        ),
        "1:1:OK:9.99,2:2:Gone:-,3:1:Gone:0.50"
    );
    // The identity goes on past the copied rows.
    pg.exec("INSERT INTO billing_data.invoice_line (customer_id, http_status) VALUES (2, 'OK')");

    // verify reads the target under the same names: equal after the copy... (the extra row
    // above makes it differ, so delete it first).
    pg.exec("DELETE FROM billing_data.invoice_line WHERE invoice_line_id = 4");
    let verify = Howdah::new("verify")
        .args([
            "--source",
            &my.url(),
            "--target",
            &pg.url(),
            "--config",
            &job,
        ])
        .run();
    assert_success(&verify, "verify with identifiers = snake_case");
    // ... and a changed row is found in the snake_case table.
    pg.exec("UPDATE billing_data.invoice_line SET unit_price = 1 WHERE invoice_line_id = 1");
    let verify = Howdah::new("verify")
        .args([
            "--source",
            &my.url(),
            "--target",
            &pg.url(),
            "--config",
            &job,
        ])
        .run();
    assert_eq!(verify.status.code(), Some(1), "{}", describe(&verify));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("invoice_line"));
}

#[test]
fn names_that_become_one_are_refused_before_anything_is_written() {
    let my = MyDb::new("clash");
    my.exec(
        "CREATE TABLE `InvoiceLine` (id INT PRIMARY KEY); CREATE TABLE `invoice_line` (id INT PRIMARY KEY);
         CREATE TABLE `Other` (`OrderId` INT PRIMARY KEY, `order_id` INT);
         INSERT INTO `InvoiceLine` VALUES (1); INSERT INTO `invoice_line` VALUES (2);",
    );
    let pg = TestDb::new("clash");
    let user_tables = "SELECT count(*) FROM pg_tables \
                       WHERE schemaname NOT IN ('pg_catalog', 'information_schema')";
    let job = job_file("clash", "[mysql]\nidentifiers = \"snake_case\"\n");
    for extra in [vec![], vec!["--dry-run"]] {
        let out = Howdah::copy(&my.url(), &pg.url())
            .args(["--config", &job, "--tables", "*.*nvoice*"])
            .args(&extra)
            .run();
        let msg = assert_error(&out, 2, "a snake_case clash of two tables");
        assert!(
            msg.contains("InvoiceLine")
                && msg.contains("invoice_line")
                && msg.contains("identifiers"),
            "the message does not name both tables and the key: {msg}"
        );
    }
    // Columns too.
    let out = Howdah::copy(&my.url(), &pg.url())
        .args(["--config", &job, "--tables", "*.Other"])
        .run();
    let msg = assert_error(&out, 2, "a snake_case clash of two columns");
    assert!(msg.contains("OrderId") && msg.contains("order_id"), "{msg}");
    assert_eq!(pg.query(user_tables), "0", "something was written");

    // The key's former spelling still works, and "preserve" keeps both tables apart.
    let job = job_file("clash-preserve", "[mysql]\nnames = \"preserve\"\n");
    let out = Howdah::copy(&my.url(), &pg.url())
        .args(["--config", &job, "--tables", "*.*nvoice*"])
        .run();
    assert_success(&out, "copy with names = preserve");
    assert_eq!(pg.query("SELECT id FROM public.\"InvoiceLine\""), "1");
    assert_eq!(pg.query("SELECT id FROM public.invoice_line"), "2");
}

/// A source of about 12.8 MB of tuples in 60,000 rows, and an empty target.
fn rate_source(tag: &str) -> (TestDb, TestDb) {
    let src = TestDb::new(tag);
    src.exec(
        "CREATE TABLE t (id int PRIMARY KEY, pad text NOT NULL);
         INSERT INTO t SELECT g, repeat(md5(g::text), 6) || repeat('x', 8) FROM generate_series(1, 60000) g;
         ANALYZE t;",
    );
    (src, TestDb::new(&format!("{tag}_dst")))
}

/// Bytes the job committed, from `status --json`; and its text report.
fn job_bytes(dst: &TestDb, job: &str) -> (f64, String) {
    let out = Howdah::new("status")
        .args(["--target", &dst.url(), "--job", job, "--json"])
        .run();
    assert_success(&out, "status --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = Howdah::new("status")
        .args(["--target", &dst.url(), "--job", job])
        .run();
    (
        v[0]["bytes"].as_f64().unwrap(),
        String::from_utf8_lossy(&text.stdout).to_string(),
    )
}

#[test]
fn a_capped_copy_stays_under_its_max_rate() {
    let (src, dst) = rate_source("rate");
    let cap = 4e6;
    let (out, elapsed) = Howdah::copy(&src.url(), &dst.url())
        .args(["--job", "capped", "--jobs", "2", "--max-rate", "4MB"])
        .run_timeout(std::time::Duration::from_secs(120));
    assert_success(&out, "copy --max-rate 4MB");
    crate::support::assert_same(&src, &dst, "SELECT * FROM t ORDER BY id");
    let (bytes, text) = job_bytes(&dst, "capped");
    let secs = elapsed.as_secs_f64();
    assert!(bytes > 10e6, "only {bytes} bytes copied");
    // Loose bounds, not a timing test: never 1.5x faster than the cap, and not crawling.
    assert!(
        bytes / secs < 1.5 * cap,
        "{bytes} bytes in {secs:.1} s: {:.1} MB/s over a 4 MB/s cap",
        bytes / secs / 1e6
    );
    assert!(
        bytes / secs > 0.3 * cap,
        "{:.1} MB/s under a 4 MB/s cap",
        bytes / secs / 1e6
    );
    assert!(
        text.contains("max rate: 4.0 MB/s"),
        "status does not show the cap:\n{text}"
    );
}

#[test]
fn a_max_rate_changed_while_the_job_runs_takes_effect() {
    let (src, dst) = rate_source("ratechange");
    // 60,000 rows at 4,000 rows/s: 15 s at the first cap.
    let started = std::time::Instant::now();
    let child = Howdah::copy(&src.url(), &dst.url())
        .args(["--job", "changed", "--max-rate", "4000rows/s"])
        .spawn();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let set = Howdah::new("status")
        .args([
            "--target",
            &dst.url(),
            "--job",
            "changed",
            "--set-max-rate",
            "100MB",
        ])
        .run();
    assert_success(&set, "status --set-max-rate 100MB");
    assert!(
        String::from_utf8_lossy(&set.stdout).contains("max rate: 100.0 MB/s"),
        "{}",
        describe(&set)
    );
    let out = child.wait_with_output().unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_success(&out, "copy whose cap was raised");
    crate::support::assert_same(&src, &dst, "SELECT * FROM t ORDER BY id");
    // Had the first cap stayed, the copy would have taken 15 s.
    assert!(
        secs < 11.0,
        "the raised cap did not take effect: {secs:.1} s"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("100.0 MB/s"),
        "the copy did not log the new cap:\n{}",
        describe(&out)
    );
    // And `off` removes it.
    let off = Howdah::new("status")
        .args([
            "--target",
            &dst.url(),
            "--job",
            "changed",
            "--set-max-rate",
            "off",
        ])
        .run();
    assert_success(&off, "status --set-max-rate off");
    assert!(!String::from_utf8_lossy(&off.stdout).contains("max rate"));
}

#[test]
fn plan_estimates_the_duration_under_the_cap() {
    let (src, dst) = rate_source("rateplan");
    let plan = |extra: &[&str]| {
        let out = Howdah::new("plan")
            .args([
                "--source",
                &src.url(),
                "--target",
                &dst.url(),
                "--format",
                "json",
            ])
            .args(extra)
            .run();
        assert_success(&out, "plan --format json");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["strategy"]["estimate"].clone()
    };
    let free = plan(&[]);
    let capped = plan(&["--max-rate", "1MB"]);
    assert!(free["max_rate"].is_null(), "{free}");
    assert_eq!(capped["max_rate"], "1.0 MB/s", "{capped}");
    // About 13 MB of table at 1 MB/s.
    let data = capped["data_seconds"].as_f64().unwrap();
    assert!(data >= 10.0, "the capped estimate is {data} s");
    assert!(data > free["data_seconds"].as_f64().unwrap());
    assert!(capped["method"]
        .as_str()
        .unwrap()
        .contains("under --max-rate 1.0 MB/s"));
}
