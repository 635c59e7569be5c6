//! A push decoder that cuts a binary COPY stream into whole tuples.
//!
//! Input arrives in pieces of any size (one CopyData message each); a tuple may span pieces.
//! Complete tuples are copied once into the batch under construction, so the hot path is a
//! length walk and a `memcpy`, with no allocation per row. A piece that brings a whole batch's
//! worth of tuples by itself (one huge row: PostgreSQL sends a CopyData message per row) to an
//! empty batch becomes the batch without a copy, so a value is held once, not twice.

use bytes::{Buf, Bytes, BytesMut};

use super::{FormatError, SIGNATURE};

/// Whole tuples of one table, ready to be sent between a stream header and trailer.
#[derive(Debug, Clone)]
pub struct Tuples {
    /// Encoded tuples, back to back.
    pub data: Bytes,
    /// Number of tuples in `data`.
    pub rows: u64,
    /// Offset in `data` where the last tuple starts (its key is the batch's high-water mark).
    pub last_tuple_start: usize,
}

impl Tuples {
    /// The encoded bytes of the last tuple.
    pub fn last_tuple(&self) -> &[u8] {
        &self.data[self.last_tuple_start..]
    }
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Tuples,
    Done,
}

/// Cuts a binary COPY stream into runs of [`Tuples`] of about `batch_bytes`.
#[derive(Debug)]
pub struct TupleSplitter {
    expected_fields: i16,
    batch_bytes: usize,
    state: State,
    /// Bytes of an incomplete header or tuple carried to the next push.
    pending: BytesMut,
    out: BytesMut,
    /// Tuples taken as a slice of a pushed piece instead of being copied into `out` (then
    /// `out` is empty); `rows` and `last_start` count them.
    ready: Option<Bytes>,
    rows: u64,
    last_start: usize,
}

/// Result of scanning one tuple at the start of a slice.
enum Scan {
    /// A whole tuple of this many bytes.
    Tuple(usize),
    /// The trailer (2 bytes).
    Trailer,
    /// Not enough bytes yet.
    Incomplete,
}

fn scan_tuple(buf: &[u8], expected: i16) -> Result<Scan, FormatError> {
    if buf.len() < 2 {
        return Ok(Scan::Incomplete);
    }
    let fields = i16::from_be_bytes([buf[0], buf[1]]);
    if fields == -1 {
        return Ok(Scan::Trailer);
    }
    if fields != expected {
        return Err(FormatError::FieldCount {
            found: fields,
            expected,
        });
    }
    let mut pos = 2usize;
    for _ in 0..fields {
        let Some(len_bytes) = buf.get(pos..pos + 4) else {
            return Ok(Scan::Incomplete);
        };
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        pos += 4;
        if len >= 0 {
            pos += len as usize;
        } else if len != -1 {
            return Err(FormatError::BadLength(len));
        }
    }
    if pos > buf.len() {
        return Ok(Scan::Incomplete);
    }
    Ok(Scan::Tuple(pos))
}

impl TupleSplitter {
    /// A decoder for tuples of `expected_fields` columns, emitting batches of about `batch_bytes`.
    pub fn new(expected_fields: usize, batch_bytes: usize) -> Self {
        let batch_bytes = batch_bytes.max(1024);
        TupleSplitter {
            expected_fields: i16::try_from(expected_fields).unwrap_or(i16::MAX),
            batch_bytes,
            state: State::Header,
            pending: BytesMut::new(),
            out: BytesMut::with_capacity(batch_bytes + batch_bytes / 4),
            ready: None,
            rows: 0,
            last_start: 0,
        }
    }

