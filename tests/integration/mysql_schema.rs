//! A whole MariaDB database (a film-rental shop, `fixtures/mysql_shop.sql`) copied into
//! PostgreSQL: every table with every row, the mapped types and awkward values, primary keys
//! (composite too), unique, secondary and prefix indexes, foreign keys with their ON DELETE
//! rules, identity columns set past the copied rows, a table without any key, and the notes
//! about what stays behind (view, trigger, procedure, FULLTEXT index).

use std::process::Output;

use crate::support::{assert_success, describe, error_lines, Howdah, MyDb, TestDb};

const FIXTURE: &str = include_str!("fixtures/mysql_shop.sql");

/// Every base table of the fixture with its row count there.
const TABLES: [(&str, u64); 8] = [
    ("audit_log", 1005),
    ("category", 10),
    ("customer", 2003),
    ("film", 603),
    ("film_store", 1206),
    ("rental", 3002),
    ("review", 802),
    ("store", 4),
];

fn copy(my: &MyDb, pg: &TestDb, extra: &[&str]) -> Output {
    Howdah::copy(&my.url(), &pg.url()).args(extra).run()
}

/// A MariaDB result with `|` between columns, like psql's.
fn my_query(my: &MyDb, sql: &str) -> String {
    my.query(sql).replace('\t', "|")
}

/// The declared PostgreSQL type of `table.column` (`format_type`).
fn pg_type(pg: &TestDb, table: &str, column: &str) -> String {
    pg.query(&format!(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute \
         WHERE attrelid = 'public.{table}'::regclass AND attname = '{column}' AND NOT attisdropped"
    ))
}

fn loaded_shop() -> MyDb {
    let my = MyDb::new("myshop");
    my.exec(FIXTURE);
    for (table, rows) in TABLES {
        assert_eq!(
            my.query(&format!("SELECT COUNT(*) FROM `{table}`")),
            rows.to_string(),
            "the fixture's {table} does not hold the rows this test expects"
        );
    }
    my
}

