//! libpq-style connection URLs: parsing, `PG*` variables, `.pgpass`, `sslmode`, redaction.
//!
//! tokio-postgres reads no environment, no `.pgpass`, and knows only `disable`/`prefer`/
//! `require`; users expect libpq's behaviour, so this module supplies it.

pub mod mysql;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// libpq's `sslmode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plain first, TLS if the server insists (treated as `prefer`: tokio-postgres has no retry).
    Allow,
    /// TLS if the server offers it, certificate not verified (libpq's default).
    Prefer,
    /// TLS required, certificate not verified.
    Require,
    /// TLS required, certificate chain verified, host name not.
    VerifyCa,
    /// TLS required, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<Self> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Config(format!(
                    "invalid sslmode \"{other}\": use disable, allow, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }
}

/// A parsed PostgreSQL connection target; `Display` never shows the password.
#[derive(Clone)]
pub struct PgUrl {
    /// Host name, IP address, or a Unix socket directory (starts with `/`).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Login role.
    pub user: String,
    /// Password, from the URL, `PGPASSWORD` or `.pgpass`.
    password: Option<String>,
    /// Database name.
    pub dbname: String,
    /// TLS policy.
    pub sslmode: SslMode,
    /// CA bundle for `verify-ca`/`verify-full` (`sslrootcert`).
    pub sslrootcert: Option<PathBuf>,
    /// Connect timeout (`connect_timeout`, default 10 s; `0` waits forever, as in libpq).
    pub connect_timeout: Option<Duration>,
    /// `application_name` reported to the server.
    pub application_name: String,
    /// The TLS connector, built once: loading the system certificate store costs ~100 ms.
    tls: std::sync::Arc<std::sync::OnceLock<postgres_native_tls::MakeTlsConnector>>,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({self})")
    }
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "postgres://{}@{}:{}/{}",
            self.user,
            url_host(&self.host),
            self.port,
            self.dbname
        )
    }
}

/// A host as a URL writes it: an IPv6 address in brackets.
pub(crate) fn url_host(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') {
        format!("[{host}]").into()
    } else {
        host.into()
    }
}

/// Where the process environment is read from; a trait-free struct so tests can pass their own.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGPASSFILE`, `PGSSLROOTCERT`.
    pub vars: std::collections::HashMap<String, String>,
    /// The user's home directory, for `~/.pgpass`.
    pub home: Option<PathBuf>,
}

impl Env {
    /// Reads the libpq variables of this process.
    pub fn from_process() -> Self {
        let names = [
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE",
            "PGSSLMODE",
            "PGPASSFILE",
            "PGSSLROOTCERT",
            "PGCONNECT_TIMEOUT",
            "PGAPPNAME",
            "USER",
        ];
        let vars = names
            .iter()
            .filter_map(|n| std::env::var(n).ok().map(|v| (n.to_string(), v)))
            .collect();
        Env {
            vars,
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

fn decode(part: &str, what: &str) -> Result<String> {
    percent_decode_str(part)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::Config(format!(
                "the {what} in the connection URL is not valid UTF-8 after percent-decoding"
            ))
        })
}

/// What to say when a URL does not split where it should; never quotes the parts.
const ENCODE_HINT: &str =
    "a ':', '/', '?', '@' or '%' inside the user name or password must be percent-encoded";

/// Removes a password from a URL-shaped string, for messages about URLs that failed to parse.
pub fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        // Not a URL: a key=value string may hold `password=`; show nothing of it.
        return "(a connection string that is not a URL)".to_string();
    };
    let scheme = &url[..scheme_end + 3];
    let rest = &url[scheme_end + 3..];
    // The last '@' ends the user info even when an unencoded '/', '?' or ':' sits in the
    // password; everything before it except the user name is dropped.
    let mut out = match rest.rfind('@') {
        Some(at) => {
            let user = rest.split([':', '@', '/', '?']).next().unwrap_or("");
            format!("{scheme}{user}@{}", &rest[at + 1..])
        }
        None => format!("{scheme}{rest}"),
    };
    // Query parameters may carry `password=`; drop the query entirely from messages.
    if let Some(q) = out.find('?') {
        out.truncate(q);
    }
    out
}

