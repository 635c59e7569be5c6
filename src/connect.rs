//! Opening PostgreSQL and MySQL/MariaDB connections with howdah's session settings.

use tokio_postgres::Client;

use mysql_async::prelude::Queryable;

use crate::conninfo::mysql::MyUrl;
use crate::conninfo::{PgUrl, SslMode};
use crate::error::{db_reason, Error, Result};

/// Which end of the copy a connection serves; decides session settings and error wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The database read from.
    Source,
    /// The database written to.
    Target,
}

impl Side {
    /// `source` or `target`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

/// Connects, spawns the connection driver on the runtime, and applies session settings that
/// make text renderings (key boundaries, sequence values) independent of server defaults.
pub async fn connect(url: &PgUrl, side: Side) -> Result<Client> {
    let fail = |e: tokio_postgres::Error| Error::Connect {
        side: side.as_str(),
        url: url.to_string(),
        reason: db_reason(&e),
    };
    let config = url.to_config();
    // libpq ignores sslmode on Unix sockets; so do we.
    let client = if url.sslmode == SslMode::Disable || url.host.starts_with('/') {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(fail)?;
        tokio::spawn(drive(connection));
        client
    } else {
        let (client, connection) = config.connect(url.tls_connector()?).await.map_err(fail)?;
        tokio::spawn(drive(connection));
        client
    };
    let mut setup = String::from(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
         SET extra_float_digits = 3; SET standard_conforming_strings = on; SET statement_timeout = 0; \
         SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;",
    );
    if side == Side::Source {
        // With row-level security on, COPY would silently skip rows the role may not see;
        // off, it fails instead, as pg_dump does. A reader waiting behind a queued ALTER TABLE
        // would block the application too: give up after a while and say why.
        setup.push_str(" SET row_security = off; SET lock_timeout = '30s';");
        // A chunk's COPY query runs once over many rows: JIT compiling it costs time on every
        // chunk (and every resumed segment) and buys nothing measurable for a plain scan.
        setup.push_str(" SET jit = off;");
    }
    if side == Side::Target {
        // Rows and (later) checkpoints commit atomically, so a lost tail after a server crash is
        // redone on resume; waiting for the WAL flush on every commit buys nothing here.
        setup.push_str(" SET synchronous_commit = off;");
    }
    client
        .batch_execute(&setup)
        .await
        .map_err(|e| Error::Connect {
            side: side.as_str(),
            url: url.to_string(),
            reason: db_reason(&e),
        })?;
    if side == Side::Target {
        // A statement of a killed client (an index build, say) would otherwise run on and
        // commit after a resumed run has read the job's state; PostgreSQL 14+ aborts it.
        let _ = client
            .batch_execute("SET client_connection_check_interval = '1s'")
            .await;
    }
    Ok(client)
}

/// Runs a connection until it closes. Its error also surfaces on the client's next query;
/// logging it here only helps when a connection dies between queries.
async fn drive<F>(connection: F)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    if let Err(e) = connection.await {
        tracing::debug!("connection closed: {}", db_reason(&e));
    }
}

/// Opens a session with the settings every howdah MySQL session uses.
pub async fn connect_mysql(url: &MyUrl) -> Result<mysql_async::Conn> {
    let fail = |reason: String| Error::Connect {
        side: "source",
        url: url.to_string(),
        reason,
    };
    let mut conn = tokio::time::timeout(url.connect_timeout, mysql_async::Conn::new(url.to_opts()))
        .await
        .map_err(|_| {
            fail(format!(
                "timed out after {} s",
                url.connect_timeout.as_secs()
            ))
        })?
        .map_err(|e| fail(e.to_string()))?;
    // UTC so TIMESTAMP values arrive as UTC; utf8mb4 so the server decodes every charset;
    // long network timeouts so a slow target cannot get the source to drop the stream.
    conn.query_drop(
        "SET time_zone = '+00:00', NAMES utf8mb4, SESSION net_write_timeout = 3600, \
         SESSION net_read_timeout = 3600, SESSION wait_timeout = 28800",
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    Ok(conn)
}
