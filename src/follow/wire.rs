//! The replication connection to a PostgreSQL source: a walsender session opened with
//! `replication=database`, which runs replication commands (`CREATE_REPLICATION_SLOT`,
//! `START_REPLICATION`) and then streams WAL in CopyBoth mode.
//!
//! tokio-postgres cannot open such a session (no `replication` startup parameter, no CopyBoth),
//! so this is the small part written here: startup, authentication (cleartext, MD5,
//! SCRAM-SHA-256 through `postgres-protocol`), TLS through native-tls with the URL's `sslmode`,
//! the simple query protocol, and CopyData frames both ways. Invariants: one message is read
//! whole before it is handed out (never more than one message of lookahead beyond the read
//! buffer); the session pins the text styles howdah's target sessions use (UTC, ISO dates,
//! `extra_float_digits = 3`), so values decoded from the stream read back exactly there.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256, SCRAM_SHA_256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::conninfo::{PgUrl, SslMode};
use crate::error::{Error, Result};

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// A walsender session. Dropping it closes the connection (and ends an exported snapshot).
pub struct ReplConn {
    io: Box<dyn Stream>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    url: String,
}

/// One backend message: its tag and body.
pub struct Frame {
    /// Message type byte.
    pub tag: u8,
    /// Body without the length word.
    pub body: Bytes,
}

/// The result of a simple query: rows of text values (NULL as `None`).
pub type Rows = Vec<Vec<Option<String>>>;

impl ReplConn {
    /// Opens a replication session to `url`'s database.
    pub async fn connect(url: &PgUrl) -> Result<Self> {
        let shown = url.to_string();
        let fail = |reason: String| Error::Connect {
            side: "source",
            url: shown.clone(),
            reason: format!("replication connection: {reason}"),
        };
        let io = open(url).await.map_err(|e| fail(e.to_string()))?;
        let mut conn = ReplConn {
            io,
            rbuf: BytesMut::with_capacity(64 * 1024),
            wbuf: BytesMut::with_capacity(1024),
            url: shown.clone(),
        };
        let params = [
            ("user", url.user.as_str()),
            ("database", url.dbname.as_str()),
            ("replication", "database"),
            ("application_name", url.application_name.as_str()),
            (
                "options",
                "-c datestyle=ISO,YMD -c timezone=UTC -c intervalstyle=postgres -c extra_float_digits=3",
            ),
        ];
        frontend::startup_message(params.iter().copied(), &mut conn.wbuf)
            .map_err(|e| fail(e.to_string()))?;
        conn.flush().await?;
        conn.authenticate(url).await.map_err(|e| match e {
            Error::Query { reason, .. } => fail(reason),
            other => other,
        })?;
        Ok(conn)
    }

