//! tokio-postgres' own binary COPY reader and writer as oracles for howdah's codec.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use howdah::pgcopy::{decode::fields, encode, TupleSplitter};
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{FromSql, Type};

use crate::support::TestDb;

const SETUP: &str = "CREATE TABLE t (id bigint, name text, payload bytea, score double precision);
    INSERT INTO t SELECT g, CASE WHEN g % 5 = 0 THEN NULL ELSE repeat('é', g % 40) END,
        CASE WHEN g % 7 = 0 THEN NULL ELSE decode(repeat('ab', g % 3000), 'hex') END,
        CASE WHEN g % 11 = 0 THEN 'NaN'::float8 ELSE g / 3.0 END
    FROM generate_series(1, 20000) g;";

type Row = (i64, Option<String>, Option<Vec<u8>>, f64);

fn decode_row(tuple: &[u8]) -> Row {
    let v: Vec<Option<&[u8]>> = fields(tuple).collect();
    assert_eq!(v.len(), 4, "tuple has 4 fields");
    let id = i64::from_sql(&Type::INT8, v[0].unwrap()).unwrap();
    let name = v[1].map(|b| String::from_sql(&Type::TEXT, b).unwrap());
    let payload = v[2].map(|b| Vec::<u8>::from_sql(&Type::BYTEA, b).unwrap());
    let score = f64::from_sql(&Type::FLOAT8, v[3].unwrap()).unwrap();
    (id, name, payload, score)
}

fn same(a: &Row, b: &Row) -> bool {
    a.0 == b.0 && a.1 == b.1 && a.2 == b.2 && a.3.to_bits() == b.3.to_bits()
}

/// Our splitter cuts the same tuples, with the same values, that tokio-postgres decodes.
#[tokio::test]
async fn splitter_agrees_with_binary_copy_out_stream() {
    let db = TestDb::new("oracle_out");
    db.exec(SETUP);
    let c = db.client().await;
    let sql = "COPY (SELECT * FROM t ORDER BY id) TO STDOUT (FORMAT binary)";

    let types = [Type::INT8, Type::TEXT, Type::BYTEA, Type::FLOAT8];
    let oracle = BinaryCopyOutStream::new(c.copy_out(sql).await.unwrap(), &types);
    futures_util::pin_mut!(oracle);
    let mut expected: Vec<Row> = Vec::new();
    while let Some(row) = oracle.next().await {
        let row = row.unwrap();
        expected.push((row.get(0), row.get(1), row.get(2), row.get(3)));
    }

    // Small batches force many batch boundaries; the stream's own pieces stay as sent.
    let stream = c.copy_out(sql).await.unwrap();
    futures_util::pin_mut!(stream);
    let mut splitter = TupleSplitter::new(4, 64 * 1024);
    let mut batches = Vec::new();
    while let Some(piece) = stream.next().await {
        splitter.push(&piece.unwrap()).unwrap();
        batches.extend(std::iter::from_fn(|| splitter.take_full()));
    }
    batches.extend(splitter.finish().unwrap());
    assert!(
        batches.len() > 3,
        "expected several batches, got {}",
        batches.len()
    );

    let mut got = Vec::new();
    for b in &batches {
        let mut rest: &[u8] = &b.data;
        let mut n = 0;
        while !rest.is_empty() {
            let len = tuple_len(rest);
            got.push(decode_row(&rest[..len]));
            rest = &rest[len..];
            n += 1;
        }
        assert_eq!(n, b.rows, "batch row count");
        assert!(
            same(&decode_row(b.last_tuple()), got.last().unwrap()),
            "last_tuple is the last row"
        );
    }
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(same(g, e), "row {} differs: {g:?} vs {e:?}", e.0);
    }
}

fn tuple_len(t: &[u8]) -> usize {
    let n = i16::from_be_bytes([t[0], t[1]]);
    let mut pos = 2;
    for _ in 0..n {
        let len = i32::from_be_bytes([t[pos], t[pos + 1], t[pos + 2], t[pos + 3]]);
        pos += 4 + len.max(0) as usize;
    }
    pos
}

/// Tuples framed by howdah (header, 256 KiB frames, trailer) load the same table that
/// tokio-postgres' `BinaryCopyInWriter` loads from the same rows.
#[tokio::test]
async fn framed_stream_loads_like_binary_copy_in_writer() {
    let db = TestDb::new("oracle_in");
    db.exec(SETUP);
    db.exec("CREATE TABLE by_oracle (LIKE t); CREATE TABLE by_howdah (LIKE t);");
    let c = db.client().await;
    let sql = "COPY t TO STDOUT (FORMAT binary)";

    // One connection runs one COPY at a time: read everything first, then write.
    let types = [Type::INT8, Type::TEXT, Type::BYTEA, Type::FLOAT8];
    let rows = BinaryCopyOutStream::new(c.copy_out(sql).await.unwrap(), &types);
    futures_util::pin_mut!(rows);
    let mut all: Vec<Row> = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row.unwrap();
        all.push((row.get(0), row.get(1), row.get(2), row.get(3)));
    }
    let sink = c
        .copy_in("COPY by_oracle FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    let writer = BinaryCopyInWriter::new(sink, &types);
    futures_util::pin_mut!(writer);
    for (a, b, p, s) in &all {
        writer.as_mut().write(&[a, b, p, s]).await.unwrap();
    }
    assert_eq!(writer.finish().await.unwrap(), 20000);

    let stream = c.copy_out(sql).await.unwrap();
    futures_util::pin_mut!(stream);
    let mut splitter = TupleSplitter::new(4, 1 << 20);
    let mut batches = Vec::new();
    while let Some(piece) = stream.next().await {
        splitter.push(&piece.unwrap()).unwrap();
        batches.extend(std::iter::from_fn(|| splitter.take_full()));
    }
    batches.extend(splitter.finish().unwrap());
    let sink = c
        .copy_in::<_, Bytes>("COPY by_howdah FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.feed(encode::header()).await.unwrap();
    let mut sent = 0;
    for b in &batches {
        sent += b.rows;
        for f in encode::frames(&b.data, 256 * 1024) {
            sink.feed(f).await.unwrap();
        }
    }
    sink.feed(encode::trailer()).await.unwrap();
    assert_eq!(sink.as_mut().finish().await.unwrap(), sent);
    assert_eq!(sent, 20000);

    let diff = db.query(
        "SELECT count(*) FROM ((TABLE by_oracle EXCEPT ALL TABLE by_howdah) UNION ALL (TABLE by_howdah EXCEPT ALL TABLE by_oracle)) d",
    );
    assert_eq!(
        diff, "0",
        "tables loaded by the oracle and by howdah differ"
    );
}
