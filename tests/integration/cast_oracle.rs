//! PostgreSQL as the oracle for `transform::cast`: for generated inputs (valid values, edge
//! cases and near misses), every cast either gives exactly the bytes PostgreSQL's binary output
//! has for `SELECT $1::text::<source type>::<target type>`, or is rejected. Rejecting a value
//! PostgreSQL accepts is allowed; each property prints how often it happened.
//!
//! The source type is `text` for `Kind::Text`, `bigint` for `Integer`, `numeric` for `Exact`,
//! `double precision` for `Float`, `real` for `Real` and `boolean` for `Bool`. PostgreSQL has no cast from
//! `bigint` to `boolean` nor from `boolean` to `smallint`/`bigint`: those oracles use the
//! `integer` casts' rules (`<> 0`, and `boolean::integer` then widening or narrowing).
//! `Kind::Integer` also covers MySQL's unsigned bigint: an integer beyond `bigint` that we
//! accept is checked as `numeric` instead.
//!
//! Values are compared as the target's receive function reads them: byte for byte, except
//! `jsonb` (our payload is JSON text, which PostgreSQL normalises first) and numeric NaN and
//! infinities (whose display scale `numeric_recv` ignores and `numeric_send` fills oddly).
//!
//! `PROPTEST_CASES` (default 256) sets the batches per property, `PROPTEST_RNG_SEED` a seed;
//! with `HOWDAH_CAST_SURVEY` set, a property prints every wrong value it meets instead of
//! failing at the first (a survey while fixing, which does not fail).

use std::cell::RefCell;
use std::collections::BTreeSet;

use howdah::transform::cast::{Cast, Kind, TargetType};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, Statement};

use crate::support::{admin_url, connect};

/// Any value's binary form, as the server sends it.
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// One connection, in a session set up as the sources render values.
struct Oracle {
    rt: tokio::runtime::Runtime,
    client: Client,
}

/// What one property saw, over distinct inputs.
#[derive(Default)]
struct Stats {
    inputs: BTreeSet<String>,
    both: usize,
    pg_only: BTreeSet<String>,
    /// Wrong values, kept instead of failing at once when surveying.
    wrong: BTreeSet<String>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn db_message(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => d.message().to_string(),
        None => e.to_string(),
    }
}

async fn run_one(client: &Client, stmt: &Statement, input: &str) -> Result<Vec<u8>, String> {
    let row = client
        .query_one(stmt, &[&input])
        .await
        .map_err(db_message)?;
    let v: Option<Raw> = row.try_get(0).map_err(|e| e.to_string())?;
    v.map(|r| r.0).ok_or_else(|| "NULL".to_string())
}

impl Oracle {
    fn new(zone: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Casts of literals need no test database: the server's own `postgres` serves.
        let client = rt.block_on(async {
            let client = connect(&admin_url()).await;
            client
                .batch_execute(&format!(
                    "SET TimeZone = '{zone}'; SET DateStyle = 'ISO, MDY'; \
                     SET extra_float_digits = 3; SET IntervalStyle = 'postgres';"
                ))
                .await
                .unwrap();
            client
        });
        Oracle { rt, client }
    }

