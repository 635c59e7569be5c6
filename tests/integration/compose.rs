//! The Docker demo: `docker-compose.yml` is valid, `configs/demo/source.sql` loads into an
//! empty PostgreSQL database with the expected data, and the image's entry point is howdah.
//! No Docker engine is needed: the compose file is checked with `docker-compose config -q`.

use std::path::Path;
use std::process::Command;

use crate::support::{describe, Howdah, MyDb, TestDb};

const DEMO_SQL: &str = include_str!("../../configs/demo/source.sql");

fn crate_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn compose_file_is_valid() {
    let out = match Command::new("docker-compose")
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(crate_root())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `docker-compose` binary is missing: install the Debian package `docker-compose` \
             (apt-get install docker-compose; scripts/test.sh installs it)"
        ),
        Err(e) => panic!("cannot run docker-compose: {e}"),
    };
    assert!(
        out.status.success(),
        "docker-compose -f docker-compose.yml config -q failed ({:?}):\n{}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn compose_file_wires_the_demo() {
    let text = std::fs::read_to_string(crate_root().join("docker-compose.yml"))
        .expect("read docker-compose.yml");
    for needle in [
        "./configs/demo/source.sql:/docker-entrypoint-initdb.d/",
        "postgres://postgres:demo@source:5432/shop?sslmode=disable",
        "postgres://postgres:demo@target:5432/shop?sslmode=disable",
        "condition: service_healthy",
        "pg_isready",
        "55432:5432",
        "POSTGRES_DB: shop",
        "--metrics-addr",
        "0.0.0.0:9187",
        "./configs/prometheus.yml:/etc/prometheus/prometheus.yml",
        "./configs/grafana/provisioning:/etc/grafana/provisioning",
        "./configs/grafana/dashboards:/var/lib/grafana/dashboards",
        "3000:3000",
        "9090:9090",
    ] {
        assert!(
            text.contains(needle),
            "docker-compose.yml should contain `{needle}`"
        );
    }
}

/// Prometheus scrapes the compose service howdah; Grafana's provisioning points at it and at
/// the dashboard folder the compose file mounts.
#[test]
fn prometheus_and_grafana_configs_point_at_each_other() {
    let read = |p: &str| std::fs::read_to_string(crate_root().join(p)).expect(p);
    let prom = read("configs/prometheus.yml");
    assert!(prom.contains("howdah:9187"), "{prom}");
    let ds = read("configs/grafana/provisioning/datasources/prometheus.yml");
    assert!(
        ds.contains("http://prometheus:9090") && ds.contains("uid: prometheus"),
        "{ds}"
    );
    let dash = read("configs/grafana/provisioning/dashboards/howdah.yml");
    assert!(dash.contains("/var/lib/grafana/dashboards"), "{dash}");
    let json: serde_json::Value =
        serde_json::from_str(&read("configs/grafana/dashboards/howdah.json"))
            .expect("dashboard JSON");
    assert_eq!(json["uid"], "howdah");
    // The copy's metrics and the follower's (its panels live on the same dashboard).
    let names: Vec<&str> = howdah::metrics::ALL
        .iter()
        .chain(howdah::metrics::FOLLOW_ALL)
        .chain(howdah::metrics::SNAPSHOT_ALL)
        .map(|m| m.0)
        .collect();
    let panels = json["panels"].as_array().expect("panels");
    for p in panels {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().expect("expr");
            assert!(
                names.iter().any(|n| expr.contains(n)),
                "panel {} queries no documented metric: {expr}",
                p["title"]
            );
        }
    }
}

#[test]
fn compose_demo_sql_loads() {
    let db = TestDb::new("demo");
    db.exec(DEMO_SQL);
    assert_eq!(
        db.query(
            "SELECT string_agg(table_name || ':' || table_type, ',' ORDER BY table_name) \
             FROM information_schema.tables WHERE table_schema = 'public'"
        ),
        "customers:BASE TABLE,order_events:BASE TABLE,orders:BASE TABLE,paid_orders:VIEW"
    );
    assert_eq!(
        db.query(
            "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM orders), \
             (SELECT count(*) FROM order_events), (SELECT count(*) FROM paid_orders)"
        ),
        "20000|200000|200000|50000"
    );
    // Every order points at a customer (the foreign key holds) and the identity/serial
    // sequences have moved past the generated rows.
    assert_eq!(
        db.query(
            "SELECT (SELECT last_value FROM customers_id_seq), (SELECT last_value FROM orders_id_seq)"
        ),
        "20000|200000"
    );
}

#[test]
fn compose_dockerfile_runs_howdah() {
    let text = std::fs::read_to_string(crate_root().join("Dockerfile")).expect("read Dockerfile");
    let entrypoints: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("ENTRYPOINT"))
        .collect();
    assert_eq!(
        entrypoints.last().copied(),
        Some(r#"ENTRYPOINT ["howdah"]"#),
        "the Dockerfile's last ENTRYPOINT should run the howdah binary"
    );
    assert!(
        text.contains("cargo build --release --locked"),
        "the Dockerfile should build with --locked"
    );
    assert!(
        text.contains("/usr/local/bin/howdah"),
        "the Dockerfile should install the howdah binary on PATH"
    );
}

/// The compose file's MariaDB source loads and copies with the compose job file, into its own
/// schema, with the counts of the PostgreSQL demo.
#[test]
fn mariadb_demo_loads_and_copies() {
    let my = MyDb::new("demo_maria");
    my.exec(include_str!("../../configs/demo/mariadb.sql"));
    let pg = TestDb::new("demo_maria_dst");
    let out = Howdah::copy(&my.url(), &pg.url())
        .args(["--config", "configs/demo/mariadb.toml", "--jobs", "2"])
        .current_dir(crate_root())
        .run();
    assert!(out.status.success(), "{}", describe(&out));
    for (t, n) in [
        ("customers", 20000),
        ("orders", 200000),
        ("order_events", 200000),
    ] {
        assert_eq!(
            pg.query(&format!("SELECT count(*) FROM from_mariadb.{t}")),
            n.to_string()
        );
    }
    assert_eq!(
        pg.query("SELECT name FROM from_mariadb.customers WHERE id = 2"),
        "Œdipe 2"
    );
    assert_eq!(pg.query("SELECT name FROM howdah.jobs"), "mariadb");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("view")
            && stderr.contains("paid_orders")
            && stderr.contains("not migrated"),
        "{stderr}"
    );
}
