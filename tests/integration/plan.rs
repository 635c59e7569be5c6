//! `howdah plan` on fixture databases: the plan names the table count, sizes close to the
//! server's own figures, each planted risk (a keyless table, a non-empty target table, zero
//! dates, an out-of-range id, a lossy boolean), the objects out of scope or created, and the
//! exact copy command; the JSON matches docs/plan.schema.json; the target is left untouched.

use std::time::Duration;

use serde_json::Value;

use crate::support::{assert_success, describe, Howdah, MyDb, TestDb};

const SCHEMA: &str = include_str!("../../docs/plan.schema.json");

/// Checks `v` against the subset of JSON Schema that docs/plan.schema.json uses: `type`
/// (one or a list), `enum`, `minimum`, `properties`, `required`, `additionalProperties:
/// false`, `items`, `$ref` to `#/$defs/...`.
fn validate(schema: &Value, root: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        match root.get("$defs").and_then(|d| d.get(name)) {
            Some(s) => validate(s, root, v, path, errors),
            None => errors.push(format!("{path}: unknown $ref {r}")),
        }
        return;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let fits = |t: &str| match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        };
        if !types.iter().any(|t| fits(t)) {
            errors.push(format!("{path}: expected {types:?}, got {v}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(v) {
            errors.push(format!("{path}: {v} is not one of {allowed:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            errors.push(format!("{path}: {n} is below {min}"));
        }
    }
    if let Value::Object(map) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for req in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !map.contains_key(req) {
                errors.push(format!("{path}: missing {req}"));
            }
        }
        for (k, val) in map {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(s, root, val, &format!("{path}.{k}"), errors),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: undocumented field {k}"))
                }
                None => {}
            }
        }
    }
    if let (Value::Array(items), Some(s)) = (v, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(s, root, item, &format!("{path}[{i}]"), errors);
        }
    }
}