    /// Feeds the next piece of the stream.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        self.push_piece(data, None)
    }

    /// Feeds the next piece of the stream, as owned bytes: whole tuples that fill a batch by
    /// themselves are kept as a slice of `data` instead of being copied.
    pub fn push_bytes(&mut self, data: &Bytes) -> Result<(), FormatError> {
        self.push_piece(data, Some(data))
    }

    fn push_piece(&mut self, data: &[u8], whole: Option<&Bytes>) -> Result<(), FormatError> {
        if data.is_empty() {
            return Ok(());
        }
        if self.state == State::Done {
            return Err(FormatError::TrailingData);
        }
        if self.pending.is_empty() {
            let used = self.consume(data, whole)?;
            if used < data.len() {
                self.pending.extend_from_slice(&data[used..]);
            }
        } else {
            self.pending.extend_from_slice(data);
            let pending = std::mem::take(&mut self.pending);
            let used = self.consume(&pending, None)?;
            let mut rest = pending;
            rest.advance(used);
            self.pending = rest;
        }
        Ok(())
    }

    /// Parses as much of `buf` as forms whole units; returns the bytes used. `whole` is `buf`
    /// as owned bytes, when the caller has them.
    fn consume(&mut self, buf: &[u8], whole: Option<&Bytes>) -> Result<usize, FormatError> {
        let mut pos = 0usize;
        if self.state == State::Header {
            if buf.len() < 19 {
                if buf.len() >= SIGNATURE.len() && &buf[..SIGNATURE.len()] != SIGNATURE {
                    return Err(FormatError::BadSignature);
                }
                return Ok(0);
            }
            if &buf[..SIGNATURE.len()] != SIGNATURE {
                return Err(FormatError::BadSignature);
            }
            let flags = u32::from_be_bytes([buf[11], buf[12], buf[13], buf[14]]);
            if flags & 0xffff_0000 != 0 {
                return Err(FormatError::UnsupportedFlags(flags));
            }
            let ext = u32::from_be_bytes([buf[15], buf[16], buf[17], buf[18]]) as usize;
            if buf.len() < 19 + ext {
                return Ok(0);
            }
            pos = 19 + ext;
            self.state = State::Tuples;
        }
        // Whole tuples are copied in one run per push rather than one call per tuple.
        let run_start = pos;
        while pos < buf.len() {
            match scan_tuple(&buf[pos..], self.expected_fields)? {
                Scan::Tuple(len) => {
                    self.last_start = self.out.len() + (pos - run_start);
                    self.rows += 1;
                    pos += len;
                }
                Scan::Trailer => {
                    self.append(buf, run_start..pos, whole);
                    self.state = State::Done;
                    pos += 2;
                    if pos != buf.len() {
                        return Err(FormatError::TrailingData);
                    }
                    return Ok(pos);
                }
                Scan::Incomplete => break,
            }
        }
        self.append(buf, run_start..pos, whole);
        Ok(pos)
    }

    /// Adds the whole tuples `buf[run]` (already counted) to the batch under construction.
    fn append(&mut self, buf: &[u8], run: std::ops::Range<usize>, whole: Option<&Bytes>) {
        if run.is_empty() {
            return;
        }
        if let Some(ready) = self.ready.take() {
            // Not taken before more tuples came: they join it the ordinary way.
            self.out.extend_from_slice(&ready);
        }
        match whole {
            Some(bytes) if self.out.is_empty() && run.len() >= self.batch_bytes => {
                self.ready = Some(bytes.slice(run));
            }
            _ => self.out.extend_from_slice(&buf[run]),
        }
    }

    /// Takes the batch under construction once it has reached the batch size.
    pub fn take_full(&mut self) -> Option<Tuples> {
        (self.ready.is_some() || self.out.len() >= self.batch_bytes).then(|| self.take())
    }

    fn take(&mut self) -> Tuples {
        let data = match self.ready.take() {
            Some(data) => data,
            None => self.out.split().freeze(),
        };
        let batch = Tuples {
            data,
            rows: self.rows,
            last_tuple_start: self.last_start,
        };
        self.out.reserve(self.batch_bytes + self.batch_bytes / 4);
        self.rows = 0;
        self.last_start = 0;
        batch
    }

    /// Ends the stream: checks that the trailer arrived and returns the last, partial batch.
    pub fn finish(&mut self) -> Result<Option<Tuples>, FormatError> {
        match self.state {
            State::Header => return Err(FormatError::Truncated("no header")),
            State::Tuples => return Err(FormatError::Truncated("no trailer")),
            State::Done => {}
        }
        Ok((self.rows > 0).then(|| self.take()))
    }
}