    /// Checks `cast` against PostgreSQL on batches of inputs from `inputs`.
    fn check(&self, cast: Cast, inputs: BoxedStrategy<String>) {
        let target = cast.to.sql();
        let source = match cast.from {
            Kind::Text => "text",
            Kind::Integer => "bigint",
            Kind::Exact => "numeric",
            Kind::Float => "double precision",
            Kind::Real => "real",
            Kind::Bool => "boolean",
            k => panic!("no oracle for {k:?}"),
        };
        let sql = match (cast.from, cast.to) {
            (Kind::Integer, TargetType::Bool) => "SELECT $1::text::bigint <> 0".to_string(),
            (Kind::Bool, TargetType::Int2 | TargetType::Int8) => {
                format!("SELECT $1::text::boolean::integer::{target}")
            }
            _ => format!("SELECT $1::text::{source}::{target}"),
        };
        let label = format!(
            "{target} from {source}{}{}",
            match &cast.zone {
                Some(z) => format!(" in {}", z.iana_name().unwrap_or("?")),
                None => String::new(),
            },
            if cast.truncate { " (truncate)" } else { "" }
        );
        let wide = match cast.to {
            TargetType::Bool => "SELECT $1::text::numeric <> 0".to_string(),
            _ => format!("SELECT $1::text::numeric::{target}"),
        };
        let stmts = self.rt.block_on(async {
            Stmts {
                oracle: self.client.prepare(&sql).await.unwrap(),
                wide: match cast.from {
                    Kind::Integer => Some(self.client.prepare(&wide).await.unwrap()),
                    _ => None,
                },
                jsonb: self.client.prepare("SELECT $1::text::jsonb").await.unwrap(),
            }
        });
        let stats = RefCell::new(Stats::default());
        let config = Config {
            failure_persistence: None,
            ..Config::default()
        };
        let survey = std::env::var_os("HOWDAH_CAST_SURVEY").is_some();
        let mut runner = TestRunner::new(config);
        let result = runner.run(&prop::collection::vec(inputs, 1..16), |batch| {
            let results = self.rt.block_on(futures_util::future::join_all(
                batch.iter().map(|input| self.one(&cast, &stmts, input)),
            ));
            let mut stats = stats.borrow_mut();
            for (input, (ours, pg)) in batch.iter().zip(results) {
                let new = stats.inputs.insert(input.clone());
                let wrong = match (ours, pg) {
                    (Ok(ours), Ok(pg)) if same_value(cast.to, &ours, &pg) => {
                        stats.both += usize::from(new);
                        None
                    }
                    (Ok(ours), Ok(pg)) => Some(format!(
                        "{label}: {input:?}: we give {} but PostgreSQL gives {}",
                        hex(&ours),
                        hex(&pg)
                    )),
                    (Ok(ours), Err(e)) => Some(format!(
                        "{label}: {input:?}: we give {} but PostgreSQL rejects it: {e}",
                        hex(&ours)
                    )),
                    (Err(_), Ok(_)) => {
                        stats.pg_only.insert(input.clone());
                        None
                    }
                    (Err(_), Err(_)) => None,
                };
                match wrong {
                    Some(w) if survey => {
                        stats.wrong.insert(w);
                    }
                    Some(w) => return Err(TestCaseError::fail(w)),
                    None => {}
                }
            }
            Ok(())
        });
        let stats = stats.into_inner();
        let examples: Vec<&String> = stats.pg_only.iter().take(6).collect();
        println!(
            "cast_oracle {label}: {} distinct inputs, {} cast alike, {} accepted by PostgreSQL \
             and rejected by us, e.g. {examples:?}",
            stats.inputs.len(),
            stats.both,
            stats.pg_only.len()
        );
        for w in stats.wrong.iter().take(40) {
            println!("WRONG {w}");
        }
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// Our field (payload only) and PostgreSQL's result for one input. For `jsonb` the
    /// payload is what `jsonb_recv` reads, JSON text: PostgreSQL normalises it to compare.
    async fn one(
        &self,
        cast: &Cast,
        stmts: &Stmts,
        input: &str,
    ) -> (Result<Vec<u8>, String>, Result<Vec<u8>, String>) {
        let mut buf = Vec::new();
        let ours = cast.put(&mut buf, input).map(|()| {
            let len = i32::from_be_bytes(buf[..4].try_into().unwrap());
            assert_eq!(len as usize, buf.len() - 4, "field length for {input:?}");
            buf[4..].to_vec()
        });
        let pg = match run_one(&self.client, &stmts.oracle, input).await {
            // Only an integer we accept can be beyond bigint and still right.
            Err(e) if e.ends_with("out of range for type bigint") && ours.is_ok() => {
                match &stmts.wide {
                    Some(wide) => run_one(&self.client, wide, input).await,
                    None => Err(e),
                }
            }
            pg => pg,
        };
        let ours = match ours {
            Ok(payload) if cast.to == TargetType::Jsonb => {
                assert_eq!(payload.first(), Some(&1), "jsonb version for {input:?}");
                let text = String::from_utf8(payload[1..].to_vec()).unwrap();
                run_one(&self.client, &stmts.jsonb, &text)
                    .await
                    .map_err(|e| format!("(our payload is no jsonb: {e})"))
            }
            other => other,
        };
        match ours {
            Err(e) if e.starts_with("(our payload") => (Ok(b"?".to_vec()), Err(e)),
            ours => (ours, pg),
        }
    }
}

struct Stmts {
    /// `$1::text::<source>::<target>`.
    oracle: Statement,
    /// `$1::text::numeric::<target>`, for integers beyond `bigint`.
    wide: Option<Statement>,
    /// `$1::text::jsonb`, to normalise our `jsonb` payload.
    jsonb: Statement,
}

/// Whether two payloads are the same value for the target's receive function.
fn same_value(to: TargetType, ours: &[u8], pg: &[u8]) -> bool {
    let special = |b: &[u8]| b.len() == 8 && b[4] >= 0xC0;
    match to {
        TargetType::Numeric(_) if special(ours) && special(pg) => ours[..6] == pg[..6],
        _ => ours == pg,
    }
}

fn cast(to: TargetType, from: Kind) -> Cast {
    Cast {
        to,
        from,
        zone: None,
        truncate: false,
    }
}

// ---- strategies ----------------------------------------------------------------------------

fn pick(options: &'static [&'static str]) -> BoxedStrategy<String> {
    prop::sample::select(options).prop_map(String::from).boxed()
}

