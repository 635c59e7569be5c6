//! Stopping a copy at a chosen point: a trigger on a pre-created target table (loaded with
//! `--schema existing`; `ENABLE ALWAYS`, so `session_replication_role = replica` does not
//! silence it) makes every row insert wait while a condition on the job's state holds. A test
//! waits until the state shows the point, kills the copy there with `kill -9`, drops the
//! trigger, changes the source and resumes.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::support::{Howdah, TestDb};

/// Makes inserts into `table` on `dst` wait while `condition` (SQL over the state tables, e.g.
/// `EXISTS (SELECT 1 FROM howdah.chunks WHERE status = 'done')`) is true, until
/// [`release`] is called.
pub fn install(dst: &TestDb, table: &str, condition: &str) {
    dst.exec(&format!(
        "CREATE TABLE held_switch (holding boolean NOT NULL);
         INSERT INTO held_switch VALUES (true);
         CREATE FUNCTION held_wait() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           WHILE (SELECT holding FROM held_switch) AND ({condition}) LOOP
             PERFORM pg_sleep(0.02);
           END LOOP;
           RETURN NEW;
         END $$;
         CREATE TRIGGER held_wait BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION held_wait();
         ALTER TABLE {table} ENABLE ALWAYS TRIGGER held_wait;"
    ));
}

/// Lets held and later inserts go on.
pub fn release(dst: &TestDb) {
    dst.exec("UPDATE held_switch SET holding = false");
}

/// Starts `howdah copy` from `src` into `dst` with `--schema existing` and `extra` flags.
pub fn spawn_copy(src: &TestDb, dst: &TestDb, extra: &[&str]) -> Child {
    Howdah::copy(&src.url(), &dst.url())
        .args(["--schema", "existing", "-q"])
        .args(extra)
        .spawn()
}

/// Waits until `sql` on `db` returns `t`, or panics after `timeout` (killing `child`).
pub fn wait_for(db: &TestDb, sql: &str, child: &mut Child, timeout: Duration) {
    let started = Instant::now();
    loop {
        // The state tables may not exist yet: a failing query is not yet there.
        if db.try_query(sql).as_deref() == Ok("t") {
            return;
        }
        if let Some(status) = child.try_wait().expect("poll howdah") {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("howdah ended ({status}) before {sql}\n{stderr}");
        }
        assert!(started.elapsed() < timeout, "timed out waiting for {sql}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -9`, then waits until the target has no session of the dead run left (its held
/// statement ends once the server sees the client gone) and drops the trigger from `table`.
pub fn kill(child: &mut Child, dst: &TestDb, table: &str) {
    child.kill().expect("kill -9 howdah");
    let _ = child.wait();
    release(dst);
    let started = Instant::now();
    while dst.query(&format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND application_name LIKE 'howdah%'",
        dst.name
    )) != "0"
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the killed run's sessions did not end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    dst.exec(&format!("DROP TRIGGER held_wait ON {table}"));
}