/// Iterates over the fields of one encoded tuple: `None` for NULL, else the value bytes.
pub fn fields(tuple: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let count = if tuple.len() >= 2 {
        i16::from_be_bytes([tuple[0], tuple[1]]).max(0)
    } else {
        0
    };
    let mut pos = 2usize;
    (0..count).map_while(move |_| {
        let len_bytes = tuple.get(pos..pos + 4)?;
        let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        pos += 4;
        if len < 0 {
            return Some(None);
        }
        let value = tuple.get(pos..pos + len as usize)?;
        pos += len as usize;
        Some(Some(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pgcopy::encode;

    fn tuple(values: &[Option<&[u8]>]) -> Vec<u8> {
        let mut t = (values.len() as i16).to_be_bytes().to_vec();
        for v in values {
            match v {
                Some(b) => {
                    t.extend_from_slice(&(b.len() as i32).to_be_bytes());
                    t.extend_from_slice(b);
                }
                None => t.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        t
    }

    fn stream(rows: &[Vec<u8>]) -> Vec<u8> {
        let mut s = encode::header().to_vec();
        for r in rows {
            s.extend_from_slice(r);
        }
        s.extend_from_slice(&encode::trailer());
        s
    }

    #[test]
    fn splits_at_every_boundary() -> Result<(), FormatError> {
        let rows: Vec<Vec<u8>> = (0..50u32)
            .map(|i| {
                tuple(&[
                    Some(&i.to_be_bytes()),
                    if i % 3 == 0 { None } else { Some(b"hello") },
                ])
            })
            .collect();
        let s = stream(&rows);
        let expected: Vec<u8> = rows.concat();
        for piece in [1usize, 2, 3, 7, 19, 20, 64, 4096] {
            let mut d = TupleSplitter::new(2, 1024);
            let mut got = Vec::new();
            let mut count = 0;
            for chunk in s.chunks(piece) {
                d.push(chunk)?;
                while let Some(b) = d.take_full() {
                    count += b.rows;
                    got.extend_from_slice(&b.data);
                }
            }
            if let Some(b) = d.finish()? {
                assert_eq!(fields(b.last_tuple()).count(), 2);
                count += b.rows;
                got.extend_from_slice(&b.data);
            }
            assert_eq!(count, 50, "piece size {piece}");
            assert_eq!(got, expected, "piece size {piece}");
        }
        Ok(())
    }

    #[test]
    fn a_piece_that_fills_a_batch_becomes_it_without_a_copy() -> Result<(), FormatError> {
        let big = vec![7u8; 4096];
        let small: Vec<Vec<u8>> = (0..3u32)
            .map(|i| tuple(&[Some(&i.to_be_bytes())]))
            .collect();
        let huge = tuple(&[Some(&big)]);
        // As PostgreSQL sends it: the header with the first row, then one message per row.
        let mut first = encode::header().to_vec();
        first.extend_from_slice(&small[0]);
        let pieces: Vec<Bytes> = vec![
            Bytes::from(first),
            Bytes::from(huge.clone()),
            Bytes::from(huge.clone()),
            Bytes::from(small[1].clone()),
            Bytes::from(small[2].clone()),
            Bytes::from(encode::trailer().to_vec()),
        ];
        let mut d = TupleSplitter::new(1, 1024);
        let mut batches = Vec::new();
        let mut shared = 0;
        for piece in &pieces {
            d.push_bytes(piece)?;
            while let Some(b) = d.take_full() {
                let inside = pieces.iter().any(|p| {
                    let r = p.as_ptr_range();
                    r.contains(&b.data.as_ptr())
                });
                shared += usize::from(inside);
                batches.push(b);
            }
        }
        batches.extend(d.finish()?);
        let data: Vec<u8> = batches.iter().flat_map(|b| b.data.to_vec()).collect();
        let expected = [&small[0][..], &huge, &huge, &small[1], &small[2]].concat();
        assert_eq!(data, expected);
        assert_eq!(batches.iter().map(|b| b.rows).sum::<u64>(), 5);
        // The first huge row follows a small one in the batch (copied); the second arrives on
        // an empty batch and is the pushed piece itself.
        assert_eq!(shared, 1);
        for b in &batches {
            assert_eq!(fields(b.last_tuple()).count(), 1);
        }
        Ok(())
    }

    #[test]
    fn last_tuple_is_the_high_water_mark() -> Result<(), FormatError> {
        let rows: Vec<Vec<u8>> = (0..5u32)
            .map(|i| tuple(&[Some(&i.to_be_bytes())]))
            .collect();
        let mut d = TupleSplitter::new(1, 1 << 20);
        d.push(&stream(&rows))?;
        let b = d.finish()?.ok_or(FormatError::Truncated("test"))?;
        let last: Vec<Option<&[u8]>> = fields(b.last_tuple()).collect();
        assert_eq!(last, vec![Some(&4u32.to_be_bytes()[..])]);
        Ok(())
    }

    #[test]
    fn rejects_malformed_streams() {
        let mut d = TupleSplitter::new(1, 1024);
        assert_eq!(
            d.push(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0"),
            Err(FormatError::BadSignature)
        );

        let mut d = TupleSplitter::new(2, 1024);
        let s = stream(&[tuple(&[Some(b"x")])]);
        assert_eq!(
            d.push(&s),
            Err(FormatError::FieldCount {
                found: 1,
                expected: 2
            })
        );

        let mut d = TupleSplitter::new(1, 1024);
        let mut s = stream(&[tuple(&[Some(b"x")])]);
        s.truncate(s.len() - 2);
        assert_eq!(d.push(&s), Ok(()));
        assert_eq!(d.finish().err(), Some(FormatError::Truncated("no trailer")));

        let mut d = TupleSplitter::new(1, 1024);
        let mut s = stream(&[]);
        s.push(0);
        assert_eq!(d.push(&s), Err(FormatError::TrailingData));
    }
}
