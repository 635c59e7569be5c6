//! PostgreSQL as the oracle for howdah's single-value encoders: every value is loaded with
//! binary COPY and read back as text (and, where the type has a send function, as the binary
//! form PostgreSQL stores), then compared with the exact expected rendering.

use bytes::Bytes;
use futures_util::SinkExt;
use howdah::pgcopy::encode;
use howdah::pgcopy::values::*;
use tokio_postgres::Client;

use crate::support::TestDb;

/// A connection to `db` in a session with fixed output settings.
async fn client(db: &TestDb) -> Client {
    let client = db.client().await;
    // Fixed output settings, so the expected text does not depend on the server's defaults.
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET IntervalStyle = 'postgres';
             SET extra_float_digits = 1; SET bytea_output = 'hex';",
        )
        .await
        .unwrap();
    client
}

/// The table's columns: name, type, and the send function whose output must equal the
/// payload we wrote (None for jsonb, which PostgreSQL normalises).
const COLUMNS: [(&str, &str, Option<&str>); 18] = [
    ("b", "boolean", Some("boolsend")),
    ("i2", "int2", Some("int2send")),
    ("i4", "int4", Some("int4send")),
    ("i8", "int8", Some("int8send")),
    ("f4", "real", Some("float4send")),
    ("f8", "double precision", Some("float8send")),
    ("by", "bytea", Some("byteasend")),
    ("t", "text", Some("textsend")),
    ("j", "jsonb", None),
    ("u", "uuid", Some("uuid_send")),
    ("n", "numeric", Some("numeric_send")),
    ("d", "date", Some("date_send")),
    ("ts", "timestamp", Some("timestamp_send")),
    ("tz", "timestamptz", Some("timestamptz_send")),
    ("tm", "time", Some("time_send")),
    ("iv", "interval", Some("interval_send")),
    ("ta", "text[]", Some("array_send")),
    ("vb", "bit varying(64)", Some("varbit_send")),
];