fn cat(parts: Vec<String>) -> String {
    parts.concat()
}

/// Mostly nothing; sometimes the spaces PostgreSQL skips, or ones it does not.
fn ws() -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just(String::new()),
        1 => pick(&[" ", "  ", "\t", "\n", "\r", "\x0b", "\x0c", "\u{a0}", "\u{3000}", " \n"]),
    ]
    .boxed()
}

fn padded(s: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (ws(), s, ws()).prop_map(|(a, b, c)| a + &b + &c).boxed()
}

const NOISE: &[char] = &[
    '0', '1', '5', '9', '.', '-', '+', 'e', 'E', ' ', 'x', '_', ',', ':', 'T', 'Z', '\\', '"', '{',
    '}', 'a', 'F', '\u{663}', 'é', '\0', '\t',
];

/// One random edit: a character inserted, removed or replaced.
fn mutate(s: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (s, any::<Index>(), 0..3u8, prop::sample::select(NOISE))
        .prop_map(|(s, at, op, c)| {
            let mut chars: Vec<char> = s.chars().collect();
            let i = at.index(chars.len() + 1);
            match op {
                0 => chars.insert(i, c),
                1 if i < chars.len() => {
                    chars.remove(i);
                }
                _ if i < chars.len() => chars[i] = c,
                _ => chars.push(c),
            }
            chars.into_iter().collect()
        })
        .boxed()
}

/// Valid-looking values, padded, and near misses of them.
fn near(s: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![3 => padded(s.clone()), 1 => mutate(s)].boxed()
}

