//! Opening PostgreSQL connections with sluice's session settings.

use tokio_postgres::Client;

use crate::conninfo::PgUrl;
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
    let tls = url.tls_connector()?;
    let (client, connection) = url
        .to_config()
        .connect(tls)
        .await
        .map_err(|e| Error::Connect {
            side: side.as_str(),
            url: url.to_string(),
            reason: db_reason(&e),
        })?;
    tokio::spawn(async move {
        // The error also surfaces on the next query of the client; logging it here only helps
        // when the connection dies between queries.
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {}", db_reason(&e));
        }
    });
    let mut setup = String::from(
        "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; \
         SET extra_float_digits = 3; SET standard_conforming_strings = on; SET statement_timeout = 0; \
         SET lock_timeout = 0; SET idle_in_transaction_session_timeout = 0;",
    );
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
    Ok(client)
}