#[track_caller]
fn assert_documented_shape(plan: &Value) {
    let schema: Value = serde_json::from_str(SCHEMA).unwrap();
    let mut errors = Vec::new();
    validate(&schema, &schema, plan, "$", &mut errors);
    assert!(
        errors.is_empty(),
        "the JSON plan does not match docs/plan.schema.json:\n{}",
        errors.join("\n")
    );
    // The validator itself catches a missing and an undocumented field.
    let mut broken = plan.clone();
    if let Some(o) = broken.get_mut("overview").and_then(Value::as_object_mut) {
        o.remove("table_count");
        o.insert("surprise".into(), Value::Bool(true));
    }
    let mut errors = Vec::new();
    validate(&schema, &schema, &broken, "$", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
}

/// Runs `howdah plan` twice (Markdown to stdout, JSON to a file); returns both.
fn plan(source: &str, target: &str, extra: &[&str]) -> (String, Value) {
    let plan = || {
        Howdah::new("plan")
            .args(["--source", source, "--target", target])
            .args(extra)
    };
    let (out, took) = plan().run_timeout(Duration::from_secs(60));
    assert_success(&out, "howdah plan (markdown)");
    assert!(took < Duration::from_secs(10), "plan took {took:?}");
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    let dir = std::env::temp_dir().join(format!("howdah_plan_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{}.json", target.rsplit('/').next().unwrap_or("x")));
    let file_s = file.display().to_string();
    let (out, _) = plan()
        .args(["--format", "json", "--output", &file_s])
        .run_timeout(Duration::from_secs(60));
    assert_success(&out, "howdah plan --format json");
    assert!(
        out.stdout.is_empty(),
        "--output leaves stdout empty\n{}",
        describe(&out)
    );
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let _ = std::fs::remove_file(&file);
    (md, json)
}

fn strs<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

fn has_risk(plan: &Value, kind: &str, subject: &str) -> bool {
    strs(plan, &["risks"])
        .iter()
        .any(|r| r["kind"] == kind && r["subject"] == subject)
}

#[track_caller]
fn within_10_percent(got: i64, truth: i64, what: &str) {
    let diff = (got - truth).abs() as f64;
    assert!(
        diff <= truth as f64 * 0.10,
        "{what}: plan says {got}, the server says {truth}"
    );
}

#[test]
fn postgres_plan_names_sizes_risks_and_the_copy_command() {
    let src = TestDb::new("plan_src");
    let dst = TestDb::new("plan_dst");
    src.exec(
        "CREATE TABLE events (id bigint PRIMARY KEY, payload text, n int);
         INSERT INTO events SELECT g, repeat(md5(g::text), 4), g % 1000 FROM generate_series(1, 110000) g;
         CREATE INDEX events_n ON events (n);
         CREATE TABLE audit_log (at timestamptz, msg text);
         INSERT INTO audit_log SELECT now(), 'm' || g FROM generate_series(1, 500) g;
         CREATE TABLE customers (id int PRIMARY KEY, name text, touched timestamptz);
         INSERT INTO customers SELECT g, 'c' || g, now() FROM generate_series(1, 100) g;
         CREATE TABLE existing_t (id int PRIMARY KEY);
         CREATE VIEW v_recent AS SELECT id FROM events WHERE n < 10;
         CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.touched := now(); RETURN NEW; END $$;
         CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch();
         ANALYZE;",
    );
    dst.exec("CREATE TABLE existing_t (id int); INSERT INTO existing_t VALUES (1);");
    // A password in a URL never shows in the plan (the local server trusts and ignores it).
    let with_password = src.url().replace("postgres@", "postgres:s3cret-pw@");
    let (md, json) = plan(&with_password, &dst.url(), &[]);
    assert_documented_shape(&json);
    assert!(!md.contains("s3cret") && !json.to_string().contains("s3cret"));

    let ov = &json["overview"];
    assert_eq!(ov["table_count"], 4, "{ov}");
    assert_eq!(ov["source"]["product"], "PostgreSQL");
    let truth: i64 = src
        .query(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind = 'r'",
        )
        .parse()
        .unwrap();
    within_10_percent(ov["total_bytes"].as_i64().unwrap(), truth, "total bytes");
    let events = strs(&json, &["tables"])
        .into_iter()
        .find(|t| t["source"] == "public.events")
        .unwrap();
    let events_truth: i64 = src
        .query("SELECT pg_total_relation_size('events')")
        .parse()
        .unwrap();
    assert!(
        events_truth > 15_000_000,
        "the fixture's big table is ~20 MB"
    );
    within_10_percent(
        events["table_bytes"].as_i64().unwrap() + events["index_bytes"].as_i64().unwrap(),
        events_truth,
        "events bytes",
    );
    let index_truth: i64 = src
        .query("SELECT pg_indexes_size('events')")
        .parse()
        .unwrap();
    within_10_percent(
        events["index_bytes"].as_i64().unwrap(),
        index_truth,
        "events index bytes",
    );
    assert_eq!(ov["largest_tables"][0], "public.events");

    // Planted risks, named.
    assert!(
        has_risk(&json, "keyless_table", "public.audit_log"),
        "{}",
        json["risks"]
    );
    assert!(
        has_risk(&json, "target_table_not_empty", "public.existing_t"),
        "{}",
        json["risks"]
    );
    let blocker = strs(&json, &["risks"])
        .into_iter()
        .find(|r| r["kind"] == "target_table_not_empty")
        .unwrap();
    assert_eq!(blocker["severity"], "blocker");
    // A PostgreSQL copy creates views, functions and triggers: listed as created.
    let created: Vec<String> = strs(&json, &["overview", "also_created"])
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "view public.v_recent",
        "function public.touch()",
        "trigger customers_touch on public.customers",
    ] {
        assert!(
            created.iter().any(|c| c == want),
            "{want} not in {created:?}"
        );
    }
    // Sections and probes.
    assert!(json["strategy"]["throughput"]["rows"].as_u64().unwrap() > 0);
    assert!(
        json["strategy"]["estimate"]["total_seconds"]
            .as_f64()
            .unwrap()
            >= 0.0
    );
    assert_eq!(
        strs(&json, &["strategy", "rollback_points"]).len(),
        3,
        "schema, data, post-data"
    );
    let rollback = json["execution"]["rollback_sql"].as_str().unwrap();
    assert!(
        rollback.contains("DROP TABLE IF EXISTS \"public\".\"events\""),
        "{rollback}"
    );
    assert!(
        !rollback.contains("existing_t"),
        "a table the copy did not create is not dropped"
    );
    assert!(rollback.contains("DROP SCHEMA IF EXISTS \"howdah\" CASCADE"));

    // The exact commands.
    let copy = format!(
        "howdah copy --source '{}' --target '{}' --jobs 4 --metrics-addr 127.0.0.1:9187",
        src.url(),
        dst.url()
    );
    assert_eq!(json["execution"]["copy_command"], copy.as_str());
    assert_eq!(
        json["execution"]["verify_command"],
        format!(
            "howdah verify --source '{}' --target '{}'",
            src.url(),
            dst.url()
        )
        .as_str()
    );
    assert_eq!(
        json["execution"]["metrics_url"],
        "http://127.0.0.1:9187/metrics"
    );
    // The application's queries are checked before the switch.
    let check_queries = format!(
        "howdah check-queries --source '{}' --target '{}' --queries queries.toml --from-stats 20",
        src.url(),
        dst.url()
    );
    assert!(
        json["execution"]["steps"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["command"] == check_queries.as_str())),
        "{:#}",
        json["execution"]["steps"]
    );

    // The Markdown says the same.
    for want in [
        "## 1. Overview",
        "## 2. Schema changes",
        "## 3. Data transformation",
        "## 4. Strategy",
        "## 5. Risks and pre-flight checks",
        "## 6. Execution, verification and monitoring",
        "**Tables:** 4 selected",
        "| **blocker** | target_table_not_empty | public.existing_t |",
        "| warning | keyless_table | public.audit_log |",
        "public.v_recent",
        "customers_touch on public.customers",
        "configs/grafana/dashboards/howdah.json",
        copy.as_str(),
    ] {
        assert!(md.contains(want), "the Markdown plan lacks {want:?}:\n{md}");
    }

    // Read-only: nothing was created on the target.
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'howdah'"),
        "0"
    );
    assert_eq!(
        dst.query("SELECT string_agg(relname, ',') FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
        "existing_t"
    );
}