fn random_case(s: BoxedStrategy<String>) -> BoxedStrategy<String> {
    (s, any::<u64>())
        .prop_map(|(s, bits)| {
            s.chars()
                .enumerate()
                .map(|(i, c)| {
                    if bits >> (i % 64) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
        .boxed()
}

fn sign() -> BoxedStrategy<String> {
    prop_oneof![4 => Just(String::new()), 2 => Just("-".into()), 1 => pick(&["+", "--", "+-"])]
        .boxed()
}

const INT_EDGES: &[&str] = &[
    "0",
    "-0",
    "+0",
    "00",
    "007",
    "1",
    "-1",
    "127",
    "128",
    "255",
    "32767",
    "32768",
    "-32768",
    "-32769",
    "65535",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "4294967295",
    "9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999",
    "0x10",
    "1_000",
    "1 000",
    "1,5",
    "\u{661}\u{662}",
    "",
    "-",
    "+",
    " ",
];

const NUMBER_EDGES: &[&str] = &[
    "NaN",
    "nan",
    "NAN",
    "+NaN",
    "-NaN",
    "Infinity",
    "infinity",
    "+Infinity",
    "-Infinity",
    "inf",
    "+inf",
    "-inf",
    "INF",
    "Inf",
    "infinit",
    "infinityy",
    "nan(1)",
    "0x1p3",
    "1e",
    "e1",
    ".",
    "-.",
    "+.5",
    ".5",
    "5.",
    "1.e5",
    ".e5",
    "1e+",
    "1e-",
    "0.0",
    "-0.0",
    "-0e5",
    "00.00",
    "0.5",
    "1.5",
    "2.5",
    "-2.5",
    "-0.5",
    "0.49999999999999994",
    "0.5000000000000001",
    "4503599627370495.5",
    "4503599627370496.5",
    "2.5000000000000001",
    "9007199254740993",
    "9223372036854775807.5",
    "9223372036854775295",
    "9223372036854775296",
    "-9223372036854775808.4",
    "-9223372036854775808.5",
    "-9223372036854776832",
    "2147483647.5",
    "2147483647.49",
    "-2147483648.5",
    "-2147483648.49",
    "32767.5",
    "-32768.5",
    "1.7976931348623157e308",
    "1.7976931348623159e308",
    "1e308",
    "1e309",
    "2.2250738585072014e-308",
    "4.9e-324",
    "2e-324",
    "3e-324",
    "1e-400",
    "1e-1000",
    "1e1000",
    "1e1001",
    "3.4028235e38",
    "3.4028236e38",
    "3.40282357e38",
    "3.4028234663852886e38",
    "1.17549435e-38",
    "1.4e-45",
    "1e-45",
    "7e-46",
    "7.1e-46",
    "1e-46",
    "0.1",
    "0.3",
    "1.005",
    "-1.005",
    "999.995",
    "999.994",
    "99999.5",
    "0.95",
    "0.05",
    "123456789012345678",
    "1.2345678901234567",
    "0.1234567890123456789",
    "12345678901234567890.5",
    "1234567890123455",
    "1234567890123465",
    "0.000001234567890123455",
    "1e20",
    "1e15",
    "1e-5",
    "123456789012345e5",
];

fn integer_text() -> BoxedStrategy<String> {
    near(
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<i32>().prop_map(|n| n.to_string()),
            any::<i16>().prop_map(|n| n.to_string()),
            (-3i64..4).prop_map(|n| n.to_string()),
            (sign(), "[0-9]{1,22}").prop_map(|(s, d)| s + &d),
            pick(INT_EDGES),
        ]
        .boxed(),
    )
}

fn decimal_text() -> BoxedStrategy<String> {
    let mantissa = ("[0-9]{0,12}", prop::option::of("[0-9]{0,12}")).prop_map(|(i, f)| match f {
        Some(f) => format!("{i}.{f}"),
        None => i,
    });
    let exponent = prop::option::of((pick(&["e", "E"]), pick(&["", "+", "-"]), "[0-9]{1,4}"))
        .prop_map(|e| e.map(|(a, b, c)| a + &b + &c).unwrap_or_default());
    let halves = (
        sign(),
        prop_oneof![0u64..20, any::<u32>().prop_map(u64::from), any::<u64>()],
        pick(&[
            ".5",
            ".50",
            ".5000000000000000001",
            ".4999999999999999999",
            ".49",
            ".51",
            "5e-1",
            ".05",
            ".005",
            ".995",
            ".45",
            ".55",
        ]),
    )
        .prop_map(|(s, n, f)| {
            if let Some(e) = f.strip_prefix('5') {
                format!("{s}{n}5{e}")
            } else {
                format!("{s}{n}{f}")
            }
        });
    near(
        prop_oneof![
            3 => (sign(), mantissa, exponent).prop_map(|(s, m, e)| s + &m + &e),
            2 => halves,
            2 => any::<f64>().prop_map(|f| format!("{f}")),
            1 => any::<f64>().prop_map(|f| format!("{f:e}")),
            1 => any::<f64>().prop_map(|f| format!("{f:?}")),
            1 => (any::<f64>(), 0usize..20).prop_map(|(f, p)| format!("{f:.p$e}")),
            1 => any::<f32>().prop_map(|f| format!("{f}")),
            1 => any::<f32>().prop_map(|f| format!("{f:e}")),
            1 => any::<f32>().prop_map(f32_midpoint),
            1 => any::<i64>().prop_map(|n| n.to_string()),
            3 => pick(NUMBER_EDGES),
            1 => pick(INT_EDGES),
        ]
        .boxed(),
    )
}

/// A `real` source's values as PostgreSQL (`1.2345679e+11`) or MySQL's reader
/// (`123456790000`) print them, from 2^24 up where a double reading of that text is another
/// number, ties of `float4_numeric`'s 6 digits and of the integer casts, and any number.
fn real_text() -> BoxedStrategy<String> {
    let float4 = prop_oneof![
        any::<f32>(),
        (16_777_216u32..u32::MAX).prop_map(|n| n as f32),
        any::<i64>().prop_map(|n| n as f32),
        (0u32..8_388_608).prop_map(|n| n as f32 + 0.5),
        (100_000u32..16_777_216).prop_map(|n| (n / 10 * 10 + 5) as f32),
    ];
    near(
        prop_oneof![
            3 => float4.clone().prop_map(|f| format!("{f:e}")),
            3 => float4.prop_map(|f| format!("{f}")),
            2 => decimal_text(),
            1 => integer_text(),
        ]
        .boxed(),
    )
}

/// The shortest text of the double halfway between a float and the next one: a double
/// rounding (text to double to float) and a direct one (text to float) part there.
fn f32_midpoint(x: f32) -> String {
    let x = if x.is_finite() { x.abs() } else { 1.0 };
    let next = f32::from_bits(x.to_bits() + 1);
    let mid = (f64::from(x) + f64::from(next)) / 2.0;
    format!("{mid:e}")
}

fn bool_text() -> BoxedStrategy<String> {
    near(random_case(pick(&[
        "t",
        "tr",
        "tru",
        "true",
        "truex",
        "y",
        "ye",
        "yes",
        "yess",
        "o",
        "on",
        "onn",
        "of",
        "off",
        "offf",
        "f",
        "fa",
        "fal",
        "fals",
        "false",
        "falsey",
        "n",
        "no",
        "non",
        "1",
        "0",
        "2",
        "01",
        "10",
        "-1",
        "",
        "true false",
        "yes!",
    ])))
}

fn uuid_text() -> BoxedStrategy<String> {
    let hyphens = prop_oneof![
        Just(vec![8, 12, 16, 20]),
        Just(vec![4, 8, 12, 16, 20, 24, 28]),
        Just(vec![]),
        prop::collection::vec(0usize..33, 0..6),
    ];
    let braces = pick(&["", "", "", "{}", "{", "}", "()"]);
    let raw = (
        prop_oneof!["[0-9a-f]{32}", "[0-9A-F]{32}", "[0-9a-fA-F]{31,33}"],
        hyphens,
        braces,
    )
        .prop_map(|(h, mut at, b)| {
            at.sort_unstable();
            at.dedup();
            let mut s = String::new();
            for (i, c) in h.chars().enumerate() {
                if at.contains(&i) {
                    s.push('-');
                }
                s.push(c);
            }
            if at.contains(&h.len()) {
                s.push('-');
            }
            let mut b = b.chars();
            let open = b.next().map(String::from).unwrap_or_default();
            let close = b.next().map(String::from).unwrap_or_default();
            if open == "}" {
                s + &open
            } else {
                open + &s + &close
            }
        })
        .boxed();
    prop_oneof![3 => raw.clone(), 1 => mutate(raw.clone()), 1 => padded(raw)].boxed()
}

fn json_text() -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        3 => pick(&[
            "null", "true", "false", "0", "-0", "1", "-1.5", "1e400", "1E-400", "2.5e+3",
            "12345678901234567890123", "0.1", "3.0", "-", "01", "1.", "+1", ".5", "NaN", "TRUE",
            "nul", "Infinity", "1e5", "\"\"", "\"a\"", "\"\\u0000\"", "\"a\\u0000b\"",
            "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800x\"",
            "\"\\x\"", "\"\\/\"", "\"tab\t\"", "\"é😀\"", "\"\\\\\"", "\"\\\"\"", "'a'",
            "\"\\u00\"", "\"\\U00e9\"", "\"\u{7f}\"", "\"\\b\\f\\n\\r\\t\"",
            "\"\\ud83d\\u0041\"", "\"\\ude00\\ud83d\"", "\"\\ud83d\\ude00\\ud83d\"",
            "\"\\\\u0000\"", "\"\\uD83D\\uDE00\"", "\"\u{1}\"", "\"\\u0001\"",
        ]),
        1 => "\\PC{0,6}".prop_map(|s| serde_json::to_string(&s).unwrap()),
        1 => any::<f64>().prop_map(|f| format!("{f:e}")),
    ];
    let key = prop_oneof![
        pick(&["\"a\"", "\"b\"", "\"\"", "\"\\u0000\"", "\"é\"", "a", "1"]),
        "[a-c]{1,3}".prop_map(|s| format!("\"{s}\"")),
    ];
    let sp = pick(&["", "", "", " ", "\n", "\t", "\r", "\x0c", "\x0b", "\u{a0}"]);
    let value = leaf
        .prop_recursive(3, 24, 5, move |inner| {
            let sp = sp.clone();
            prop_oneof![
                (
                    prop::collection::vec((inner.clone(), sp.clone()), 0..5),
                    sp.clone()
                )
                    .prop_map(|(v, s)| {
                        let items: Vec<String> = v.into_iter().map(|(a, b)| a + &b).collect();
                        format!("[{s}{}]", items.join(","))
                    }),
                prop::collection::vec((key.clone(), sp.clone(), inner), 0..5).prop_map(|kv| {
                    let items: Vec<String> = kv
                        .into_iter()
                        .map(|(k, s, v)| format!("{k}{s}:{v}"))
                        .collect();
                    format!("{{{}}}", items.join(","))
                }),
            ]
        })
        .boxed();
    prop_oneof![
        4 => value.clone(),
        2 => padded(value.clone()),
        2 => mutate(value),
        1 => pick(&[
            "", " ", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "[1] [2]", "{'a':1}",
            "{\"a\":1,\"a\":2}", "\u{feff}1", "\x0c1", "1\x0b", "[1]\n", "\"\\u0000\"",
            "{\"a\":{\"b\":[1,2,{\"c\":null}]}}", "[[[[[[[[[[]]]]]]]]]]",
        ]),
        1 => (1usize..200).prop_map(|n| "[".repeat(n) + &"]".repeat(n)),
    ]
    .boxed()
}

fn two(lo: u32, hi: u32) -> BoxedStrategy<String> {
    (lo..=hi).prop_map(|n| format!("{n:02}")).boxed()
}

fn date_text() -> BoxedStrategy<String> {
    let year = prop_oneof![
        3 => (1000u32..3000).prop_map(|y| y.to_string()),
        2 => pick(&[
            "0001", "0000", "0100", "1582", "1600", "1700", "1900", "1901", "1911", "1969",
            "1970", "1999", "2000", "2004", "2020", "2024", "2037", "2038", "2100", "9999",
            "10000", "99", "-2020", "020", "2020 ",
        ]),
    ];
    let month = prop_oneof![4 => two(1, 12), 1 => pick(&["00", "13", "1", "001", "Feb"])];
    let day = prop_oneof![4 => two(1, 28), 2 => two(29, 31), 1 => pick(&["00", "32", "1", "9 "])];
    let seps = pick(&["-", "-", "-", "-", "/", ".", ""]);
    (year, seps, month, day)
        .prop_map(|(y, s, m, d)| format!("{y}{s}{m}{s}{d}"))
        .boxed()
}

fn time_text() -> BoxedStrategy<String> {
    let frac = prop_oneof![
        3 => Just(String::new()),
        2 => "[0-9]{1,6}".prop_map(|f| format!(".{f}")),
        1 => "[0-9]{7,8}".prop_map(|f| format!(".{f}")),
        1 => pick(&[".", ".999999", ".9999995", ".0000005", ",5"]),
    ];
    let secs = prop_oneof![
        4 => (two(0, 59), frac).prop_map(|(s, f)| format!(":{s}{f}")),
        1 => Just(String::new()),
        1 => pick(&[":60", ":61", ":5", ":59.", ":00:00"]),
    ];
    let hour = prop_oneof![6 => two(0, 23), 1 => pick(&["24", "25", "1", "-1"])];
    let minute = prop_oneof![6 => two(0, 59), 1 => pick(&["60", "5"])];
    (hour, minute, secs)
        .prop_map(|(h, m, s)| format!("{h}:{m}{s}"))
        .boxed()
}

fn zone_text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => Just(String::new()),
        2 => pick(&[
            "Z", "z", "+00", "-00", "+02", "-05", "+05:30", "+0530", "-0330", "+14", "+15",
            "+16", "+15:59", "+15:60", "+02:30:15", " UTC", " +02", " Europe/Paris", "+2",
            "-12:00", " PST", " z", "+02:", "+1", "+123", "UTC", " CET", "-04:00 ",
        ]),
        1 => (pick(&["+", "-"]), two(0, 16), prop::option::of(two(0, 59))).prop_map(
            |(s, h, m)| match m {
                Some(m) => format!("{s}{h}:{m}"),
                None => format!("{s}{h}"),
            }
        ),
    ]
    .boxed()
}

