//! Three workers of one job on three "hosts": each `howdah copy` runs in a network namespace
//! of its own (`ip netns`), joined to the servers by a veth pair with 20 ms of one-way delay
//! and 0.1% packet loss each way. The job finishes equal; a worker whose link is cut mid-run
//! loses its chunk to the others when its lease runs out, and its late writes are fenced.
//!
//! The servers stay in the root namespace, listening on 127.0.0.1 only: each namespace reaches
//! them through a forwarder of this test listening on the veth's host-side address, at one
//! address for all (10.231.255.254:5432, sent to the forwarder by NAT in each namespace). This
//! machine's kernel has no `netem` qdisc (`tc qdisc ... netem` answers "Specified qdisc kind is
//! unknown"), so the forwarder holds every byte the worker sends for 20 ms (what `netem delay
//! 20ms` on the worker's link does), and `iptables -m statistic` in the namespace drops 0.1% of
//! the packets in and out (what `netem loss 0.1%` does; TCP retransmits them). Needs root, `ip`
//! and `iptables` (scripts/test.sh installs the Debian package `iptables`). Every namespace,
//! veth and forwarder is removed when its guard drops, also when an assertion fails.
//!
//! `bench_one_and_three_workers` (ignored; run by benches/netns_workers.sh) prints the timings
//! of one and three workers without namespaces, then one in a namespace and three in three.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::{assert_same, describe, TestDb};

/// The local PostgreSQL server the forwarders lead to.
const POSTGRES: &str = "127.0.0.1:5432";
/// One-way delay of every byte a worker sends.
const DELAY: Duration = Duration::from_millis(20);
/// Share of the packets dropped in each direction of a worker's link.
const LOSS: &str = "0.001";
/// How long the server's keepalives let a session whose peer is gone live in these tests:
/// about the tests' lease (`--lease-secs 6`, which the sink sets as `tcp_keepalives_idle`)
/// plus three probes.
const SERVER_KEEPALIVE: Duration = Duration::from_secs(9);
/// The servers' address as every namespace sees it: the same URL in every worker (a job's
/// workers must use the same URLs; another spelling of the server is another configuration).
/// Each namespace's own NAT sends it to its forwarder.
const SERVER: &str = "10.231.255.254";

static SLOT: AtomicU32 = AtomicU32::new(0);

/// The tests' workers: small chunks and checkpoints, so a cut lands inside a chunk.
const WORKER: [&str; 6] = [
    "--jobs",
    "1",
    "--chunk-rows",
    "20000",
    "--commit-rows",
    "5000",
];
/// The bench's workers: one lane each, chunks of 100,000 rows, default checkpoints.
const BENCH_WORKER: [&str; 4] = ["--jobs", "1", "--chunk-rows", "100000"];