/// One value to load: its column, a label for messages, the encoded field, and the text
/// PostgreSQL must print for it.
struct Case {
    col: &'static str,
    label: String,
    field: Vec<u8>,
    text: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Collects cases; each `add` encodes one field with the function under test.
#[derive(Default)]
struct Cases(Vec<Case>);

impl Cases {
    fn add(
        &mut self,
        col: &'static str,
        label: impl Into<String>,
        text: impl Into<String>,
        put: impl FnOnce(&mut Vec<u8>),
    ) {
        let mut field = Vec::new();
        put(&mut field);
        self.0.push(Case {
            col,
            label: label.into(),
            field,
            text: text.into(),
        });
    }
}

/// Year, month, day, hour, minute, second, microseconds.
type DateTime = (u16, u8, u8, u8, u8, u8, u32);

/// A MySQL TIME: negative, days, hours, minutes, seconds, microseconds.
type MysqlTime = (bool, u32, u8, u8, u8, u32);

fn all_cases() -> Cases {
    let mut c = Cases::default();

    c.add("b", "true", "true", |b| put_bool(b, true));
    c.add("b", "false", "false", |b| put_bool(b, false));
    for v in [i16::MIN, -1, 0, i16::MAX] {
        c.add("i2", v.to_string(), v.to_string(), |b| put_i16(b, v));
    }
    for v in [i32::MIN, 0, 123_456, i32::MAX] {
        c.add("i4", v.to_string(), v.to_string(), |b| put_i32(b, v));
    }
    for v in [i64::MIN, -1, 0, i64::MAX] {
        c.add("i8", v.to_string(), v.to_string(), |b| put_i64(b, v));
    }

    let f32s: [(&str, f32, &str); 14] = [
        ("0.1", 0.1, "0.1"),
        ("1/3", 1.0 / 3.0, "0.33333334"),
        ("16777217 (rounds)", 16_777_217.0, "1.6777216e+07"),
        ("123456.79", 123_456.79, "123456.79"),
        ("MAX", f32::MAX, "3.4028235e+38"),
        ("MIN", f32::MIN, "-3.4028235e+38"),
        ("MIN_POSITIVE", f32::MIN_POSITIVE, "1.1754944e-38"),
        ("smallest subnormal", f32::from_bits(1), "1e-45"),
        ("-0.0", -0.0, "-0"),
        ("0.0", 0.0, "0"),
        ("NaN", f32::NAN, "NaN"),
        ("inf", f32::INFINITY, "Infinity"),
        ("-inf", f32::NEG_INFINITY, "-Infinity"),
        ("1e-5", 1e-5, "1e-05"),
    ];
    for (label, v, text) in f32s {
        c.add("f4", label, text, |b| put_f32(b, v));
    }
    let f64s: [(&str, f64, &str); 13] = [
        ("0.1", 0.1, "0.1"),
        ("0.1+0.2", 0.1 + 0.2, "0.30000000000000004"),
        ("1/3", 1.0 / 3.0, "0.3333333333333333"),
        // Shortest round-trip digits; an exponent from 15 on switches to e-notation.
        (
            "2^53+1 (rounds)",
            9_007_199_254_740_993.0,
            "9.007199254740992e+15",
        ),
        ("15 digits", 123_456_789_012_345.0, "123456789012345"),
        ("MAX", f64::MAX, "1.7976931348623157e+308"),
        ("MIN_POSITIVE", f64::MIN_POSITIVE, "2.2250738585072014e-308"),
        ("smallest subnormal", f64::from_bits(1), "5e-324"),
        ("-0.0", -0.0, "-0"),
        ("NaN", f64::NAN, "NaN"),
        ("inf", f64::INFINITY, "Infinity"),
        ("-inf", f64::NEG_INFINITY, "-Infinity"),
        ("1e15", 1e15, "1e+15"),
    ];
    for (label, v, text) in f64s {
        c.add("f8", label, text, |b| put_f64(b, v));
    }

    c.add("by", "empty", "\\x", |b| put_bytes(b, b""));
    c.add("by", "binary", "\\x0001feff00", |b| {
        put_bytes(b, &[0, 1, 0xfe, 0xff, 0])
    });
    for s in [
        "",
        "héllo wörld ✓",
        "tab\there\nnew line",
        "😀 \\ 'q' \"dq\"",
    ] {
        c.add("t", format!("{s:?}"), s, |b| put_bytes(b, s.as_bytes()));
    }

    let json_cases = [
        (
            r#"{"b": {"c": [1, 2.50, {"d": null}]}, "a": 1, "s": "é\u00e9\n", "aa": -1e40, "big": 18446744073709551616123, "a": 2}"#,
            r#"{"a": 2, "b": {"c": [1, 2.50, {"d": null}]}, "s": "éé\n", "aa": -10000000000000000000000000000000000000000, "big": 18446744073709551616123}"#,
        ),
        ("null", "null"),
        ("[]", "[]"),
        (r#""just text""#, r#""just text""#),
        (
            "123456789012345678901234567890.123456789",
            "123456789012345678901234567890.123456789",
        ),
    ];
    for (json, text) in json_cases {
        c.add("j", json, text, |b| put_jsonb(b, json.as_bytes()));
    }

    let id: [u8; 16] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];
    c.add("u", "mixed", "12345678-9abc-def0-0123-456789abcdef", |b| {
        put_uuid(b, &id)
    });
    c.add("u", "nil", "00000000-0000-0000-0000-000000000000", |b| {
        put_uuid(b, &[0; 16])
    });
    c.add("u", "max", "ffffffff-ffff-ffff-ffff-ffffffffffff", |b| {
        put_uuid(b, &[0xff; 16])
    });

    let max_digits = format!("0.{}", "7".repeat(12_000)); // 3000 base-10000 digits
    let max_scale = format!("0.{}1", "0".repeat(16_382)); // display scale 16383
    let max_weight = format!("1{}", "0".repeat(131_071)); // weight 32767
    let numerics: Vec<(String, String)> = [
        ("0", "0"),
        ("-0.00", "0.00"),
        ("0.000", "0.000"),
        ("00012.3400", "12.3400"),
        ("-00123.4500", "-123.4500"),
        ("99999999999999999999.99999", "99999999999999999999.99999"),
        (
            "-99999999999999999999999999999999999.999999999999999999999999999999",
            "-99999999999999999999999999999999999.999999999999999999999999999999",
        ),
        (".5", "0.5"),
        ("-.5", "-0.5"),
        ("12.", "12"),
        ("+7", "7"),
        ("1.50", "1.50"),
        ("10000", "10000"),
        ("10000.0001", "10000.0001"),
        ("-0.000000012", "-0.000000012"),
        ("100000000.00000000", "100000000.00000000"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .chain([
        (max_digits.clone(), max_digits),
        (max_scale.clone(), max_scale),
        (max_weight.clone(), max_weight),
    ])
    .collect();
    for (s, text) in numerics {
        let label = if s.len() > 40 {
            format!("{}... ({} chars)", &s[..40], s.len())
        } else {
            s.clone()
        };
        c.add("n", format!("str {label}"), text, |b| {
            put_numeric_str(b, &s).unwrap()
        });
    }
    for v in [0, 1, 9999, 10_000, 100_000_000, u64::MAX] {
        c.add("n", format!("u64 {v}"), v.to_string(), |b| {
            put_numeric_u64(b, v)
        });
    }
    for v in [i64::MIN, -10_000, -1, 0, i64::MAX] {
        c.add("n", format!("i64 {v}"), v.to_string(), |b| {
            put_numeric_i64(b, v)
        });
    }

    for (y, m, d) in [
        (1, 1, 1),
        (9999, 12, 31),
        (2000, 2, 29),
        (1900, 3, 1),
        (2024, 2, 29),
        (1970, 1, 1),
        (1999, 12, 31),
    ] {
        let text = format!("{y:04}-{m:02}-{d:02}");
        c.add("d", text.clone(), text, |b| put_date(b, y, m, d).unwrap());
    }
    // MySQL's year 0000 is the year before 0001: PostgreSQL's 1 BC (a leap year).
    c.add("d", "0000-06-15", "0001-06-15 BC", |b| {
        put_date(b, 0, 6, 15).unwrap()
    });
    c.add("d", "0000-02-29", "0001-02-29 BC", |b| {
        put_date(b, 0, 2, 29).unwrap()
    });
    c.add("ts", "0000-01-01 10:00:00", "0001-01-01 10:00:00 BC", |b| {
        put_timestamp(b, 0, 1, 1, 10, 0, 0, 0).unwrap()
    });

    let stamps: [(DateTime, &str); 6] = [
        (
            (2000, 2, 29, 23, 59, 59, 999_999),
            "2000-02-29 23:59:59.999999",
        ),
        ((1, 1, 1, 0, 0, 0, 0), "0001-01-01 00:00:00"),
        (
            (9999, 12, 31, 23, 59, 59, 999_999),
            "9999-12-31 23:59:59.999999",
        ),
        ((1970, 1, 1, 0, 0, 0, 1), "1970-01-01 00:00:00.000001"),
        ((1900, 3, 1, 12, 30, 0, 500_000), "1900-03-01 12:30:00.5"),
        ((2038, 1, 19, 3, 14, 8, 0), "2038-01-19 03:14:08"),
    ];
    for ((y, mo, d, h, mi, s, us), text) in stamps {
        c.add("ts", text, text, |b| {
            put_timestamp(b, y, mo, d, h, mi, s, us).unwrap()
        });
        c.add("tz", text, format!("{text}+00"), |b| {
            put_timestamp(b, y, mo, d, h, mi, s, us).unwrap()
        });
    }
    let shifted = timestamp_micros(2024, 2, 29, 23, 30, 0, 0).unwrap() + 2 * 3_600_000_000;
    c.add(
        "tz",
        "micros after a +2h shift",
        "2024-03-01 01:30:00+00",
        |b| put_timestamp_micros(b, shifted),
    );
    c.add("ts", "micros 0", "2000-01-01 00:00:00", |b| {
        put_timestamp_micros(b, 0)
    });
    c.add("ts", "micros i64::MAX", "infinity", |b| {
        put_timestamp_micros(b, i64::MAX)
    });
    c.add("ts", "micros i64::MIN", "-infinity", |b| {
        put_timestamp_micros(b, i64::MIN)
    });
    c.add("tz", "micros i64::MAX", "infinity", |b| {
        put_timestamp_micros(b, i64::MAX)
    });

    let times: [(MysqlTime, &str); 5] = [
        ((false, 0, 23, 59, 59, 999_999), "23:59:59.999999"),
        ((false, 0, 0, 0, 0, 0), "00:00:00"),
        ((true, 0, 0, 0, 0, 0), "00:00:00"),
        ((false, 0, 12, 34, 56, 500_000), "12:34:56.5"),
        ((false, 0, 0, 0, 0, 1), "00:00:00.000001"),
    ];
    for ((neg, days, h, m, s, us), text) in times {
        c.add("tm", format!("{neg} {days} {text}"), text, |b| {
            put_time(b, neg, days, h, m, s, us).unwrap()
        });
    }

    let intervals: [(MysqlTime, &str); 7] = [
        ((false, 34, 22, 59, 59, 0), "838:59:59"),
        ((true, 34, 22, 59, 59, 0), "-838:59:59"),
        ((true, 0, 0, 0, 1, 500_000), "-00:00:01.5"),
        ((false, 0, 0, 0, 0, 0), "00:00:00"),
        ((false, 1, 2, 0, 0, 0), "26:00:00"),
        ((false, 0, 0, 0, 0, 1), "00:00:00.000001"),
        ((true, 0, 23, 59, 59, 999_999), "-23:59:59.999999"),
    ];
    for ((neg, days, h, m, s, us), text) in intervals {
        c.add("iv", format!("{neg} {days} {h}:{m}:{s}.{us}"), text, |b| {
            put_interval_time(b, neg, days, h, m, s, us)
        });
    }

    let arrays: [(&[&[u8]], &str); 4] = [
        (&[], "{}"),
        (
            &[b"a,b", b"say \"hi\"", "héllo wörld ✓".as_bytes()],
            r#"{"a,b","say \"hi\"","héllo wörld ✓"}"#,
        ),
        (
            &[b"", b"NULL", b"back\\slash", b"sp ace", b"{}"],
            r#"{"","NULL","back\\slash","sp ace","{}"}"#,
        ),
        (&[b"x"], "{x}"),
    ];
    for (elements, text) in arrays {
        c.add("ta", text, text, |b| put_text_array(b, elements));
    }

    let varbits: [(u32, &[u8], String); 8] = [
        (1, &[1], "1".into()),
        (1, &[0], "0".into()),
        (10, &[0b10, 0b1], "1000000001".into()),
        (10, &[0, 0, 0b10, 0b1], "1000000001".into()),
        (64, &[0xff; 8], "1".repeat(64)),
        (3, &[5], "101".into()),
        (12, &[0x0a, 0xbc], "101010111100".into()),
        (0, &[], String::new()),
    ];
    for (bits, bytes, text) in varbits {
        c.add("vb", format!("BIT({bits}) {bytes:02x?}"), text, |b| {
            put_varbit(b, bits, bytes).unwrap()
        });
    }
    c
}

/// Sends `tuples` (whole tuples, already encoded) as one binary COPY into `table`.
async fn copy_in(c: &Client, table: &str, tuples: Vec<u8>) -> Result<u64, tokio_postgres::Error> {
    let sink = c
        .copy_in::<_, Bytes>(&format!("COPY {table} FROM STDIN (FORMAT binary)"))
        .await?;
    futures_util::pin_mut!(sink);
    sink.feed(encode::header()).await?;
    sink.feed(Bytes::from(tuples)).await?;
    sink.feed(encode::trailer()).await?;
    sink.as_mut().finish().await
}

/// Every encoder's output loads, and PostgreSQL prints and stores exactly what we expect.
#[tokio::test]
async fn values_load_and_read_back_exactly() {
    let db = TestDb::new("values_oracle");
    let cols: Vec<String> = COLUMNS
        .iter()
        .map(|(name, ty, _)| format!("{name} {ty}"))
        .collect();
    db.exec(&format!("CREATE TABLE v (id int4, {})", cols.join(", ")));
    let c = client(&db).await;
    let cases = all_cases().0;

    // One row per case: its id, the value in its column, NULL everywhere else. The last row
    // is all NULL.
    let nfields = 1 + COLUMNS.len() as i16;
    let mut tuples = Vec::new();
    for (id, case) in cases.iter().enumerate() {
        assert!(
            COLUMNS.iter().any(|(name, _, _)| *name == case.col),
            "unknown column {}",
            case.col
        );
        tuples.extend_from_slice(&nfields.to_be_bytes());
        put_i32(&mut tuples, id as i32);
        for (name, _, _) in COLUMNS {
            if name == case.col {
                tuples.extend_from_slice(&case.field);
            } else {
                put_null(&mut tuples);
            }
        }
    }
    tuples.extend_from_slice(&nfields.to_be_bytes());
    put_i32(&mut tuples, cases.len() as i32);
    for _ in COLUMNS {
        put_null(&mut tuples);
    }
    let loaded = copy_in(&c, "v", tuples).await.unwrap();
    assert_eq!(loaded, cases.len() as u64 + 1);

    let mut differences = Vec::new();
    for (name, ty, send) in COLUMNS {
        let send_expr = send.map_or("''".to_string(), |f| format!("encode({f}({name}), 'hex')"));
        let rows = c
            .query(
                &format!(
                    "SELECT id, {name}::text, {send_expr} FROM v WHERE {name} IS NOT NULL ORDER BY id"
                ),
                &[],
            )
            .await
            .unwrap();
        let expected: Vec<(usize, &Case)> = cases
            .iter()
            .enumerate()
            .filter(|(_, case)| case.col == name)
            .collect();
        assert!(!expected.is_empty(), "no cases for column {name}");
        let got: Vec<(i32, String, String)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        if got.len() != expected.len() {
            differences.push(format!(
                "{name} ({ty}): {} non-NULL rows, expected {}",
                got.len(),
                expected.len()
            ));
            continue;
        }
        for ((id, case), (got_id, text, stored)) in expected.iter().zip(&got) {
            assert_eq!(*id as i32, *got_id, "row order for {name}");
            if *text != case.text {
                differences.push(format!(
                    "{name} ({ty}) {}: PostgreSQL prints {:?}, expected {:?}",
                    case.label,
                    shorten(text),
                    shorten(&case.text)
                ));
            }
            let payload = hex(&case.field[4..]);
            if send.is_some() && *stored != payload {
                differences.push(format!(
                    "{name} ({ty}) {}: PostgreSQL stores {}, we sent {}",
                    case.label,
                    shorten(stored),
                    shorten(&payload)
                ));
            }
        }
    }
    let all_null = db.query(&format!(
        "SELECT count(*) FROM v WHERE num_nonnulls({}) = 0",
        COLUMNS.map(|(name, _, _)| name).join(", ")
    ));
    if all_null != "1" {
        differences.push(format!("{all_null} all-NULL rows, expected 1"));
    }
    assert!(
        differences.is_empty(),
        "{} of {} values differ:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 120 {
        format!(
            "{}... ({} chars)",
            s.chars().take(120).collect::<String>(),
            s.chars().count()
        )
    } else {
        s.to_string()
    }
}

/// A field the encoders mark as unloadable (an interval beyond 64-bit microseconds) fails the
/// COPY instead of loading a wrong value.
#[tokio::test]
async fn unloadable_fields_fail_the_copy() {
    let db = TestDb::new("values_unloadable");
    db.exec("CREATE TABLE v (id int4, iv interval)");
    let c = client(&db).await;
    let mut tuples = Vec::new();
    tuples.extend_from_slice(&2i16.to_be_bytes());
    put_i32(&mut tuples, 1);
    put_interval_time(&mut tuples, false, u32::MAX, 23, 59, 59, 999_999);
    let err = copy_in(&c, "v", tuples).await.unwrap_err();
    let msg = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert_eq!(msg, "invalid field size", "{err:?}");
    assert_eq!(db.query("SELECT count(*) FROM v"), "0");
}