/// Local times around daylight-saving changes in Paris and New York.
fn dst_text() -> BoxedStrategy<String> {
    (
        pick(&[
            "2020-03-29",
            "2020-10-25",
            "2020-03-08",
            "2020-11-01",
            "2024-03-31",
            "2024-10-27",
            "2024-03-10",
            "2024-11-03",
            "1995-09-24",
            "2040-03-25",
            "2050-10-30",
            "1900-01-01",
            "1911-03-11",
            "1883-11-18",
        ]),
        0u32..5,
        pick(&["00", "30", "59"]),
        pick(&["", ":00", ":59", ":59.999999", ":30.5"]),
    )
        .prop_map(|(d, h, m, s)| format!("{d} {h:02}:{m}{s}"))
        .boxed()
}

fn timestamp_text() -> BoxedStrategy<String> {
    let sep = pick(&[" ", " ", " ", "T", "t", "  ", "_"]);
    let full = (date_text(), sep, time_text(), zone_text())
        .prop_map(|(d, s, t, z)| format!("{d}{s}{t}{z}"))
        .boxed();
    near(
        prop_oneof![
            4 => full,
            2 => dst_text(),
            1 => (date_text(), zone_text()).prop_map(|(d, z)| d + &z),
            1 => random_case(pick(&[
                "infinity", "-infinity", "+infinity", "epoch", "now", "today", "tomorrow",
                "allballs", "infinit", "2020-01-01 ", "2020-01-01 10:00 ", "2020-02-29",
                "2021-02-29", "1900-02-29", "2000-02-29", "2020-01-01T", "2020-01-01 10",
                "2020-01-01 10:00:00.123456789", "2020-01-01 23:59:60", "2020-01-01 24:00:00",
                "2020-01-01 24:00:01", "4713-01-01 BC", "2020-01-01 AD", "J2451545",
            ])),
        ]
        .boxed(),
    )
}

