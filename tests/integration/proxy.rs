//! A TCP proxy on 127.0.0.1 that can cut every connection passing through it, and copies
//! whose source and target connections both pass through it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::AsyncWriteExt;
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
        let (tx, counter) = (cut.clone(), cuts.clone());
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut rx = tx.subscribe();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.changed() => {
                            counter.fetch_add(1, Ordering::SeqCst);
                            // As a network fault: both sides lose the connection mid-message.
                            let _ = client.shutdown().await;
                            let _ = server.shutdown().await;
                        }
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            cuts,
            _runtime: runtime,
        }
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