#[test]
fn a_shop_database_moves_with_schema_keys_and_sequences() {
    let my = loaded_shop();
    let pg = TestDb::new("myshop");
    // The brief asked for 500-row chunks; howdah's minimum is 1000, which still cuts customer,
    // film_store and rental into several keyset chunks (the composite key included).
    let out = copy(&my, &pg, &["--jobs", "2", "--chunk-rows", "1000"]);
    assert_success(&out, "copying the shop database");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let db = &my.name;

    // ---- what stays behind is said on stderr, and nothing failed
    for note in [
        format!("view {db}.customer_rentals not migrated"),
        format!("trigger {db}.rental.rental_audit not migrated"),
        format!("routine {db}.procedure film_count not migrated"),
        "FULLTEXT index ft_film_text not migrated".to_string(),
        format!("{db}.customer: index idx_customer_email covers a prefix of email"),
        format!("{db}.rental: index idx_created renamed rental_idx_created"),
    ] {
        assert!(
            stderr.contains(&note),
            "stderr lacks \"{note}\"\n{}",
            describe(&out)
        );
    }
    assert!(
        error_lines(&out).is_empty(),
        "error lines on stderr\n{}",
        describe(&out)
    );
    assert!(
        !stderr.contains(" ERROR ") && !stdout.to_ascii_lowercase().contains("error"),
        "an error was logged\n{}",
        describe(&out)
    );
    let total: u64 = TABLES.iter().map(|(_, n)| n).sum();
    assert!(
        stdout.contains(&format!("total: {total} rows")),
        "summary total\n{}",
        describe(&out)
    );
    for (table, rows) in TABLES {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(&format!("public.{table}")))
            .unwrap_or_else(|| panic!("no summary line for {table}\n{}", describe(&out)));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[1], rows.to_string(), "summary rows of {table}: {line}");
        assert_eq!(
            cols.last(),
            Some(&"0"),
            "summary rejected of {table}: {line}"
        );
    }
    assert!(
        stdout
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("total: ")),
        "the summary does not end with the total time\n{}",
        describe(&out)
    );

    // ---- every table, lower-cased in public, with every row
    let names: Vec<&str> = TABLES.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        pg.query(
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        ),
        names.join(",")
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM information_schema.views WHERE table_schema = 'public'"),
        "0",
        "the view is not migrated"
    );
    for (table, _) in TABLES {
        assert_eq!(
            pg.query(&format!("SELECT count(*) FROM public.{table}")),
            my.query(&format!("SELECT COUNT(*) FROM `{table}`")),
            "row count of {table}"
        );
    }

    // ---- latin1 (cp1252) text
    assert_eq!(pg_type(&pg, "store", "city"), "character varying(50)");
    assert_eq!(
        pg.query("SELECT city FROM store WHERE name = 'Euro Corner'"),
        "€é"
    );
    assert_eq!(
        pg.query("SELECT city FROM store WHERE name = 'Upper Case'"),
        "Ÿ"
    );
    assert_eq!(
        pg.query("SELECT city FROM store WHERE name = 'Zürich Süd'"),
        "Zürich"
    );

    // ---- utf8mb4 text: emoji, quotes, backslash, tab, newline
    assert_eq!(
        pg.query("SELECT first_name FROM customer WHERE last_name = 'O''Crab'"),
        "🦀 Ferris"
    );
    assert_eq!(
        pg.query("SELECT body FROM review WHERE body LIKE '🦀%'"),
        "🦀🦀🦀 family emoji: 👨\u{200d}👩\u{200d}👧\u{200d}👦, flags: 🇫🇷, skin tone: 👍🏽"
    );
    assert_eq!(
        pg.query("SELECT last_name FROM customer WHERE first_name = 'Zoë'"),
        "Back\\Slash"
    );
    assert_eq!(
        pg.query("SELECT last_name FROM customer WHERE first_name = 'Ω'"),
        "Tab\tInside"
    );
    assert_eq!(
        pg.query("SELECT md5(string_agg(body, E'\\n' ORDER BY review_id)) FROM review"),
        my.query("SELECT MD5(GROUP_CONCAT(body ORDER BY review_id SEPARATOR '\\n')) FROM review"),
        "review bodies differ"
    );
    assert_eq!(
        pg.query(
            "SELECT md5(string_agg(concat_ws('|', first_name, last_name, coalesce(email, '~')), E'\\n' \
             ORDER BY customer_id)) FROM customer"
        ),
        my.query(
            "SELECT MD5(GROUP_CONCAT(CONCAT_WS('|', first_name, last_name, IFNULL(email, '~')) \
             ORDER BY customer_id SEPARATOR '\\n')) FROM customer"
        ),
        "customer names differ"
    );

    // ---- decimal(10,2): exact
    assert_eq!(pg_type(&pg, "film", "rental_price"), "numeric(10,2)");
    assert_eq!(
        pg.query("SELECT rental_price FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "99999999.99"
    );
    assert_eq!(
        pg.query("SELECT rental_price FROM film WHERE title = 'Cheap Film'"),
        "0.01"
    );
    assert_eq!(
        pg.query("SELECT rental_price FROM film WHERE title = 'Free Film'"),
        "0.00"
    );
    assert_eq!(
        pg.query("SELECT sum(amount) FROM rental"),
        my.query("SELECT SUM(amount) FROM rental"),
        "sum of rental amounts"
    );

    // ---- set: text[]
    assert_eq!(pg_type(&pg, "film", "special_features"), "text[]");
    assert_eq!(
        pg.query("SELECT special_features FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "{Trailers,\"Deleted Scenes\"}"
    );
    assert_eq!(
        pg.query("SELECT special_features FROM film WHERE title = 'Cheap Film'"),
        "{Trailers,Commentaries,\"Deleted Scenes\",\"Behind the Scenes\"}"
    );
    assert_eq!(
        pg.query("SELECT special_features FROM film WHERE title = 'Film 0004'"),
        "{}"
    );
    assert_eq!(
        pg.query("SELECT special_features IS NULL FROM film WHERE title = 'Free Film'"),
        "t"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM film WHERE 'Trailers' = ANY (special_features)"),
        my.query("SELECT COUNT(*) FROM film WHERE FIND_IN_SET('Trailers', special_features)"),
    );

    // ---- enum: a PostgreSQL enum type <table>_<column>, labels in order
    assert_eq!(pg_type(&pg, "customer", "tier"), "customer_tier");
    assert_eq!(pg_type(&pg, "film", "rating"), "film_rating");
    let labels = |ty: &str| {
        pg.query(&format!(
            "SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e \
             JOIN pg_type t ON t.oid = e.enumtypid \
             WHERE t.typname = '{ty}' AND t.typnamespace = 'public'::regnamespace AND t.typtype = 'e'"
        ))
    };
    assert_eq!(labels("customer_tier"), "bronze,silver,gold");
    assert_eq!(labels("film_rating"), "G,PG,PG-13,R,NC-17");
    assert_eq!(
        pg.query("SELECT string_agg(tier || ':' || n, ',' ORDER BY tier) FROM (SELECT tier, count(*) n FROM customer GROUP BY tier) s"),
        my.query("SELECT GROUP_CONCAT(CONCAT(tier, ':', n) ORDER BY tier) FROM (SELECT tier, COUNT(*) n FROM customer GROUP BY tier) s"),
        "enum values (both sides order by the label's position)"
    );
    assert_eq!(
        pg.query("SELECT rating FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "PG-13"
    );

    // ---- tinyint(1): boolean (2 is true)
    assert_eq!(pg_type(&pg, "customer", "active"), "boolean");
    assert_eq!(
        pg.query("SELECT active FROM customer WHERE last_name = 'O''Crab'"),
        "t"
    );
    assert_eq!(
        pg.query("SELECT active FROM customer WHERE first_name = 'Zoë'"),
        "f"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM customer WHERE active"),
        my.query("SELECT COUNT(*) FROM customer WHERE active <> 0")
    );
    // A plain tinyint stays a number.
    assert_eq!(pg_type(&pg, "category", "sort_order"), "smallint");
    assert_eq!(
        pg.query("SELECT sort_order FROM category WHERE name = 'Sci-Fi & Fantasy'"),
        "-6"
    );

    // ---- json: jsonb, ->> works
    assert_eq!(pg_type(&pg, "film", "attributes"), "jsonb");
    assert_eq!(
        pg.query("SELECT attributes->>'lang' FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "zh"
    );
    assert_eq!(
        pg.query("SELECT attributes->>'note' FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "ünïcødé ✓"
    );
    assert_eq!(
        pg.query("SELECT attributes->'nested'->'a' = 'null'::jsonb FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "t"
    );
    assert_eq!(
        pg.query("SELECT attributes FROM film WHERE title = 'Cheap Film'"),
        "[]"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM film WHERE attributes->>'lang' = 'fr'"),
        my.query("SELECT COUNT(*) FROM film WHERE JSON_VALUE(attributes, '$.lang') = 'fr'")
    );
    assert_eq!(
        pg.query("SELECT sum((attributes->>'minutes')::int) FROM film"),
        my.query("SELECT SUM(JSON_VALUE(attributes, '$.minutes')) FROM film")
    );

    // ---- blob: bytea, empty is not NULL
    assert_eq!(pg_type(&pg, "film", "poster"), "bytea");
    assert_eq!(
        pg.query("SELECT encode(poster, 'hex') FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "00ff00ff"
    );
    assert_eq!(
        pg.query(
            "SELECT poster IS NOT NULL AND length(poster) = 0 FROM film WHERE title = 'Cheap Film'"
        ),
        "t"
    );
    assert_eq!(
        pg.query("SELECT md5(string_agg(encode(poster, 'hex'), ',' ORDER BY film_id)) FROM film"),
        my.query("SELECT MD5(GROUP_CONCAT(LOWER(HEX(poster)) ORDER BY film_id)) FROM film")
    );

    // ---- POINT: WKB bytea (little-endian, type 1, x, y), SRID prefix dropped
    assert_eq!(pg_type(&pg, "store", "location"), "bytea");
    assert_eq!(
        pg.query(
            "SELECT length(location), get_byte(location, 0) FROM store WHERE name = 'Main Street'"
        ),
        "21|1"
    );
    assert_eq!(
        pg.query("SELECT encode(location, 'hex') FROM store WHERE name = 'Main Street'"),
        "0101000000000000000000f03f0000000000000040"
    );
    assert_eq!(
        pg.query("SELECT string_agg(encode(location, 'hex'), ',' ORDER BY store_id) FROM store"),
        my.query(
            "SELECT GROUP_CONCAT(LOWER(HEX(ST_AsBinary(location))) ORDER BY store_id) FROM store"
        )
    );

    // ---- year: smallint
    assert_eq!(pg_type(&pg, "store", "opened_year"), "smallint");
    assert_eq!(
        pg.query("SELECT string_agg(opened_year::text, ',' ORDER BY store_id) FROM store"),
        "1999,2005,1901,2155"
    );
    assert_eq!(pg_type(&pg, "film", "release_year"), "smallint");
    assert_eq!(
        pg.query("SELECT count(*), sum(release_year) FROM film WHERE release_year IS NOT NULL"),
        my_query(
            &my,
            "SELECT COUNT(*), SUM(release_year) FROM film WHERE release_year IS NOT NULL"
        )
    );

    // ---- datetime: timestamp; timestamp: timestamptz (values written in UTC by the fixture)
    assert_eq!(
        pg_type(&pg, "customer", "created_at"),
        "timestamp without time zone"
    );
    assert_eq!(
        pg_type(&pg, "customer", "updated_at"),
        "timestamp with time zone"
    );
    assert_eq!(
        pg.query("SELECT created_at FROM customer WHERE last_name = 'O''Crab'"),
        "1000-01-01 00:00:00"
    );
    assert_eq!(
        pg.query("SELECT created_at FROM customer WHERE first_name = 'Zoë'"),
        "9999-12-31 23:59:59"
    );
    assert_eq!(
        pg.query("SELECT created_at = '2024-02-29 12:34:56', updated_at = '2024-02-29 12:34:56+00' FROM customer WHERE first_name = 'Ω'"),
        "t|t"
    );
    assert_eq!(
        pg.query("SELECT extract(epoch FROM updated_at)::bigint FROM customer WHERE first_name IN ('Zoë', '🦀 Ferris') ORDER BY 1"),
        "1\n2147483647"
    );
    assert_eq!(
        pg.query("SELECT sum(extract(epoch FROM updated_at)::bigint) FROM customer"),
        my.query("SELECT SUM(UNIX_TIMESTAMP(updated_at)) FROM customer"),
        "timestamp instants"
    );
    assert_eq!(
        pg.query("SELECT md5(string_agg(to_char(rented_at, 'YYYY-MM-DD HH24:MI:SS') || '/' || coalesce(to_char(returned_at, 'YYYY-MM-DD HH24:MI:SS'), '~'), ',' ORDER BY rental_id)) FROM rental"),
        my.query("SELECT MD5(GROUP_CONCAT(CONCAT(DATE_FORMAT(rented_at, '%Y-%m-%d %H:%i:%s'), '/', IFNULL(DATE_FORMAT(returned_at, '%Y-%m-%d %H:%i:%s'), '~')) ORDER BY rental_id)) FROM rental"),
        "datetime values"
    );

    // ---- keys and indexes
    let indexes = |table: &str| {
        pg.query(&format!(
            "SELECT string_agg(indexname || ' ' || substring(indexdef FROM 'USING btree \\((.*)\\)$'), ';' ORDER BY indexname) \
             FROM pg_indexes WHERE schemaname = 'public' AND tablename = '{table}'"
        ))
    };
    assert_eq!(
        indexes("category"),
        "category_pkey category_id;fk_category_parent parent_id;uq_category_name name"
    );
    assert_eq!(
        indexes("customer"),
        "customer_pkey customer_id;fk_customer_store store_id;idx_created created_at;\
         idx_customer_email email;idx_customer_last_name last_name"
    );
    assert_eq!(
        indexes("film"),
        "film_pkey film_id;fk_film_category category_id",
        "no FULLTEXT index on film"
    );
    assert_eq!(
        indexes("film_store"),
        "film_store_pkey film_id, store_id;fk_film_store_store store_id"
    );
    assert_eq!(
        indexes("rental"),
        "fk_rental_customer customer_id;fk_rental_film film_id;rental_idx_created rented_at;rental_pkey rental_id"
    );
    assert_eq!(
        indexes("audit_log"),
        "",
        "the table without a key has no index"
    );
    let is_unique = |index: &str| {
        pg.query(&format!(
            "SELECT indisunique FROM pg_index WHERE indexrelid = 'public.{index}'::regclass"
        ))
    };
    assert_eq!(is_unique("uq_category_name"), "t");
    assert_eq!(is_unique("idx_customer_last_name"), "f");
    assert_eq!(is_unique("idx_customer_email"), "f");
    assert_eq!(
        pg.query(
            "SELECT string_agg(conrelid::regclass::text || ' ' || pg_get_constraintdef(oid), ';' ORDER BY conrelid::regclass::text) \
             FROM pg_constraint WHERE contype IN ('p', 'u') AND connamespace = 'public'::regnamespace"
        ),
        "category PRIMARY KEY (category_id);customer PRIMARY KEY (customer_id);film PRIMARY KEY (film_id);\
         film_store PRIMARY KEY (film_id, store_id);rental PRIMARY KEY (rental_id);\
         review PRIMARY KEY (review_id);store PRIMARY KEY (store_id)"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND (indexname ILIKE '%ft_film%' OR indexdef ILIKE '%description%')"),
        "0",
        "the FULLTEXT index is not migrated"
    );

    // ---- foreign keys with their ON DELETE rules (c cascade, n set null, r restrict)
    assert_eq!(
        pg.query(
            "SELECT string_agg(conname || ' ' || conrelid::regclass::text || '->' || confrelid::regclass::text || ' ' || confdeltype::text, ';' ORDER BY conname) \
             FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace"
        ),
        "fk_category_parent category->category n;\
         fk_customer_store customer->store r;\
         fk_film_category film->category n;\
         fk_film_store_film film_store->film c;\
         fk_film_store_store film_store->store c;\
         fk_rental_customer rental->customer c;\
         fk_rental_film rental->film r;\
         fk_review_customer review->customer n;\
         fk_review_film review->film c"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'public'::regnamespace AND NOT convalidated"),
        "0",
        "every foreign key is validated"
    );

    // ---- identity: every AUTO_INCREMENT column, and the next value passes the copied rows
    // (and MariaDB's own counter: film's deleted last row must not get its id back).
    let identities = [
        ("category", "category_id", "INSERT INTO category (name) VALUES ('New category')"),
        ("customer", "customer_id", "INSERT INTO customer (store_id, first_name, last_name, created_at) VALUES (1, 'New', 'Customer', '2025-01-01')"),
        ("film", "film_id", "INSERT INTO film (title) VALUES ('New film')"),
        ("rental", "rental_id", "INSERT INTO rental (customer_id, film_id, rented_at, amount) VALUES (1, 1, '2025-01-01', 1.50)"),
        ("review", "review_id", "INSERT INTO review (film_id, stars, body) VALUES (1, 3, 'new')"),
        ("store", "store_id", "INSERT INTO store (name, city, location, opened_year) VALUES ('New', 'Nowhere', '\\x00', 2025)"),
    ];
    assert_eq!(
        pg.query(
            "SELECT string_agg(c.relname || '.' || a.attname || ' ' || a.attidentity::text, ',' ORDER BY c.relname) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             WHERE c.relnamespace = 'public'::regnamespace AND a.attidentity <> ''"
        ),
        identities
            .iter()
            .map(|(t, c, _)| format!("{t}.{c} d"))
            .collect::<Vec<_>>()
            .join(","),
        "identity columns (by default)"
    );
    for (table, col, insert) in identities {
        let max: u64 = pg
            .query(&format!("SELECT max({col}) FROM {table}"))
            .parse()
            .unwrap();
        let my_max: u64 = my
            .query(&format!("SELECT MAX({col}) FROM `{table}`"))
            .parse()
            .unwrap();
        assert_eq!(max, my_max, "max {table}.{col}");
        let counter: u64 = my
            .query(&format!(
                "SELECT AUTO_INCREMENT FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '{table}'"
            ))
            .parse()
            .unwrap();
        let id: u64 = pg
            .query(&format!(
                "WITH ins AS ({insert} RETURNING {col}) SELECT {col} FROM ins"
            ))
            .parse()
            .unwrap();
        assert!(
            id > max,
            "{table}.{col}: new id {id} not above the copied maximum {max}"
        );
        assert_eq!(
            id,
            (max + 1).max(counter),
            "{table}.{col}: new id (copied max {max}, MariaDB's AUTO_INCREMENT {counter})"
        );
    }
    assert_eq!(
        pg.query("SELECT film_id FROM film WHERE title = 'New film'"),
        "1028"
    );

    // ---- the table without a key has every row, duplicates too
    assert_eq!(
        pg.query("SELECT count(*) FROM audit_log WHERE action = 'dup'"),
        "3"
    );
    assert_eq!(
        pg.query("SELECT count(*) FROM audit_log WHERE action = 'rental'"),
        "2"
    );
    assert_eq!(
        pg.query(
            "SELECT md5(string_agg(extract(epoch FROM happened_at)::bigint || '|' || action || '|' || coalesce(detail, '~'), ',' \
             ORDER BY happened_at, action)) FROM audit_log"
        ),
        my.query(
            "SELECT MD5(GROUP_CONCAT(CONCAT(UNIX_TIMESTAMP(happened_at), '|', action, '|', IFNULL(detail, '~')) \
             ORDER BY happened_at, action)) FROM audit_log"
        ),
        "audit_log rows"
    );

    // ---- the composite-key table: every pair
    assert_eq!(
        pg.query("SELECT md5(string_agg(film_id || ':' || store_id || ':' || copies, ',' ORDER BY film_id, store_id)) FROM film_store"),
        my.query("SELECT MD5(GROUP_CONCAT(CONCAT(film_id, ':', store_id, ':', copies) ORDER BY film_id, store_id)) FROM film_store"),
        "film_store rows"
    );

    // ---- the ON DELETE rules act
    pg.exec("DELETE FROM category WHERE name = 'Martial Arts'");
    assert_eq!(
        pg.query("SELECT category_id IS NULL FROM film WHERE title LIKE 'Crouching Tiger%'"),
        "t",
        "ON DELETE SET NULL"
    );
    pg.exec("DELETE FROM rental WHERE film_id = (SELECT film_id FROM film WHERE title LIKE 'Crouching Tiger%')");
    pg.exec("DELETE FROM customer WHERE last_name = 'O''Crab'");
    assert_eq!(
        pg.query("SELECT customer_id IS NULL FROM review WHERE body LIKE '🦀%'"),
        "t",
        "ON DELETE SET NULL"
    );
    pg.exec("DELETE FROM film WHERE title LIKE 'Crouching Tiger%'");
    assert_eq!(
        pg.query("SELECT count(*) FROM review WHERE body LIKE '🦀%'"),
        "0",
        "ON DELETE CASCADE"
    );
}

#[test]
fn tables_filter_uses_database_dot_table() {
    let my = loaded_shop();
    let pg = TestDb::new("myshopf");
    let pattern = format!("{}.store", my.name);
    let out = copy(&my, &pg, &["--tables", &pattern]);
    assert_success(&out, "copying one table");
    assert_eq!(
        pg.query(
            "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables \
             WHERE table_schema = 'public'"
        ),
        "store",
        "only the selected table is created\n{}",
        describe(&out)
    );
    assert_eq!(pg.query("SELECT count(*) FROM store"), "4");
    assert_eq!(
        pg.query("SELECT city FROM store WHERE name = 'Euro Corner'"),
        "€é"
    );
}