fn bytea_text() -> BoxedStrategy<String> {
    let hex = prop_oneof![
        "[0-9a-fA-F]{0,12}",
        "([0-9a-f]{2}[ \t\n\r]?){0,6}",
        "[0-9a-fA-Fg \t\x0b]{0,9}",
    ]
    .prop_map(|h| format!("\\x{h}"));
    let piece = prop_oneof![
        4 => "[ -\\[\\]-~]{1,3}",
        2 => Just("\\\\".to_string()),
        2 => "[0-3][0-7]{2}".prop_map(|o| format!("\\{o}")),
        1 => "[0-9x]{0,3}".prop_map(|o| format!("\\{o}")),
        1 => pick(&["é", "😀", "\0", "\t", "\n"]),
    ];
    let escape = prop::collection::vec(piece, 0..8).prop_map(cat);
    prop_oneof![
        3 => hex,
        3 => escape,
        1 => pick(&["\\x", "\\X00", "\\", "\\x0", "\\x 0 0", "\\\\x00", " \\x00", "\\x00 "]),
    ]
    .boxed()
}

fn unicode_text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-zé😀 ]{0,8}",
        2 => ("[a-zé😀]{0,6}", "[ ]{0,4}").prop_map(|(a, b)| a + &b),
        2 => any::<String>(),
        1 => "\\PC{0,12}",
        1 => pick(&["", " ", "\0", "a\0b", "\u{feff}", "e\u{301}", "\u{10ffff}", "\u{fffd}"]),
    ]
    .boxed()
}

