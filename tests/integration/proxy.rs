//! A TCP proxy on 127.0.0.1 that can cut every connection passing through it, and copies
//! whose source and target connections both pass through it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{Howdah, TestDb};

/// The local PostgreSQL server that [`Proxy::to_postgres`] forwards to.
const POSTGRES: &str = "127.0.0.1:5432";

/// A running proxy; dropping it stops the proxy.
pub struct Proxy {
    /// Port to connect to instead of the upstream's.
    pub port: u16,
    cut: watch::Sender<u64>,
    /// Connections cut so far.
    pub cuts: Arc<AtomicUsize>,
    /// While set, bytes from replication clients wait in the proxy (the server hears nothing
    /// new from them).
    held: Arc<std::sync::atomic::AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Proxy {
    /// Starts a proxy to the local PostgreSQL server.
    pub fn to_postgres() -> Proxy {
        Proxy::start(POSTGRES.parse().unwrap())
    }

    /// `db`'s URL through this proxy (a proxy started with [`Proxy::to_postgres`]).
    pub fn url(&self, db: &TestDb) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{}?sslmode=disable",
            self.port, db.name
        )
    }

    /// `howdah copy` from `src` into `dst`, both connections through this proxy.
    pub fn copy(&self, src: &TestDb, dst: &TestDb) -> Howdah {
        Howdah::copy(&self.url(src), &self.url(dst))
    }

    /// Starts a proxy to `upstream` on a free loopback port.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, _) = watch::channel(0u64);
        let cuts = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, counter, hold) = (cut.clone(), cuts.clone(), held.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut rx = tx.subscribe();
                let counter = counter.clone();
                let hold = hold.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client_rx, client_tx) = client.into_split();
                    let (server_rx, mut server_tx) = server.into_split();
                    // The startup packet (length first, read whole) says whether this is a
                    // replication connection.
                    let mut len = [0u8; 4];
                    if client_rx.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let n = (u32::from_be_bytes(len) as usize).clamp(4, 1 << 16);
                    let mut first = len.to_vec();
                    first.resize(n, 0);
                    if client_rx.read_exact(&mut first[4..]).await.is_err() {
                        return;
                    }
                    let replication = first.windows(12).any(|w| w == b"replication\0");
                    if server_tx.write_all(&first).await.is_err() {
                        return;
                    }
                    let hold = replication.then_some(hold);
                    tokio::select! {
                        _ = async {
                            tokio::join!(
                                pump(client_rx, server_tx, hold),
                                pump(server_rx, client_tx, None)
                            )
                        } => {}
                        // As a network fault: both sides lose the connection mid-message
                        // (the halves drop with the pumps).
                        _ = rx.changed() => {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            cuts,
            held,
            _runtime: runtime,
        }
    }

    /// Holds (`true`) or releases what replication clients send: while held, the server
    /// receives nothing new on replication connections (standby status updates included), as
    /// over a stalled link; other sessions pass.
    pub fn hold_replication(&self, on: bool) {
        self.held.store(on, Ordering::SeqCst);
    }

    /// Cuts every connection up to `cuts` times, each time a `COPY` into `dst` is running, for
    /// at most `within` after the first COPY is seen (which may take a while on a loaded
    /// machine: up to a minute); returns how many cuts happened.
    pub fn cut_during_copy(&self, dst: &TestDb, cuts: usize, within: std::time::Duration) -> usize {
        let started = std::time::Instant::now();
        let mut first: Option<std::time::Instant> = None;
        let mut done = 0;
        while done < cuts {
            match first {
                Some(at) if at.elapsed() >= within => break,
                None if started.elapsed() >= std::time::Duration::from_secs(60) => break,
                _ => {}
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            let copying = dst.query(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND query LIKE 'COPY%' AND state = 'active'",
                dst.name
            ));
            if copying != "0" {
                first.get_or_insert_with(std::time::Instant::now);
                self.cut_all();
                done += 1;
            }
        }
        done
    }

    /// Cuts every connection open right now.
    pub fn cut_all(&self) {
        self.cut.send_modify(|g| *g += 1);
    }
}

/// Forwards bytes from `from` to `to` until either side closes; with `hold`, waits while it
/// is set before passing bytes on.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hold: Option<Arc<std::sync::atomic::AtomicBool>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(h) = &hold {
            while h.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
