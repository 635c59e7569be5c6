//! MySQL and MariaDB connection URLs: `mysql://user[:password]@host[:port]/database[?params]`
//! (also `mariadb://`). `Display` never shows the password.
//!
//! Parameters: `ssl-mode` (`disabled`, the default; `required`: encrypted, certificate not
//! checked; `verify_ca`: chain checked against `ssl-ca` or the system store; `verify_identity`:
//! chain and host name), `ssl-ca` (a PEM file), `connect_timeout` (seconds, default 10). A
//! missing password comes from `MYSQL_PWD`, as with the `mysql` client.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use percent_encoding::percent_decode_str;

use super::redact;
use crate::error::{Error, Result};

/// TLS policy of a MySQL connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MySslMode {
    /// No TLS.
    Disabled,
    /// TLS, certificate not checked.
    Required,
    /// TLS, certificate chain checked.
    VerifyCa,
    /// TLS, chain and host name checked.
    VerifyIdentity,
}

/// A parsed MySQL/MariaDB connection target.
#[derive(Clone)]
pub struct MyUrl {
    /// Host name or IP address.
    pub host: String,
    /// TCP port (default 3306).
    pub port: u16,
    /// Login user.
    pub user: String,
    password: Option<String>,
    /// The database (schema) to copy.
    pub database: String,
    /// TLS policy.
    pub ssl_mode: MySslMode,
    /// CA bundle for the verifying modes.
    pub ssl_ca: Option<PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Duration,
}

impl fmt::Debug for MyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MyUrl({self})")
    }
}

impl fmt::Display for MyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mysql://{}@{}:{}/{}",
            self.user,
            super::url_host(&self.host),
            self.port,
            self.database
        )
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

impl MyUrl {
    /// Whether a password is set (from the URL or `MYSQL_PWD`).
    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    /// Parses a `mysql://` or `mariadb://` URL; `mysql_pwd` is the `MYSQL_PWD` variable.
    pub fn parse(url: &str, mysql_pwd: Option<&str>) -> Result<Self> {
        let bad =
            |why: &str| Error::Config(format!("invalid connection URL {}: {why}", redact(url)));
        let rest = url
            .strip_prefix("mysql://")
            .or_else(|| url.strip_prefix("mariadb://"))
            .ok_or_else(|| bad("expected mysql:// or mariadb://"))?;
        let (main, query) = match rest.split_once('?') {
            Some((m, q)) => (m, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match main.rsplit_once('@') {
            Some((user, hostpath)) => (Some(user), hostpath),
            None => (None, main),
        };
        let (hostport, database) = match path.split_once('/') {
            Some((h, d)) => (h, d),
            None => (path, ""),
        };
        let (mut user, mut password) = (String::from("root"), None);
        if let Some(ui) = authority {
            match ui.split_once(':') {
                Some((u, p)) => {
                    user = decode(u, "user name")?;
                    password = Some(decode(p, "password")?);
                }
                None => user = decode(ui, "user name")?,
            }
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, after) = h
                .split_once(']')
                .ok_or_else(|| bad("unclosed '[' in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after the host")),
            };
            (h.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| bad("the port is not a number between 1 and 65535"))?,
            None => 3306,
        };
        let database = decode(database.trim_end_matches('/'), "database name")?;
        if database.is_empty() {
            return Err(bad("name the database to copy: mysql://user@host/database"));
        }
        let mut out = MyUrl {
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host
            },
            port,
            user,
            password: password.or_else(|| mysql_pwd.map(str::to_string)),
            database,
            ssl_mode: MySslMode::Disabled,
            ssl_ca: None,
            connect_timeout: Duration::from_secs(10),
        };
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = decode(v, "parameter")?;
            match k {
                "ssl-mode" | "ssl_mode" | "sslmode" => {
                    out.ssl_mode = match v.to_ascii_lowercase().as_str() {
                        "disabled" | "disable" => MySslMode::Disabled,
                        "required" | "require" | "preferred" | "prefer" => MySslMode::Required,
                        "verify_ca" | "verify-ca" => MySslMode::VerifyCa,
                        "verify_identity" | "verify-identity" | "verify-full" => {
                            MySslMode::VerifyIdentity
                        }
                        other => {
                            return Err(Error::Config(format!(
                                "invalid ssl-mode \"{other}\": use disabled, required, verify_ca or verify_identity"
                            )))
                        }
                    }
                }
                "ssl-ca" | "ssl_ca" | "sslrootcert" => out.ssl_ca = Some(PathBuf::from(v)),
                "connect_timeout" => {
                    out.connect_timeout = Duration::from_secs(v.parse().map_err(|_| {
                        Error::Config("connect_timeout must be a number of seconds".into())
                    })?)
                }
                "password" => out.password = Some(v),
                "user" => out.user = v,
                other => {
                    return Err(Error::Config(format!(
                        "unknown parameter \"{other}\" in the MySQL URL {}; known: ssl-mode, ssl-ca, connect_timeout",
                        redact(url)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The password, for the driver only.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Driver options for this target.
    pub fn to_opts(&self) -> mysql_async::Opts {
        let mut b = mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(self.password.clone())
            .db_name(Some(self.database.clone()))
            .prefer_socket(false)
            .stmt_cache_size(Some(32));
        if self.ssl_mode != MySslMode::Disabled {
            let mut ssl = mysql_async::SslOpts::default();
            if let Some(ca) = &self.ssl_ca {
                ssl = ssl.with_root_certs(vec![ca.clone().into()]);
            }
            ssl = ssl
                .with_danger_accept_invalid_certs(self.ssl_mode == MySslMode::Required)
                .with_danger_skip_domain_validation(self.ssl_mode != MySslMode::VerifyIdentity);
            b = b.ssl_opts(Some(ssl));
        }
        b.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_the_password() -> Result<()> {
        let u = MyUrl::parse(
            "mysql://app:s%40cret@db.example:3307/shop?ssl-mode=required",
            None,
        )?;
        assert_eq!(u.user, "app");
        assert_eq!(u.password(), Some("s@cret"));
        assert_eq!((u.host.as_str(), u.port), ("db.example", 3307));
        assert_eq!(u.database, "shop");
        assert_eq!(u.ssl_mode, MySslMode::Required);
        assert_eq!(u.to_string(), "mysql://app@db.example:3307/shop");
        let m = MyUrl::parse("mariadb://root@127.0.0.1/x", Some("pw"))?;
        assert_eq!((m.port, m.password()), (3306, Some("pw")));
        assert!(MyUrl::parse("mysql://root@h/", None).is_err());
        let err = MyUrl::parse("mysql://u:topsecret@h/db?bogus=1", None)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("bogus") && !err.contains("topsecret"), "{err}");
        Ok(())
    }
}