// ---- properties ------------------------------------------------------------------------------

#[test]
fn cast_oracle_boolean() {
    let o = Oracle::new("UTC");
    o.check(cast(TargetType::Bool, Kind::Text), bool_text());
    o.check(cast(TargetType::Bool, Kind::Bool), bool_text());
    o.check(cast(TargetType::Bool, Kind::Integer), integer_text());
}

#[test]
fn cast_oracle_integers() {
    let o = Oracle::new("UTC");
    let any_number = || prop_oneof![integer_text(), decimal_text()].boxed();
    for to in [TargetType::Int2, TargetType::Int4, TargetType::Int8] {
        o.check(cast(to, Kind::Text), any_number());
        o.check(cast(to, Kind::Integer), any_number());
        o.check(cast(to, Kind::Exact), any_number());
        o.check(cast(to, Kind::Float), any_number());
        o.check(cast(to, Kind::Real), real_text());
        o.check(cast(to, Kind::Bool), bool_text());
    }
}

#[test]
fn cast_oracle_numeric() {
    let o = Oracle::new("UTC");
    let any_number = || prop_oneof![integer_text(), decimal_text()].boxed();
    for typmod in [
        None,
        Some((5, 2)),
        Some((3, 0)),
        Some((10, 10)),
        Some((20, 4)),
    ] {
        let to = TargetType::Numeric(typmod);
        for from in [Kind::Text, Kind::Integer, Kind::Exact, Kind::Float] {
            o.check(cast(to, from), any_number());
        }
        o.check(cast(to, Kind::Real), real_text());
    }
}