impl PgUrl {
    /// Parses `postgres://` / `postgresql://` URLs the way libpq does, filling gaps from `env`.
    pub fn parse(url: &str, env: &Env) -> Result<Self> {
        let bad =
            |why: &str| Error::Config(format!("invalid connection URL {}: {why}", redact(url)));
        let rest = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
            .ok_or_else(|| bad("expected postgres:// or postgresql://"))?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match main.split_once('/') {
            Some((a, p)) => (a, p),
            None => (main, ""),
        };
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut user = None;
        let mut password = None;
        if let Some(ui) = userinfo {
            match ui.split_once(':') {
                Some((u, p)) => {
                    user = Some(decode(u, "user name")?);
                    password = Some(decode(p, "password")?);
                }
                None => user = Some(decode(ui, "user name")?),
            }
        }
        if hostport.contains(',') {
            return Err(bad(
                "several hosts in one URL are not supported; name one host",
            ));
        }
        let (mut host, mut port) = if let Some(stripped) = hostport.strip_prefix('[') {
            let (h, after) = stripped
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in host"))?;
            (
                Some(h.to_string()),
                after.strip_prefix(':').map(str::to_string),
            )
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (Some(decode(h, "host")?), Some(p.to_string())),
                None if hostport.is_empty() => (None, None),
                None => (Some(decode(hostport, "host")?), None),
            }
        };
        let mut dbname = if path.is_empty() {
            None
        } else {
            Some(decode(path, "database name")?)
        };
        let mut sslmode = None;
        let mut sslrootcert = None;
        let mut timeout = None;
        let mut app = None;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v, "query parameter")?;
            match k {
                "sslmode" => sslmode = Some(SslMode::parse(&v)?),
                "sslrootcert" => sslrootcert = Some(PathBuf::from(v)),
                "connect_timeout" => timeout = Some(v),
                "application_name" => app = Some(v),
                "user" => user = Some(v),
                "password" => password = Some(v),
                "host" => host = Some(v),
                "port" => port = Some(v),
                "dbname" => dbname = Some(v),
                other
                    if other.len() <= 40
                        && other.chars().all(|c| c.is_ascii_lowercase() || c == '_') =>
                {
                    return Err(bad(&format!("unsupported parameter \"{other}\"")))
                }
                // Not a parameter name: most likely a password with an unencoded '?'.
                _ => return Err(bad(ENCODE_HINT)),
            }
        }
        let host = host
            .filter(|h| !h.is_empty())
            .or_else(|| env.get("PGHOST").map(str::to_string))
            .unwrap_or_else(default_host);
        let port_text = port
            .filter(|p| !p.is_empty())
            .or_else(|| env.get("PGPORT").map(str::to_string))
            .unwrap_or_else(|| "5432".to_string());
        let port: u16 = port_text
            .parse()
            .map_err(|_| bad(&format!("the port is not a number ({ENCODE_HINT})")))?;
        let user = user
            .filter(|u| !u.is_empty())
            .or_else(|| env.get("PGUSER").map(str::to_string))
            .or_else(|| env.get("USER").map(str::to_string))
            .unwrap_or_else(|| "postgres".to_string());
        let dbname = dbname
            .filter(|d| !d.is_empty())
            .or_else(|| env.get("PGDATABASE").map(str::to_string))
            .unwrap_or_else(|| user.clone());
        let sslmode = match sslmode {
            Some(m) => m,
            None => match env.get("PGSSLMODE") {
                Some(m) => SslMode::parse(m)?,
                None => SslMode::Prefer,
            },
        };
        let timeout_text = timeout.or_else(|| env.get("PGCONNECT_TIMEOUT").map(str::to_string));
        let connect_timeout = match timeout_text {
            Some(t) => {
                let secs: u64 = t.parse().map_err(|_| {
                    bad(&format!(
                        "connect_timeout \"{t}\" is not a number of seconds"
                    ))
                })?;
                // libpq: 0 means wait forever, and anything below 2 s counts as 2 s.
                (secs > 0).then(|| Duration::from_secs(secs.max(2)))
            }
            None => Some(Duration::from_secs(10)),
        };
        let sslrootcert = sslrootcert.or_else(|| env.get("PGSSLROOTCERT").map(PathBuf::from));
        let mut parsed = PgUrl {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            sslrootcert,
            connect_timeout,
            application_name: app
                .or_else(|| env.get("PGAPPNAME").map(str::to_string))
                .unwrap_or_else(|| "howdah".into()),
            tls: Default::default(),
        };
        if parsed.password.is_none() {
            parsed.password = env
                .get("PGPASSWORD")
                .map(str::to_string)
                .or_else(|| parsed.pgpass_lookup(env));
        }
        Ok(parsed)
    }

    /// Whether a password is known for this connection (never the password itself).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// The password, for code that must hand it to the driver.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The same server with another database name.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut other = self.clone();
        other.dbname = dbname.to_string();
        other
    }

    fn pgpass_lookup(&self, env: &Env) -> Option<String> {
        let path = env
            .get("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| env.home.as_ref().map(|h| h.join(".pgpass")))?;
        let text = std::fs::read_to_string(path).ok()?;
        let port = self.port.to_string();
        let host = if self.host.starts_with('/') {
            "localhost"
        } else {
            self.host.as_str()
        };
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .find_map(|line| {
                let fields = split_pgpass(line);
                if fields.len() != 5 {
                    return None;
                }
                let matches = |pattern: &str, value: &str| pattern == "*" || pattern == value;
                (matches(&fields[0], host)
                    && matches(&fields[1], &port)
                    && matches(&fields[2], &self.dbname)
                    && matches(&fields[3], &self.user))
                .then(|| fields[4].clone())
            })
    }

    /// The tokio-postgres configuration for this URL (TLS handled by [`tls_connector`](Self::tls_connector)).
    pub fn to_config(&self) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(&self.dbname)
            .application_name(&self.application_name)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        if let Some(pw) = &self.password {
            cfg.password(pw);
        }
        if let Some(t) = self.connect_timeout {
            cfg.connect_timeout(t);
        }
        cfg.ssl_mode(match self.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Allow | SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        cfg
    }

    /// A TLS connector that enforces this URL's `sslmode`, built on first use.
    pub fn tls_connector(&self) -> Result<postgres_native_tls::MakeTlsConnector> {
        if let Some(c) = self.tls.get() {
            return Ok(c.clone());
        }
        let c = self.build_tls_connector()?;
        Ok(self.tls.get_or_init(|| c).clone())
    }

    fn build_tls_connector(&self) -> Result<postgres_native_tls::MakeTlsConnector> {
        Ok(postgres_native_tls::MakeTlsConnector::new(
            self.native_tls_connector()?,
        ))
    }

    /// The native-tls connector that enforces this URL's `sslmode` (the replication
    /// connection, which tokio-postgres cannot open, uses it directly).
    pub fn native_tls_connector(&self) -> Result<native_tls::TlsConnector> {
        let mut builder = native_tls::TlsConnector::builder();
        match self.sslmode {
            SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require => {
                builder
                    .danger_accept_invalid_certs(true)
                    .danger_accept_invalid_hostnames(true);
            }
            SslMode::VerifyCa => {
                builder.danger_accept_invalid_hostnames(true);
            }
            SslMode::VerifyFull => {}
        }
        if let Some(path) = &self.sslrootcert {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!("cannot read sslrootcert {}: {e}", path.display()))
            })?;
            let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| {
                Error::Config(format!(
                    "sslrootcert {} is not a PEM certificate: {e}",
                    path.display()
                ))
            })?;
            // The given CA replaces the system store, as with libpq: a certificate from any
            // public CA must not pass for the user's private one.
            builder
                .disable_built_in_roots(true)
                .add_root_certificate(cert);
        }
        builder
            .build()
            .map_err(|e| Error::Config(format!("cannot set up TLS: {e}")))
    }
}