/// Runs a command to its end; panics with its output when it fails.
fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args.join(" ")));
    assert!(
        out.status.success(),
        "{} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A network namespace with a veth pair to the root namespace, a degraded link, and a
/// delaying forwarder to the local PostgreSQL server on the veth's host-side address.
/// Dropping it stops the forwarder and deletes the veth pair and the namespace.
struct Host {
    /// The namespace's name, for `ip netns exec`.
    ns: String,
    /// The veth end in the root namespace (cut with `ip link set ... down`).
    veth: String,
    /// The forwarder to PostgreSQL, on the veth's host-side address.
    addr: SocketAddr,
    /// Whether the link is cut, as the forwarder sees it.
    cut: tokio::sync::watch::Sender<bool>,
    _forwarder: tokio::runtime::Runtime,
}

impl Host {
    fn new() -> Host {
        // Unique names and a /30 of 10.231.0.0/16 per namespace, by pid and a counter.
        let pid = std::process::id();
        let n = SLOT.fetch_add(1, Ordering::SeqCst);
        let slot = (pid % 4096) * 16 + n % 16;
        let (third, fourth) = ((slot / 64) % 256, (slot % 64) * 4);
        let host_ip = Ipv4Addr::new(10, 231, third as u8, fourth as u8 + 1);
        let ns_ip = Ipv4Addr::new(10, 231, third as u8, fourth as u8 + 2);
        let ns = format!("howdah-{pid}-{n}");
        let veth = format!("hw{pid}x{n}");
        let peer = format!("hw{pid}y{n}");
        // A namespace of a crashed run of this process id would be in the way.
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &veth]).output();
        match Command::new("ip").args(["netns", "add", &ns]).output() {
            Ok(out) if out.status.success() => {}
            Ok(out) => panic!(
                "`ip netns add {ns}` failed (this test needs root, CAP_SYS_ADMIN and \
                 CAP_NET_ADMIN): {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("cannot run `ip` (Debian package iproute2): {e}"),
        }
        // From here on the guard cleans up whatever was made.
        let host = Host {
            ns: ns.clone(),
            veth: veth.clone(),
            addr: SocketAddr::from((host_ip, 0)),
            cut: tokio::sync::watch::channel(false).0,
            _forwarder: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
        };
        let in_ns = |args: &[&str]| {
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(args);
            sh(&all);
        };
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer, "netns", &ns,
        ]);
        sh(&["ip", "addr", "add", &format!("{host_ip}/30"), "dev", &veth]);
        sh(&["ip", "link", "set", &veth, "up"]);
        in_ns(&["ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &peer]);
        in_ns(&["ip", "link", "set", &peer, "up"]);
        in_ns(&["ip", "link", "set", "lo", "up"]);
        for chain in ["INPUT", "OUTPUT"] {
            let rule = [
                "iptables",
                "-A",
                chain,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                LOSS,
                "-j",
                "DROP",
            ];
            let mut all = vec!["ip", "netns", "exec", &ns];
            all.extend_from_slice(&rule);
            let out = Command::new("ip").args(&all[1..]).output();
            match out {
                Ok(out) if out.status.success() => {}
                Ok(out) => panic!(
                    "{} failed (install the Debian package iptables): {}",
                    all.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => panic!("cannot run ip: {e}"),
            }
        }
        let mut host = host;
        host.addr = host
            ._forwarder
            .block_on(forward(host.addr, DELAY, host.cut.subscribe()));
        let to = format!("{}:{}", host.addr.ip(), host.addr.port());
        in_ns(&["ip", "route", "add", "default", "via", &host_ip.to_string()]);
        in_ns(&[
            "iptables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-p",
            "tcp",
            "-d",
            SERVER,
            "--dport",
            "5432",
            "-j",
            "DNAT",
            "--to-destination",
            &to,
        ]);
        host
    }

    /// A database's URL as seen from inside any of the namespaces.
    fn url(&self, db: &TestDb) -> String {
        format!(
            "postgres://postgres@{SERVER}:5432/{}?sslmode=disable",
            db.name
        )
    }

    /// `howdah copy` in this namespace, with the harness's environment rules (see
    /// `support::Howdah`); HOWDAH_BIN picks another binary (the bench's release build).
    fn copy(&self, src: &TestDb, dst: &TestDb, extra: &[&str]) -> Child {
        copy_command(
            &["ip", "netns", "exec", &self.ns],
            &self.url(src),
            &self.url(dst),
            extra,
        )
        .spawn()
        .expect("spawn ip netns exec howdah")
    }

    /// Cuts (`false`) or restores (`true`) the namespace's only link.
    fn link(&self, up: bool) {
        sh(&[
            "ip",
            "link",
            "set",
            &self.veth,
            if up { "up" } else { "down" },
        ]);
        let _ = self.cut.send(!up);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Deleting one end of a veth pair deletes both; the namespace goes last.
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

fn howdah_bin() -> String {
    std::env::var("HOWDAH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_howdah").to_string())
}

/// `howdah copy` with `extra` settings, run through `prefix` (a command that runs the rest of
/// its arguments, or nothing).
fn copy_command(prefix: &[&str], src: &str, dst: &str, extra: &[&str]) -> Command {
    let bin = howdah_bin();
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(&bin);
            cmd
        }
        None => Command::new(&bin),
    };
    cmd.args(["copy", "--source", src, "--target", dst])
        .args(extra)
        .env_remove("HOWDAH_SOURCE")
        .env_remove("HOWDAH_TARGET")
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Listens on `at` (port 0: a free one) and forwards every connection to PostgreSQL; the
/// bytes toward the server leave `delay` after they arrived, in order. Returns the address.
async fn forward(
    at: SocketAddr,
    delay: Duration,
    cut: tokio::sync::watch::Receiver<bool>,
) -> SocketAddr {
    let listener = TcpListener::bind(at).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let mut cut = cut.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(POSTGRES).await else {
                    return;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let (mut client_rd, mut client_wr) = client.into_split();
                let (mut server_rd, mut server_wr) = server.into_split();
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
                let up_read = async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    while let Ok(n) = client_rd.read(&mut buf).await {
                        if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                };
                let up_write = async move {
                    while let Some((at, bytes)) = rx.recv().await {
                        tokio::time::sleep_until((at + delay).into()).await;
                        if server_wr.write_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    let _ = server_wr.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut server_rd, &mut client_wr).await;
                    let _ = client_wr.shutdown().await;
                };
                // The server's keepalives: with the link cut for longer than they allow
                // (the sink sets them to the lease time), the server drops the session, as
                // it would on a real network. Without this the forwarder, alive on the
                // server's side, answers them, and the cut session keeps its locks (a
                // backend in COPY then also holds up every DROP DATABASE on the server).
                let dead_peer = async move {
                    loop {
                        if *cut.borrow() {
                            tokio::time::sleep(SERVER_KEEPALIVE).await;
                            if *cut.borrow() {
                                return;
                            }
                        }
                        if cut.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                };
                tokio::select! {
                    _ = async { tokio::join!(up_read, up_write, down) } => {}
                    _ = dead_peer => {}
                }
            });
        }
    });
    addr
}