    async fn authenticate(&mut self, url: &PgUrl) -> Result<()> {
        let password = || {
            url.password()
                .map(str::as_bytes)
                .ok_or_else(|| Error::Query {
                    what: "authenticating".into(),
                    reason: "the server asks for a password and none was given".into(),
                })
        };
        let mut scram: Option<ScramSha256> = None;
        loop {
            let f = self.read_frame().await?;
            match f.tag {
                b'R' => {
                    let mut b = f.body.clone();
                    let kind = get_i32(&mut b)?;
                    match kind {
                        0 => {}
                        3 => {
                            frontend::password_message(password()?, &mut self.wbuf)
                                .map_err(io_err)?;
                            self.flush().await?;
                        }
                        5 => {
                            let mut salt = [0u8; 4];
                            if b.remaining() < 4 {
                                return Err(protocol("short MD5 salt"));
                            }
                            b.copy_to_slice(&mut salt);
                            let hash = postgres_protocol::authentication::md5_hash(
                                url.user.as_bytes(),
                                password()?,
                                salt,
                            );
                            frontend::password_message(hash.as_bytes(), &mut self.wbuf)
                                .map_err(io_err)?;
                            self.flush().await?;
                        }
                        10 => {
                            let mechs = String::from_utf8_lossy(&b).to_string();
                            if !mechs.split('\0').any(|m| m == SCRAM_SHA_256) {
                                return Err(protocol(&format!(
                                    "the server offers no supported SASL mechanism ({mechs})"
                                )));
                            }
                            let s = ScramSha256::new(password()?, ChannelBinding::unsupported());
                            frontend::sasl_initial_response(
                                SCRAM_SHA_256,
                                s.message(),
                                &mut self.wbuf,
                            )
                            .map_err(io_err)?;
                            scram = Some(s);
                            self.flush().await?;
                        }
                        11 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| protocol("SASL out of order"))?;
                            s.update(&b).map_err(|e| protocol(&e.to_string()))?;
                            frontend::sasl_response(s.message(), &mut self.wbuf).map_err(io_err)?;
                            self.flush().await?;
                        }
                        12 => {
                            let s = scram
                                .as_mut()
                                .ok_or_else(|| protocol("SASL out of order"))?;
                            s.finish(&b).map_err(|e| protocol(&e.to_string()))?;
                        }
                        other => {
                            return Err(protocol(&format!(
                                "unsupported authentication method {other}"
                            )))
                        }
                    }
                }
                b'E' => return Err(server_error(&f.body, "authenticating")),
                b'Z' => return Ok(()),
                _ => {}
            }
        }
    }

    /// Runs one command with the simple query protocol and returns its rows (text).
    pub async fn simple_query(&mut self, sql: &str) -> Result<Rows> {
        frontend::query(sql, &mut self.wbuf).map_err(io_err)?;
        self.flush().await?;
        let mut rows = Vec::new();
        let mut failure = None;
        loop {
            let f = self.read_frame().await?;
            match f.tag {
                b'D' => rows.push(data_row(&f.body)?),
                b'E' => failure = Some(server_error(&f.body, sql)),
                b'Z' => break,
                _ => {}
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(rows),
        }
    }

    /// Sends `START_REPLICATION ...` and waits for the server to enter CopyBoth mode.
    pub async fn start_copy_both(&mut self, sql: &str) -> Result<()> {
        frontend::query(sql, &mut self.wbuf).map_err(io_err)?;
        self.flush().await?;
        loop {
            let f = self.read_frame().await?;
            match f.tag {
                b'W' => return Ok(()),
                b'E' => {
                    let e = server_error(&f.body, "starting replication");
                    // The server follows an error with ReadyForQuery.
                    let _ = self.read_frame().await;
                    return Err(e);
                }
                _ => {}
            }
        }
    }

    /// The next CopyData payload of the stream; `None` when the server ended the stream.
    pub async fn next_copy_data(&mut self) -> Result<Option<Bytes>> {
        loop {
            let f = self.read_frame().await?;
            match f.tag {
                b'd' => return Ok(Some(f.body)),
                b'c' | b'C' | b'Z' => return Ok(None),
                b'E' => return Err(server_error(&f.body, "streaming changes")),
                _ => {}
            }
        }
    }

    /// Sends one CopyData message.
    pub async fn send_copy_data(&mut self, payload: &[u8]) -> Result<()> {
        self.wbuf.put_u8(b'd');
        self.wbuf.put_i32(4 + payload.len() as i32);
        self.wbuf.put_slice(payload);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        let buf = self.wbuf.split();
        self.io.write_all(&buf).await.map_err(|e| self.lost(e))?;
        self.io.flush().await.map_err(|e| self.lost(e))
    }

    /// Reads one whole message.
    pub async fn read_frame(&mut self) -> Result<Frame> {
        loop {
            if self.rbuf.len() >= 5 {
                let len =
                    i32::from_be_bytes([self.rbuf[1], self.rbuf[2], self.rbuf[3], self.rbuf[4]]);
                if len < 4 {
                    return Err(protocol("bad message length"));
                }
                let total = 1 + len as usize;
                if self.rbuf.len() >= total {
                    let mut msg = self.rbuf.split_to(total);
                    let tag = msg[0];
                    msg.advance(5);
                    return Ok(Frame {
                        tag,
                        body: msg.freeze(),
                    });
                }
                self.rbuf.reserve(total - self.rbuf.len());
            } else {
                self.rbuf.reserve(64 * 1024);
            }
            let n = self
                .io
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| self.lost(e))?;
            if n == 0 {
                return Err(Error::Transient {
                    what: format!("replication connection to {}", self.url),
                    reason: "the server closed the connection".into(),
                });
            }
        }
    }

    fn lost(&self, e: std::io::Error) -> Error {
        Error::Transient {
            what: format!("replication connection to {}", self.url),
            reason: e.to_string(),
        }
    }
}