/// libpq's default when no host is given: the Unix socket directory (Debian's), else localhost.
fn default_host() -> String {
    let dir = "/var/run/postgresql";
    if std::path::Path::new(dir).is_dir() {
        dir.to_string()
    } else {
        "localhost".to_string()
    }
}

/// Splits a `.pgpass` line on unescaped `:`, undoing `\:` and `\\`.
fn split_pgpass(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ':' => fields.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    fields.push(current);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            home: None,
        }
    }

    #[test]
    fn parses_full_url() -> Result<()> {
        let u = PgUrl::parse(
            "postgresql://bob:p%40ss@db.example:6543/app?sslmode=verify-full",
            &env(&[]),
        )?;
        assert_eq!(
            (u.host.as_str(), u.port, u.user.as_str(), u.dbname.as_str()),
            ("db.example", 6543, "bob", "app")
        );
        assert_eq!(u.password(), Some("p@ss"));
        assert_eq!(u.sslmode, SslMode::VerifyFull);
        assert_eq!(u.to_string(), "postgres://bob@db.example:6543/app");
        Ok(())
    }

    #[test]
    fn fills_from_environment() -> Result<()> {
        let u = PgUrl::parse(
            "postgres://",
            &env(&[
                ("PGHOST", "h"),
                ("PGUSER", "u"),
                ("PGPASSWORD", "pw"),
                ("PGSSLMODE", "disable"),
            ]),
        )?;
        assert_eq!(
            (u.host.as_str(), u.user.as_str(), u.dbname.as_str()),
            ("h", "u", "u")
        );
        assert_eq!(u.password(), Some("pw"));
        assert_eq!(u.sslmode, SslMode::Disable);
        Ok(())
    }

    #[test]
    fn ipv6_and_defaults() -> Result<()> {
        let u = PgUrl::parse("postgres://[::1]/x", &env(&[]))?;
        assert_eq!((u.host.as_str(), u.port), ("::1", 5432));
        assert_eq!(u.to_string(), "postgres://postgres@[::1]:5432/x");
        Ok(())
    }

    #[test]
    fn rejects_bad_sslmode_without_leaking_password() {
        let err = PgUrl::parse("postgres://u:SENTINEL@h/db?sslmode=bogus", &env(&[]))
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("invalid sslmode"), "{msg}");
        assert!(!msg.contains("SENTINEL"));
        let err = PgUrl::parse("postgres://u:SENTINEL@h:notaport/db", &env(&[]))
            .err()
            .map(|e| e.to_string());
        let msg = err.unwrap_or_default();
        assert!(msg.contains("port") && !msg.contains("SENTINEL"), "{msg}");
    }

    #[test]
    fn never_echoes_a_password_with_unencoded_characters() {
        for url in [
            "postgres://app:Xy3/SECRETpart@db.example/app",
            "postgres://app:pa?SECRET@db.example/app",
            "postgres://app:pa:SECRET@db.example/app",
            "host=db password=SECRET",
        ] {
            let msg = PgUrl::parse(url, &env(&[])).err().map(|e| e.to_string());
            if let Some(msg) = msg {
                assert!(!msg.contains("SECRET"), "{msg}");
            }
            assert!(!redact(url).contains("SECRET"), "{}", redact(url));
        }
    }

    #[test]
    fn redacts() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db?password=x"),
            "postgres://u@h:1/db"
        );
        assert_eq!(redact("mysql://root@h/db"), "mysql://root@h/db");
    }

    #[test]
    fn reads_pgpass() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("howdah-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Internal(e.to_string()))?;
        let file = dir.join("pgpass");
        std::fs::write(&file, "# comment\nother:*:*:*:no\nh:5432:db:u:pa\\:ss\n")
            .map_err(|e| Error::Internal(e.to_string()))?;
        let u = PgUrl::parse(
            "postgres://u@h/db",
            &env(&[("PGPASSFILE", file.to_str().unwrap_or_default())]),
        )?;
        assert_eq!(u.password(), Some("pa:ss"));
        let _ = std::fs::remove_dir_all(dir);
        Ok(())
    }
}