#[test]
fn mariadb_plan_counts_zero_dates_and_names_what_stays_behind() {
    let my = MyDb::new("plan_my");
    let dst = TestDb::new("plan_mydst");
    my.exec(
        "SET sql_mode = '';
         CREATE TABLE orders (
           id int unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY,
           placed date NOT NULL,
           shipped datetime NULL,
           paid tinyint(1) NOT NULL DEFAULT 0,
           status enum('new','done') NOT NULL DEFAULT 'new',
           note varchar(50),
           KEY idx_placed (placed)
         ) ENGINE=InnoDB;
         INSERT INTO orders (placed, paid, note)
           SELECT DATE_ADD('2020-01-01', INTERVAL seq DAY), seq % 2, CONCAT('n', seq) FROM seq_1_to_5000;
         UPDATE orders SET placed = '0000-00-00' WHERE id <= 3;
         UPDATE orders SET shipped = '2020-00-10 00:00:00' WHERE id BETWEEN 10 AND 14;
         UPDATE orders SET paid = 5 WHERE id = 100;
         CREATE TABLE tickets (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, t varchar(10)) ENGINE=InnoDB;
         INSERT INTO tickets VALUES (1, 'a'), (18446744073709551615, 'too big');
         CREATE TABLE event_log (msg text, at datetime) ENGINE=InnoDB;
         INSERT INTO event_log VALUES ('a', '2021-05-05 10:00:00'), ('b', '0000-00-00 00:00:00');
         CREATE VIEW recent AS SELECT id FROM orders WHERE placed > '2020-06-01';
         CREATE TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW SET NEW.note = COALESCE(NEW.note, 'x');
         ANALYZE TABLE orders, tickets, event_log;",
    );
    let (md, json) = plan(&my.url(), &dst.url(), &["--jobs", "2"]);
    assert_documented_shape(&json);
    let db = &my.name;
    let ov = &json["overview"];
    assert_eq!(ov["table_count"], 3, "{ov}");
    assert_eq!(ov["source"]["product"], "MariaDB");
    let truth: i64 = my
        .query(&format!(
            "SELECT SUM(DATA_LENGTH) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_TYPE = 'BASE TABLE'"
        ))
        .parse()
        .unwrap();
    within_10_percent(ov["table_bytes"].as_i64().unwrap(), truth, "table bytes");

    // Zero dates counted per column, with what the copy does with them.
    let probe = |table: &str, column: &str, check: &str| -> Value {
        strs(&json, &["data", "probes"])
            .into_iter()
            .find(|p| {
                p["table"] == format!("{db}.{table}").as_str()
                    && p["column"] == column
                    && p["check"] == check
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {check} probe of {table}.{column}: {}", json["data"]))
    };
    let placed = probe("orders", "placed", "zero_dates");
    assert_eq!(placed["count"], 3);
    assert_eq!(placed["sampled"], false);
    assert!(
        placed["consequence"]
            .as_str()
            .unwrap()
            .contains("created nullable"),
        "{placed}"
    );
    assert_eq!(probe("orders", "shipped", "zero_dates")["count"], 5);
    assert_eq!(probe("event_log", "at", "zero_dates")["count"], 1);
    assert_eq!(probe("orders", "paid", "lossy_boolean")["count"], 1);
    assert_eq!(probe("orders", "status", "invalid_enum")["count"], 0);
    // AUTO_INCREMENT bigint unsigned becomes a bigint identity: one id does not fit.
    assert_eq!(probe("tickets", "id", "out_of_range")["count"], 1);
    assert!(has_risk(
        &json,
        "zero_dates",
        &format!("{db}.orders.placed")
    ));
    assert!(has_risk(&json, "out_of_range", &format!("{db}.tickets.id")));

    // The keyless table, the view and the trigger, named.
    assert!(
        has_risk(&json, "keyless_table", &format!("{db}.event_log")),
        "{}",
        json["risks"]
    );
    let out: Vec<String> = strs(&json, &["overview", "out_of_scope"])
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(out.contains(&format!("view {db}.recent")), "{out:?}");
    assert!(
        out.contains(&format!("trigger {db}.orders.orders_bi")),
        "{out:?}"
    );
    // Lossy conversions flagged on their columns.
    let paid = strs(&json, &["schema", "columns"])
        .into_iter()
        .find(|c| c["table"] == "public.orders" && c["source_column"] == "paid")
        .unwrap();
    assert_eq!(paid["source_type"], "tinyint(1)");
    assert_eq!(paid["target_type"], "boolean");
    assert!(paid["risk"].as_str().unwrap().contains("boolean"), "{paid}");
    let ticket_id = strs(&json, &["schema", "columns"])
        .into_iter()
        .find(|c| c["table"] == "public.tickets" && c["source_column"] == "id")
        .unwrap();
    assert!(
        ticket_id["risk"]
            .as_str()
            .unwrap()
            .contains("bigint identity"),
        "{ticket_id}"
    );
    assert_eq!(
        json["execution"]["copy_command"],
        format!(
            "howdah copy --source {} --target '{}' --jobs 2 --metrics-addr 127.0.0.1:9187",
            my.url(),
            dst.url()
        )
        .as_str()
    );

    for want in [
        format!("| {db}.orders | placed | zero_dates | 3 |"),
        format!("| warning | keyless_table | {db}.event_log |"),
        format!("| view | {db}.recent |"),
        format!("| trigger | {db}.orders.orders_bi |"),
        "**yes**: tinyint(1) becomes boolean".to_string(),
        "zero dates: NULL".to_string(),
    ] {
        assert!(
            md.contains(&want),
            "the Markdown plan lacks {want:?}:\n{md}"
        );
    }
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'howdah'"),
        "0"
    );
    assert_eq!(
        dst.query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"),
        "0"
    );
}