#[test]
fn cast_oracle_floats() {
    let o = Oracle::new("UTC");
    let any_number = || prop_oneof![integer_text(), decimal_text()].boxed();
    for to in [TargetType::Float4, TargetType::Float8] {
        for from in [Kind::Text, Kind::Integer, Kind::Exact, Kind::Float] {
            o.check(cast(to, from), any_number());
        }
        o.check(cast(to, Kind::Real), real_text());
    }
}

#[test]
fn cast_oracle_text() {
    let o = Oracle::new("UTC");
    o.check(cast(TargetType::Text, Kind::Text), unicode_text());
    o.check(cast(TargetType::Varchar(None), Kind::Text), unicode_text());
    for n in [1, 3, 10] {
        for truncate in [false, true] {
            let c = Cast {
                truncate,
                ..cast(TargetType::Varchar(Some(n)), Kind::Text)
            };
            o.check(c, unicode_text());
        }
    }
}

#[test]
fn cast_oracle_uuid_json_bytea() {
    let o = Oracle::new("UTC");
    o.check(cast(TargetType::Uuid, Kind::Text), uuid_text());
    o.check(cast(TargetType::Json, Kind::Text), json_text());
    o.check(cast(TargetType::Jsonb, Kind::Text), json_text());
    o.check(cast(TargetType::Bytea, Kind::Text), bytea_text());
}

#[test]
fn cast_oracle_dates_and_timestamps() {
    let o = Oracle::new("UTC");
    o.check(
        cast(TargetType::Date, Kind::Text),
        prop_oneof![timestamp_text(), near(date_text())].boxed(),
    );
    o.check(cast(TargetType::Timestamp, Kind::Text), timestamp_text());
    o.check(cast(TargetType::TimestampTz, Kind::Text), timestamp_text());
}

#[test]
fn cast_oracle_timestamptz_in_zones() {
    for zone in ["Europe/Paris", "America/New_York"] {
        let o = Oracle::new(zone);
        let c = Cast {
            zone: Some(jiff::tz::TimeZone::get(zone).unwrap()),
            ..cast(TargetType::TimestampTz, Kind::Text)
        };
        o.check(c, timestamp_text());
    }
}
