//! Micro-benchmark of the binary COPY tuple splitter, the only per-row work on the
//! PostgreSQL-to-PostgreSQL hot path. Run: `cargo bench --bench codec`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use howdah::pgcopy::{encode, TupleSplitter};

/// A stream of `rows` tuples with `fields` columns of `width` bytes each, cut into pieces the
/// way the server sends them (one CopyData message per row).
fn stream(rows: usize, fields: usize, width: usize) -> Vec<Vec<u8>> {
    let mut pieces = vec![encode::header().to_vec()];
    for r in 0..rows {
        let mut t = (fields as i16).to_be_bytes().to_vec();
        for f in 0..fields {
            if (r + f) % 7 == 0 {
                t.extend_from_slice(&(-1i32).to_be_bytes());
            } else {
                t.extend_from_slice(&(width as i32).to_be_bytes());
                t.extend(std::iter::repeat_n((r % 251) as u8, width));
            }
        }
        pieces.push(t);
    }
    pieces.push(encode::trailer().to_vec());
    pieces
}

fn split(c: &mut Criterion) {
    let mut group = c.benchmark_group("tuple_splitter");
    for (name, fields, width) in [
        ("narrow_3x8", 3usize, 8usize),
        ("wide_10x40", 10, 40),
        ("blob_2x4096", 2, 4096),
    ] {
        let rows = 100_000 * 8 / (fields * width).max(8);
        let pieces = stream(rows.max(1000), fields, width);
        let bytes: usize = pieces.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &pieces, |b, pieces| {
            b.iter(|| {
                let mut s = TupleSplitter::new(fields, 1 << 20);
                let mut rows = 0u64;
                for p in pieces {
                    s.push(p).ok();
                    while let Some(batch) = s.take_full() {
                        rows += batch.rows;
                    }
                }
                if let Ok(Some(batch)) = s.finish() {
                    rows += batch.rows;
                }
                rows
            })
        });
    }
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