const SETUP: &str = "
    CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n int);
    INSERT INTO big SELECT g, md5(g::text), g % 1000 FROM generate_series(1, 400000) g;
    CREATE INDEX big_n_idx ON big (n);
    CREATE TABLE log (at timestamptz, what text);
    INSERT INTO log SELECT '2024-01-01'::timestamptz + g * interval '1 s', 'e' || g FROM generate_series(1, 60000) g;
    CREATE TABLE refs (id int PRIMARY KEY, big_id bigint REFERENCES big (id));
    INSERT INTO refs SELECT g, g * 3 FROM generate_series(1, 5000) g;
    ANALYZE;";

fn assert_copied(src: &TestDb, dst: &TestDb) {
    for t in ["big", "log", "refs"] {
        assert_same(src, dst, &format!("SELECT * FROM {t}"));
    }
    assert_eq!(
        dst.query("SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public'"),
        "big_n_idx,big_pkey,refs_pkey"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM howdah.chunks WHERE status <> 'done'"),
        "0"
    );
    assert_eq!(dst.query("SELECT phase FROM howdah.jobs"), "done");
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("wait for howdah")
}

/// Waits for `child` to end for at most `limit`; kills it after that.
fn finish_within(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    while started.elapsed() < limit {
        if child.try_wait().expect("poll howdah").is_some() {
            return finish(child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    finish(child)
}

#[test]
fn three_workers_in_three_namespaces_finish_equal() {
    let src = TestDb::new("netns_src");
    src.exec(SETUP);
    let dst = TestDb::new("netns_dst");
    let hosts: Vec<Host> = (0..3).map(|_| Host::new()).collect();
    let children: Vec<Child> = hosts.iter().map(|h| h.copy(&src, &dst, &WORKER)).collect();
    let outs: Vec<Output> = children.into_iter().map(finish).collect();
    for out in &outs {
        assert!(out.status.success(), "{}", describe(out));
    }
    assert_copied(&src, &dst);
    // Three workers registered, from three addresses the server saw through the forwarders.
    assert_eq!(dst.query("SELECT count(*) FROM howdah.workers"), "3");
    let owners = dst.query("SELECT count(DISTINCT owner) FROM howdah.chunks");
    assert!(
        owners.parse::<i32>().unwrap_or(0) >= 2,
        "the chunks were shared: {}",
        dst.query("SELECT owner, count(*) FROM howdah.chunks GROUP BY owner")
    );
}

#[test]
fn a_worker_whose_link_is_cut_loses_its_chunk_and_is_fenced() {
    let _alone = crate::support::server_wide();
    let src = TestDb::new("netns_cut_src");
    src.exec(SETUP);
    let hosts: Vec<Host> = (0..3).map(|_| Host::new()).collect();
    let mut settings = WORKER.to_vec();
    settings.extend(["--lease-secs", "6"]);
    for attempt in 0..5 {
        let dst = TestDb::new("netns_cut_dst");
        let mut children: Vec<Child> = hosts
            .iter()
            .map(|h| h.copy(&src, &dst, &settings))
            .collect();
        // A worker with committed rows in a running chunk: its link is cut.
        let started = Instant::now();
        let mut victim = None;
        while victim.is_none() && started.elapsed() < Duration::from_secs(120) {
            std::thread::sleep(Duration::from_millis(50));
            if dst.query("SELECT to_regclass('howdah.chunks') IS NOT NULL") != "t" {
                continue;
            }
            let pid = dst.query(
                "SELECT w.pid FROM howdah.chunks c JOIN howdah.workers w ON w.worker_no = c.owner \
                 WHERE c.status = 'running' AND c.rows_done > 0 ORDER BY c.rows_done LIMIT 1",
            );
            victim = children.iter().position(|c| c.id().to_string() == pid);
        }
        let Some(victim) = victim else {
            let outs: Vec<Output> = children.into_iter().map(finish).collect();
            panic!(
                "no worker was caught with a running chunk: {}",
                outs.iter().map(describe).collect::<Vec<_>>().join("\n")
            );
        };
        hosts[victim].link(false);
        let pid = children[victim].id();
        // What the cut worker held (a COMMIT on its way may still have landed).
        std::thread::sleep(Duration::from_millis(300));
        let held = dst.query(&format!(
            "SELECT c.table_no || '|' || c.chunk_no FROM howdah.chunks c \
             JOIN howdah.workers w ON w.worker_no = c.owner \
             WHERE c.status = 'running' AND w.pid = {pid} LIMIT 1"
        ));
        // The others finish the job, the cut worker's chunk included, once its lease ran out.
        let started = Instant::now();
        let mut all_done = false;
        while started.elapsed() < Duration::from_secs(180) {
            if dst.query("SELECT count(*) FILTER (WHERE status <> 'done') FROM howdah.chunks")
                == "0"
                && dst.query("SELECT phase FROM howdah.jobs") == "done"
            {
                all_done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        // The link comes back: the cut worker's next checkpoint finds its chunk taken over.
        hosts[victim].link(true);
        let cut = children.remove(victim);
        let others: Vec<Output> = children.into_iter().map(finish).collect();
        let cut = finish_within(cut, Duration::from_secs(180));
        for out in &others {
            assert!(out.status.success(), "{}", describe(out));
        }
        assert!(
            all_done,
            "the other workers did not finish the job while one link was cut"
        );
        assert_copied(&src, &dst);
        if held.is_empty() {
            eprintln!("attempt {attempt}: the cut landed between two chunks; again");
            continue;
        }
        let mut parts = held.split('|');
        let (table, chunk) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let row = dst.query(&format!(
            "SELECT w.pid <> {pid}, c.claims >= 2 FROM howdah.chunks c \
             JOIN howdah.workers w ON w.worker_no = c.owner \
             WHERE c.table_no = {table} AND c.chunk_no = {chunk}"
        ));
        assert_eq!(
            row, "t|t",
            "another worker took the cut worker's chunk over"
        );
        let stderr = String::from_utf8_lossy(&cut.stderr);
        assert!(
            stderr.contains("was taken over by another"),
            "the cut worker's late checkpoint was fenced: {}",
            describe(&cut)
        );
        return;
    }
    panic!("no cut landed inside a chunk in 5 attempts");
}

/// Timings for benches/netns_workers.sh: NETNS_BENCH_ROWS rows (default 2,000,000) copied by
/// one and three workers without namespaces, then one in a namespace and three in three.
#[test]
#[ignore]
fn bench_one_and_three_workers() {
    let rows: u64 = std::env::var("NETNS_BENCH_ROWS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    let src = TestDb::new("netns_bench_src");
    src.exec(&format!(
        "CREATE TABLE big (id bigint PRIMARY KEY, v text NOT NULL, n int, at timestamptz);
         INSERT INTO big SELECT g, md5(g::text), g % 1000, '2024-01-01'::timestamptz + g * interval '1 s'
           FROM generate_series(1, {rows}) g;
         CREATE INDEX big_n_idx ON big (n);
         ANALYZE;"
    ));
    let bytes = src.query("SELECT pg_table_size('big')");
    println!(
        "netns bench: {rows} rows, table {bytes} bytes, binary {}",
        howdah_bin()
    );
    let report = |what: &str, secs: f64| {
        println!(
            "netns bench: {what}: {secs:.1} s, {:.0} rows/s",
            rows as f64 / secs
        );
    };
    // Workers in the root namespace, straight to the server, then the same over the links.
    for n in [1usize, 3] {
        let dst = TestDb::new("netns_bench_dst");
        let started = Instant::now();
        let children: Vec<Child> = (0..n)
            .map(|_| {
                copy_command(&[], &src.url(), &dst.url(), &BENCH_WORKER)
                    .spawn()
                    .expect("spawn howdah")
            })
            .collect();
        for out in children.into_iter().map(finish) {
            assert!(out.status.success(), "{}", describe(&out));
        }
        report(
            &format!("{n} worker(s), root namespace"),
            started.elapsed().as_secs_f64(),
        );
        assert_same(&src, &dst, "SELECT count(*), sum(id), sum(n) FROM big");
    }
    for n in [1usize, 3] {
        let dst = TestDb::new("netns_bench_dst");
        let hosts: Vec<Host> = (0..n).map(|_| Host::new()).collect();
        let started = Instant::now();
        let children: Vec<Child> = hosts
            .iter()
            .map(|h| h.copy(&src, &dst, &BENCH_WORKER))
            .collect();
        for out in children.into_iter().map(finish) {
            assert!(out.status.success(), "{}", describe(&out));
        }
        report(
            &format!("{n} worker(s), own namespaces, 20 ms + 0.1% loss"),
            started.elapsed().as_secs_f64(),
        );
        assert_same(&src, &dst, "SELECT count(*), sum(id), sum(n) FROM big");
    }
}