async fn open(url: &PgUrl) -> std::io::Result<Box<dyn Stream>> {
    let timeout = url
        .connect_timeout
        .unwrap_or(std::time::Duration::from_secs(3600));
    let connect = async {
        if url.host.starts_with('/') {
            let path = format!("{}/.s.PGSQL.{}", url.host, url.port);
            let s = tokio::net::UnixStream::connect(path).await?;
            return Ok::<Box<dyn Stream>, std::io::Error>(Box::new(s));
        }
        let mut s = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
        let _ = s.set_nodelay(true);
        if url.sslmode == SslMode::Disable {
            return Ok(Box::new(s));
        }
        let mut req = BytesMut::new();
        frontend::ssl_request(&mut req);
        s.write_all(&req).await?;
        let mut answer = [0u8; 1];
        s.read_exact(&mut answer).await?;
        if answer[0] != b'S' {
            if matches!(url.sslmode, SslMode::Allow | SslMode::Prefer) {
                return Ok(Box::new(s));
            }
            return Err(std::io::Error::other(
                "the server does not accept TLS (sslmode requires it)",
            ));
        }
        let connector = url
            .native_tls_connector()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tls = tokio_native_tls::TlsConnector::from(connector)
            .connect(&url.host, s)
            .await
            .map_err(std::io::Error::other)?;
        Ok(Box::new(tls))
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| std::io::Error::other(format!("timed out after {} s", timeout.as_secs())))?
}

fn data_row(body: &Bytes) -> Result<Vec<Option<String>>> {
    let mut b = body.clone();
    if b.remaining() < 2 {
        return Err(protocol("short DataRow"));
    }
    let n = b.get_i16();
    let mut out = Vec::with_capacity(n.max(0) as usize);
    for _ in 0..n {
        let len = get_i32(&mut b)?;
        if len < 0 {
            out.push(None);
            continue;
        }
        let len = len as usize;
        if b.remaining() < len {
            return Err(protocol("short DataRow value"));
        }
        out.push(Some(String::from_utf8_lossy(&b.split_to(len)).into_owned()));
    }
    Ok(out)
}

/// The server's message (severity, SQLSTATE and text) of an ErrorResponse body.
fn server_error(body: &Bytes, what: &str) -> Error {
    let mut message = String::new();
    let mut code = String::new();
    for field in body.split(|b| *b == 0) {
        let Some((&kind, text)) = field.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(text);
        match kind {
            b'M' => message = text.into_owned(),
            b'C' => code = text.into_owned(),
            _ => {}
        }
    }
    Error::Query {
        what: what.to_string(),
        reason: format!("{message} (SQLSTATE {code})"),
    }
}

fn get_i32(b: &mut Bytes) -> Result<i32> {
    if b.remaining() < 4 {
        return Err(protocol("short message"));
    }
    Ok(b.get_i32())
}

fn protocol(what: &str) -> Error {
    Error::Query {
        what: "replication protocol".into(),
        reason: what.to_string(),
    }
}

fn io_err(e: std::io::Error) -> Error {
    protocol(&e.to_string())
}
