//! A MariaDB server started by a test itself, for what the machine's server cannot do: a
//! binary log (the machine's runs without one). `mariadb-install-db` into a fresh temporary
//! directory, then `mariadbd --log-bin --binlog-format=ROW --binlog-row-image=FULL` on a free
//! port with its own socket and a unique server id; killed and removed when the value is
//! dropped. Runs as user mysql when the tests run as root.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static N: AtomicUsize = AtomicUsize::new(0);

/// `mariadb-install-db` runs one at a time: parallel bootstraps fail on a loaded machine.
static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A running MariaDB server of our own, with a binary log.
pub struct MariaServer {
    dir: PathBuf,
    child: Option<Child>,
    extra: Vec<String>,
    /// Its TCP port on 127.0.0.1.
    pub port: u16,
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

impl MariaServer {
    /// Starts a server with a row-format binary log (and `extra` server options).
    pub fn start(extra: &[&str]) -> MariaServer {
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("howdah-mariadb-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data")).expect("create the server directory");
        // A server of its own temporary directory: at start, mariadbd deletes every `#sql*`
        // file in its tmpdir, which in /tmp would be the machine server's temporary tables.
        std::fs::create_dir_all(dir.join("tmp")).expect("create the server's tmpdir");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg(format!("--datadir={}", dir.join("data").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .arg(format!("--tmpdir={}", dir.join("tmp").display()));
        if running_as_root() {
            let ok = Command::new("chown")
                .args(["-R", "mysql:mysql"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(ok.success(), "chown the server directory");
            install.arg("--user=mysql");
        }
        let out = {
            let _one = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
            install.output().expect("run mariadb-install-db")
        };
        assert!(
            out.status.success(),
            "mariadb-install-db: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut s = MariaServer {
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            port: free_port(),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let d = &self.dir;
        let server_id = 100 + (std::process::id() % 1000) * 10 + N.load(Ordering::SeqCst) as u32;
        let mut cmd = Command::new("mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", d.join("data").display()))
            .arg(format!("--socket={}", d.join("sock").display()))
            .arg(format!("--pid-file={}", d.join("pid").display()))
            .arg(format!("--log-error={}", d.join("err.log").display()))
            .arg(format!("--log-bin={}", d.join("data/binlog").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", d.join("tmp").display()))
            .arg(format!("--server-id={server_id}"))
            .args([
                "--bind-address=127.0.0.1",
                "--binlog-format=ROW",
                "--binlog-row-image=FULL",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=2",
                "--sync-binlog=0",
                "--skip-name-resolve",
                "--character-set-server=utf8mb4",
            ])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if running_as_root() {
            cmd.arg("--user=mysql");
        }
        self.child = Some(cmd.spawn().expect("start mariadbd"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.try_exec("SELECT 1").is_ok() {
                break;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!(
                    "mariadbd exited ({status}): {}",
                    std::fs::read_to_string(d.join("err.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd did not start within 60 s: {}",
                std::fs::read_to_string(d.join("err.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `mysql://root@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL (in database `db` when given) through the `mariadb` client; tab-separated
    /// rows without headers.
    pub fn try_query(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.args([
            "-uroot",
            "-h",
            "127.0.0.1",
            "-P",
            &self.port.to_string(),
            "--batch",
            "--skip-column-names",
            "--default-character-set=utf8mb4",
        ]);
        if let Some(db) = db {
            cmd.arg(db);
        }
        // On stdin: a backlog of statements is longer than an argument may be.
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        {
            use std::io::Write;
            let mut stdin = child.stdin.take().ok_or("no stdin")?;
            stdin.write_all(sql.as_bytes()).map_err(|e| e.to_string())?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    }

    fn try_exec(&self, sql: &str) -> Result<String, String> {
        self.try_query(None, sql)
    }

    /// Runs SQL in database `db`; panics with the client's stderr on failure.
    pub fn exec(&self, db: &str, sql: &str) -> String {
        self.try_query(Some(db), sql)
            .unwrap_or_else(|e| panic!("mariadb failed: {e}\n{sql}"))
    }

    /// Creates a database (utf8mb4) and returns its name.
    pub fn create_db(&self, name: &str) -> String {
        self.try_exec(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"
        ))
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
        name.to_string()
    }
}

impl Drop for MariaServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn a_server_of_our_own_logs_rows() {
    let s = MariaServer::start(&[]);
    let v = s.exec(
        "mysql",
        "SELECT @@log_bin, @@binlog_format, @@binlog_row_image",
    );
    assert_eq!(v, "1\tROW\tFULL");
}
