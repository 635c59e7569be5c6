//! Shared test helpers: a fresh database per test on the local servers (`TestDb`, `MyDb`), and
//! the real binary (`Howdah`). Every run of the binary goes through `Howdah`, so none inherits
//! the caller's HOWDAH_SOURCE, HOWDAH_TARGET or PGPASSWORD, none waits on the terminal's stdin,
//! and a hung one is killed and says so instead of hanging the suite. Test databases are named
//! `howdah_test_<tag>_<pid>_<n>`: scripts/test.sh drops those of dead processes only.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Base URL of the local PostgreSQL server (override with HOWDAH_TEST_PG).
pub fn pg_base() -> String {
    std::env::var("HOWDAH_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// The local server's `postgres` database, for statements outside any test database.
pub fn admin_url() -> String {
    format!("{}/postgres?sslmode=disable", pg_base())
}

/// `howdah_test_<tag>_<pid>_<n>`, unique within this test process.
fn unique_name(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("howdah_test_{}_{}_{}", tag, std::process::id(), n)
}

/// Runs `sql` through psql on `url` with `flags` added to `-X -v ON_ERROR_STOP=1`; psql's
/// stdout without trailing white space, or its stderr when it fails.
pub fn psql(url: &str, flags: &[&str], sql: &str) -> Result<String, String> {
    let out = Command::new("psql")
        .args(["-X", "-v", "ON_ERROR_STOP=1"])
        .args(flags)
        .args(["-d", url, "-c", sql])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Runs `sql` on the `postgres` database; panics with psql's stderr on failure.
pub fn psql_admin(sql: &str) {
    if let Err(e) = psql(&admin_url(), &["-q"], sql) {
        panic!("psql failed: {e}\n{sql}");
    }
}

/// A database created for one test and dropped when the value is dropped.
pub struct TestDb {
    /// Database name, `howdah_test_<tag>_<pid>_<n>`.
    pub name: String,
}

impl TestDb {
    /// Creates a fresh, empty PostgreSQL database.
    pub fn new(tag: &str) -> Self {
        Self::with_options(tag, "")
    }

    /// Creates a fresh, empty PostgreSQL database with `options` appended to its
    /// `CREATE DATABASE` (e.g. a template, locale provider and locale).
    pub fn with_options(tag: &str, options: &str) -> Self {
        let name = unique_name(tag);
        psql_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        psql_admin(&format!("CREATE DATABASE {name} {options}"));
        TestDb { name }
    }

    /// `postgres://postgres@127.0.0.1:5432/<name>?sslmode=disable`.
    pub fn url(&self) -> String {
        format!("{}/{}?sslmode=disable", pg_base(), self.name)
    }

    /// Runs SQL through psql (ON_ERROR_STOP); panics with psql's stderr on failure.
    pub fn exec(&self, sql: &str) {
        if let Err(e) = self.try_exec(sql) {
            panic!("psql failed: {e}\n{sql}");
        }
    }

    /// Runs SQL through psql; psql's stderr when it fails (for statements expected to fail).
    pub fn try_exec(&self, sql: &str) -> Result<(), String> {
        psql(&self.url(), &["-q"], sql).map(drop)
    }

    /// Runs a query and returns its unaligned, tuples-only output (`|` between columns).
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|e| panic!("psql failed: {e}\n{sql}"))
    }

    /// [`TestDb::query`], or psql's stderr when the query fails.
    pub fn try_query(&self, sql: &str) -> Result<String, String> {
        psql(&self.url(), &["-A", "-t"], sql)
    }

    /// Waits until `sql` returns `expected` (a failing query counts as not yet); panics
    /// naming `what` after `timeout`.
    pub fn wait_for(&self, sql: &str, expected: &str, timeout: Duration, what: &str) {
        let started = std::time::Instant::now();
        while self.try_query(sql).unwrap_or_default() != expected {
            assert!(started.elapsed() < timeout, "{what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A tokio-postgres connection to this database, its driver spawned on the current runtime;
    /// for tests that need the wire protocol (COPY, binary values, prepared statements).
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url()).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        psql_admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// A tokio-postgres connection to `url`, its driver spawned on the current runtime. Tests
/// on a test database use [`TestDb::client`].
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Asserts two queries over two databases return the same sorted rows.
#[track_caller]
pub fn assert_same(src: &TestDb, dst: &TestDb, sql: &str) {
    let a = src.query(sql);
    let b = dst.query(sql);
    let mut a: Vec<&str> = a.lines().collect();
    let mut b: Vec<&str> = b.lines().collect();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a.len(), b.len(), "row counts differ for {sql}");
    assert!(a == b, "rows differ for {sql}");
}

/// How long [`Howdah::run`] lets the binary run before killing it: generous, as a run in these
/// tests takes well under 20 s, on a loaded machine too.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// One run of the real `howdah` binary, built up like a `Command`: the environment variables a
/// run would read (HOWDAH_SOURCE, HOWDAH_TARGET, PGPASSWORD) are cleared first, so only what
/// a test sets with [`Howdah::env`] reaches it, and stdin is /dev/null.
pub struct Howdah {
    cmd: Command,
}

impl Howdah {
    /// `howdah <command>`.
    pub fn new(command: &str) -> Howdah {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_howdah"));
        cmd.arg(command)
            .env_remove("HOWDAH_SOURCE")
            .env_remove("HOWDAH_TARGET")
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Howdah { cmd }
    }

    /// `howdah copy --source <source> --target <target>`.
    pub fn copy(source: &str, target: &str) -> Howdah {
        Howdah::new("copy").args(["--source", source, "--target", target])
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Howdah
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// Sets an environment variable of the run.
    pub fn env(mut self, key: &str, value: &str) -> Howdah {
        self.cmd.env(key, value);
        self
    }

    /// Runs in `dir` instead of the test's working directory.
    pub fn current_dir(mut self, dir: &Path) -> Howdah {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs to the end (killed after [`DEFAULT_TIMEOUT`]); its exit status and output.
    pub fn run(self) -> Output {
        self.run_timeout(DEFAULT_TIMEOUT).0
    }

    /// Runs to the end, killing the binary after `timeout` (stderr then ends with a line that
    /// says so); its exit status and output, and the wall-clock time the run took.
    pub fn run_timeout(self, timeout: Duration) -> (Output, Duration) {
        let started = Instant::now();
        let mut child = self.spawn();
        // Read both pipes while waiting, so a chatty run cannot block on a full pipe.
        let stdout = read_all(child.stdout.take().expect("stdout is piped"));
        let stderr = read_all(child.stderr.take().expect("stderr is piped"));
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for howdah") {
                break status;
            }
            if started.elapsed() > timeout {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed howdah");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        let stdout = stdout.join().expect("stdout reader");
        let mut stderr = stderr.join().expect("stderr reader");
        if timed_out {
            stderr.extend_from_slice(
                format!("\n[test harness: howdah killed after {timeout:?} timeout]\n").as_bytes(),
            );
        }
        let output = Output {
            status,
            stdout,
            stderr,
        };
        (output, elapsed)
    }

    /// Starts the run and returns at once, stdout and stderr piped: for tests that watch,
    /// kill or signal it. `Child::wait_with_output` collects the output.
    pub fn spawn(mut self) -> Child {
        self.cmd.spawn().expect("spawn howdah")
    }
}

/// A thread that reads `pipe` to its end.
fn read_all(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

/// A printable summary of one run of the binary (exit code, stdout, stderr), for assertion
/// messages. Long streams are cut in the middle.
pub fn describe(out: &Output) -> String {
    fn cut(bytes: &[u8]) -> String {
        let s = String::from_utf8_lossy(bytes);
        let chars: Vec<char> = s.chars().collect();
        if chars.len() <= 6000 {
            return s.into_owned();
        }
        let head: String = chars[..3000].iter().collect();
        let tail: String = chars[chars.len() - 3000..].iter().collect();
        format!("{head}\n[... {} chars cut ...]\n{tail}", chars.len() - 6000)
    }
    format!(
        "exit status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n--------------",
        out.status.code(),
        cut(&out.stdout),
        cut(&out.stderr)
    )
}

/// Panics with the binary's output unless it exited with status 0.
#[track_caller]
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: howdah failed\n{}",
        describe(out)
    );
}

/// The lines of stderr that start with `error: `.
pub fn error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// Asserts that the run exited with `code` and printed exactly one `error: ` line on stderr;
/// returns that line.
#[track_caller]
pub fn assert_error(out: &Output, code: i32, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: wrong exit code\n{}",
        describe(out)
    );
    let lines = error_lines(out);
    assert_eq!(
        lines.len(),
        1,
        "{what}: expected exactly one line starting with `error: ` on stderr\n{}",
        describe(out)
    );
    lines.into_iter().next().unwrap_or_default()
}

/// Asserts two queries return the same rows in the same order; on mismatch, shows the first
/// differing line of each side.
#[track_caller]
pub fn assert_same_ordered(src: &TestDb, dst: &TestDb, sql: &str) {
    let a = src.query(sql);
    let b = dst.query(sql);
    if a == b {
        return;
    }
    let (al, bl): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let first = al
        .iter()
        .zip(bl.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(al.len().min(bl.len()));
    let show = |v: &[&str]| {
        v.get(first).map_or_else(
            || "<no line>".to_string(),
            |l| {
                if l.chars().count() > 800 {
                    format!("{}...", l.chars().take(800).collect::<String>())
                } else {
                    (*l).to_string()
                }
            },
        )
    };
    panic!(
        "query results differ for {sql}\nsource: {} lines, target: {} lines; first difference at line {}:\n  source: {}\n  target: {}",
        al.len(),
        bl.len(),
        first + 1,
        show(&al),
        show(&bl)
    );
}

/// A MariaDB/MySQL database created for one test and dropped when the value is dropped
/// (local server, user root without password; override with HOWDAH_TEST_MYSQL_HOST).
pub struct MyDb {
    /// Database name, `howdah_test_<tag>_<pid>_<n>`.
    pub name: String,
}

fn my_host() -> String {
    std::env::var("HOWDAH_TEST_MYSQL_HOST").unwrap_or_else(|_| "127.0.0.1".into())
}

impl MyDb {
    /// Creates a fresh, empty database.
    pub fn new(tag: &str) -> Self {
        let name = unique_name(tag);
        mariadb(
            None,
            &format!(
                "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name} CHARACTER SET utf8mb4"
            ),
        );
        MyDb { name }
    }

    /// `mysql://root@127.0.0.1:3306/<name>`.
    pub fn url(&self) -> String {
        format!("mysql://root@{}:3306/{}", my_host(), self.name)
    }

    /// Runs SQL through the `mariadb` client; panics with its stderr on failure.
    pub fn exec(&self, sql: &str) {
        mariadb(Some(&self.name), sql);
    }

    /// Runs a query; tab-separated rows without headers.
    pub fn query(&self, sql: &str) -> String {
        mariadb(Some(&self.name), sql)
    }
}

impl Drop for MyDb {
    fn drop(&mut self) {
        mariadb(None, &format!("DROP DATABASE IF EXISTS {}", self.name));
    }
}

fn mariadb(db: Option<&str>, sql: &str) -> String {
    let mut cmd = Command::new("mariadb");
    cmd.args([
        "-uroot",
        "-h",
        &my_host(),
        "--batch",
        "--skip-column-names",
        "--default-character-set=utf8mb4",
    ]);
    if let Some(db) = db {
        cmd.arg(db);
    }
    let out = cmd
        .args(["-e", sql])
        .output()
        .expect("run the mariadb client");
    assert!(
        out.status.success(),
        "mariadb failed: {}\n{sql}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// Writes a job file for one test (named after the test process and `name`); returns its path.
pub fn job_file(name: &str, text: &str) -> String {
    let path = std::env::temp_dir().join(format!("howdah-test-{}-{name}.toml", std::process::id()));
    std::fs::write(&path, text).expect("write the job file");
    path.display().to_string()
}

/// Waits until the follow phase of `job` in the state at `url` is `phase` (the follow tests'
/// common wait, whatever server the target is on).
pub fn wait_follow_phase(url: &str, job: &str, phase: &str, timeout: Duration) {
    let started = Instant::now();
    loop {
        let p = psql(
            url,
            &["-A", "-t"],
            &format!("SELECT phase FROM howdah.follow WHERE job = '{job}'"),
        )
        .unwrap_or_default();
        if p == phase {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "job {job} did not reach phase {phase} (now {p:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Held by a test that leaves a server backend unable to take part in server-wide waits for
/// a while, and by a test that needs such a wait. A backend in the middle of `COPY FROM
/// STDIN` whose client's link is cut (tests/integration/netns_workers.rs) does not absorb
/// the signal barrier `DROP DATABASE` waits for, so a `DROP DATABASE` anywhere on the server
/// (the demo's second round drops its first round's databases) hangs until that backend
/// ends. Two full runs timed the demo out that way.
pub static SERVER_WIDE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Takes [`SERVER_WIDE`] (a test that panicked while holding it leaves it usable).
pub fn server_wide() -> std::sync::MutexGuard<'static, ()> {
    SERVER_WIDE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Kills a spawned run with SIGKILL and reaps it.
pub fn kill9(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// The body of `GET /metrics` on a local port.
pub fn metrics_body(port: u16) -> String {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("request /metrics");
    let mut body = String::new();
    s.read_to_string(&mut body).expect("read /metrics");
    body
}
