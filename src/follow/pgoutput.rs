//! Decoder of the replication stream: the CopyData framing of a walsender (`w` XLogData, `k`
//! keepalive), the standby status update sent back, and the messages of the `pgoutput` plugin,
//! protocol version 1 (Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
//! Message).
//!
//! Invariants: decoding never panics on short or malformed input (an error names what was
//! short); values stay slices of the received buffer (`Bytes`), never copied per column; an
//! unchanged TOASTed value (`u`) is kept apart from NULL, so an update never overwrites it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// A log sequence number.
pub type Lsn = u64;

/// Renders an LSN as PostgreSQL does (`16/B374D848`).
pub fn lsn_text(lsn: Lsn) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xffff_ffff)
}

/// Parses PostgreSQL's `X/Y` LSN text.
pub fn parse_lsn(text: &str) -> Option<Lsn> {
    let (hi, lo) = text.trim().split_once('/')?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    let lo = u64::from_str_radix(lo, 16).ok()?;
    Some((hi << 32) | lo)
}

/// A malformed or unexpected stream message.
#[derive(Debug, thiserror::Error)]
#[error("malformed replication message: {0}")]
pub struct DecodeError(pub String);

type Result<T> = std::result::Result<T, DecodeError>;

/// One CopyData payload of the stream.
#[derive(Debug)]
pub enum StreamMessage {
    /// WAL data: where it starts, the server's WAL end, and a pgoutput message.
    XLogData {
        /// LSN of the data's start.
        start: Lsn,
        /// The server's current end of WAL.
        wal_end: Lsn,
        /// The pgoutput message.
        data: Bytes,
    },
    /// A keepalive: the server's WAL end, and whether it wants a status update at once.
    Keepalive {
        /// The server's current end of WAL (everything committed before it was sent).
        wal_end: Lsn,
        /// Reply now, or the server may time the connection out.
        reply: bool,
    },
}

/// Decodes one CopyData payload.
pub fn decode_stream(mut b: Bytes) -> Result<StreamMessage> {
    let tag = get_u8(&mut b, "stream message tag")?;
    match tag {
        b'w' => {
            let start = get_u64(&mut b, "XLogData start")?;
            let wal_end = get_u64(&mut b, "XLogData end")?;
            let _time = get_u64(&mut b, "XLogData time")?;
            Ok(StreamMessage::XLogData {
                start,
                wal_end,
                data: b,
            })
        }
        b'k' => {
            let wal_end = get_u64(&mut b, "keepalive end")?;
            let _time = get_u64(&mut b, "keepalive time")?;
            let reply = get_u8(&mut b, "keepalive reply")? == 1;
            Ok(StreamMessage::Keepalive { wal_end, reply })
        }
        other => Err(DecodeError(format!(
            "unknown stream message '{}'",
            other as char
        ))),
    }
}

/// A standby status update: everything up to `flushed` is durable on the target, so the
/// source may release it. `reply` asks the server for a keepalive at once.
pub fn status_update(received: Lsn, flushed: Lsn, reply: bool) -> Bytes {
    let mut b = BytesMut::with_capacity(34);
    b.put_u8(b'r');
    b.put_u64(received);
    b.put_u64(flushed);
    b.put_u64(flushed);
    b.put_i64(pg_now_micros());
    b.put_u8(u8::from(reply));
    b.freeze()
}

/// Microseconds since 2000-01-01 UTC (PostgreSQL's epoch).
pub fn pg_now_micros() -> i64 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    unix - 946_684_800_000_000
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A TOASTed value the change left as it was: not sent, must not be overwritten.
    Unchanged,
    /// The value in its type's text output.
    Text(Bytes),
}

/// A column of a relation as the stream describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct RelColumn {
    /// Part of the replica identity (flag 1).
    pub key: bool,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier.
    pub type_mod: i32,
}

/// A pgoutput message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A transaction starts; `final_lsn` is its commit record's LSN.
    Begin {
        /// LSN of the commit record.
        final_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
        /// Transaction id.
        xid: u32,
    },
    /// The transaction ends; `end_lsn` is where the stream resumes after it.
    Commit {
        /// LSN of the commit record.
        commit_lsn: Lsn,
        /// End of the commit record.
        end_lsn: Lsn,
        /// Commit time, microseconds since 2000-01-01.
        commit_time: i64,
    },
    /// The transaction came from another origin (replicated into the source).
    Origin,
    /// A relation's layout, sent before its first change and after each change of it.
    Relation {
        /// Relation OID on the source.
        oid: u32,
        /// Schema name.
        schema: String,
        /// Table name.
        name: String,
        /// Replica identity: `d`efault, `n`othing, `f`ull, `i`ndex.
        replica_identity: u8,
        /// Columns in order (generated columns are not sent).
        columns: Vec<RelColumn>,
    },
    /// A type's name (sent for non-built-in types).
    Type,
    /// A new row.
    Insert {
        /// Relation OID.
        oid: u32,
        /// The new row.
        new: Vec<Value>,
    },
    /// A changed row: `old` holds the old key (`K`) or the whole old row (`O`, replica
    /// identity full) when sent, i.e. when the key changed or the identity is full.
    Update {
        /// Relation OID.
        oid: u32,
        /// The old key or row, when sent.
        old: Option<Vec<Value>>,
        /// The new row (`Unchanged` for TOASTed columns left as they were).
        new: Vec<Value>,
    },
    /// A deleted row: its key (`K`) or whole row (`O`).
    Delete {
        /// Relation OID.
        oid: u32,
        /// The old key or row.
        old: Vec<Value>,
    },
    /// Tables truncated together.
    Truncate {
        /// `RESTART IDENTITY` was given.
        restart_identity: bool,
        /// Relation OIDs.
        oids: Vec<u32>,
    },
    /// A logical decoding message (`pg_logical_emit_message`).
    Message {
        /// Its prefix.
        prefix: String,
        /// Its content.
        content: Bytes,
    },
}

/// Decodes one pgoutput (protocol version 1) message.
pub fn decode(mut b: Bytes) -> Result<Message> {
    let tag = get_u8(&mut b, "message tag")?;
    Ok(match tag {
        b'B' => Message::Begin {
            final_lsn: get_u64(&mut b, "Begin LSN")?,
            commit_time: get_u64(&mut b, "Begin time")? as i64,
            xid: get_u32(&mut b, "Begin xid")?,
        },
        b'C' => {
            let _flags = get_u8(&mut b, "Commit flags")?;
            Message::Commit {
                commit_lsn: get_u64(&mut b, "Commit LSN")?,
                end_lsn: get_u64(&mut b, "Commit end LSN")?,
                commit_time: get_u64(&mut b, "Commit time")? as i64,
            }
        }
        b'O' => Message::Origin,
        b'Y' => Message::Type,
        b'R' => {
            let oid = get_u32(&mut b, "Relation OID")?;
            let schema = get_cstr(&mut b, "Relation schema")?;
            let name = get_cstr(&mut b, "Relation name")?;
            let replica_identity = get_u8(&mut b, "Relation replica identity")?;
            let n = get_u16(&mut b, "Relation column count")?;
            let mut columns = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let flags = get_u8(&mut b, "column flags")?;
                let name = get_cstr(&mut b, "column name")?;
                let type_oid = get_u32(&mut b, "column type")?;
                let type_mod = get_u32(&mut b, "column type modifier")? as i32;
                columns.push(RelColumn {
                    key: flags & 1 == 1,
                    name,
                    type_oid,
                    type_mod,
                });
            }
            Message::Relation {
                oid,
                schema,
                name,
                replica_identity,
                columns,
            }
        }
        b'I' => {
            let oid = get_u32(&mut b, "Insert OID")?;
            expect(&mut b, b'N', "Insert")?;
            Message::Insert {
                oid,
                new: tuple(&mut b)?,
            }
        }
        b'U' => {
            let oid = get_u32(&mut b, "Update OID")?;
            let mut kind = get_u8(&mut b, "Update tuple kind")?;
            let mut old = None;
            if kind == b'K' || kind == b'O' {
                old = Some(tuple(&mut b)?);
                kind = get_u8(&mut b, "Update new tuple kind")?;
            }
            if kind != b'N' {
                return Err(DecodeError(format!(
                    "Update: expected a new tuple, found '{}'",
                    kind as char
                )));
            }
            Message::Update {
                oid,
                old,
                new: tuple(&mut b)?,
            }
        }
        b'D' => {
            let oid = get_u32(&mut b, "Delete OID")?;
            let kind = get_u8(&mut b, "Delete tuple kind")?;
            if kind != b'K' && kind != b'O' {
                return Err(DecodeError(format!(
                    "Delete: expected an old key or row, found '{}'",
                    kind as char
                )));
            }
            Message::Delete {
                oid,
                old: tuple(&mut b)?,
            }
        }
        b'T' => {
            let n = get_u32(&mut b, "Truncate relation count")?;
            let options = get_u8(&mut b, "Truncate options")?;
            let mut oids = Vec::with_capacity(n.min(10_000) as usize);
            for _ in 0..n {
                oids.push(get_u32(&mut b, "Truncate OID")?);
            }
            Message::Truncate {
                restart_identity: options & 2 == 2,
                oids,
            }
        }
        b'M' => {
            let _flags = get_u8(&mut b, "Message flags")?;
            let _lsn = get_u64(&mut b, "Message LSN")?;
            let prefix = get_cstr(&mut b, "Message prefix")?;
            let len = get_u32(&mut b, "Message length")? as usize;
            if b.remaining() < len {
                return Err(DecodeError(
                    "Message: content shorter than its length".into(),
                ));
            }
            Message::Message {
                prefix,
                content: b.split_to(len),
            }
        }
        other => {
            return Err(DecodeError(format!(
                "unknown pgoutput message '{}'",
                other as char
            )))
        }
    })
}

fn tuple(b: &mut Bytes) -> Result<Vec<Value>> {
    let n = get_u16(b, "tuple column count")?;
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let kind = get_u8(b, "tuple value kind")?;
        out.push(match kind {
            b'n' => Value::Null,
            b'u' => Value::Unchanged,
            b't' => {
                let len = get_u32(b, "value length")? as usize;
                if b.remaining() < len {
                    return Err(DecodeError(format!(
                        "value of {len} bytes, {} left",
                        b.remaining()
                    )));
                }
                Value::Text(b.split_to(len))
            }
            other => {
                return Err(DecodeError(format!(
                    "unknown tuple value kind '{}'",
                    other as char
                )))
            }
        });
    }
    Ok(out)
}

fn expect(b: &mut Bytes, want: u8, what: &str) -> Result<()> {
    let got = get_u8(b, what)?;
    if got == want {
        Ok(())
    } else {
        Err(DecodeError(format!(
            "{what}: expected '{}', found '{}'",
            want as char, got as char
        )))
    }
}

fn get_u8(b: &mut Bytes, what: &str) -> Result<u8> {
    short(b, 1, what)?;
    Ok(b.get_u8())
}

fn get_u16(b: &mut Bytes, what: &str) -> Result<u16> {
    short(b, 2, what)?;
    Ok(b.get_u16())
}

fn get_u32(b: &mut Bytes, what: &str) -> Result<u32> {
    short(b, 4, what)?;
    Ok(b.get_u32())
}

fn get_u64(b: &mut Bytes, what: &str) -> Result<u64> {
    short(b, 8, what)?;
    Ok(b.get_u64())
}

fn get_cstr(b: &mut Bytes, what: &str) -> Result<String> {
    let end = b
        .iter()
        .position(|c| *c == 0)
        .ok_or_else(|| DecodeError(format!("{what}: unterminated string")))?;
    let s = String::from_utf8_lossy(&b[..end]).into_owned();
    b.advance(end + 1);
    Ok(s)
}

fn short(b: &Bytes, need: usize, what: &str) -> Result<()> {
    if b.remaining() < need {
        return Err(DecodeError(format!("{what}: message too short")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cstr(b: &mut BytesMut, s: &str) {
        b.put_slice(s.as_bytes());
        b.put_u8(0);
    }

    fn text(b: &mut BytesMut, s: &str) {
        b.put_u8(b't');
        b.put_u32(s.len() as u32);
        b.put_slice(s.as_bytes());
    }

    #[test]
    fn lsn_round_trip() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(lsn_text(0x16_B374_D848), "16/B374D848");
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("nonsense"), None);
    }

    #[test]
    fn begin_and_commit() {
        let mut b = BytesMut::new();
        b.put_u8(b'B');
        b.put_u64(0x100);
        b.put_u64(42);
        b.put_u32(7);
        assert_eq!(
            decode(b.freeze()).ok(),
            Some(Message::Begin {
                final_lsn: 0x100,
                commit_time: 42,
                xid: 7
            })
        );
        let mut b = BytesMut::new();
        b.put_u8(b'C');
        b.put_u8(0);
        b.put_u64(0x100);
        b.put_u64(0x128);
        b.put_u64(42);
        assert_eq!(
            decode(b.freeze()).ok(),
            Some(Message::Commit {
                commit_lsn: 0x100,
                end_lsn: 0x128,
                commit_time: 42
            })
        );
    }

    #[test]
    fn relation_with_key_flags() {
        let mut b = BytesMut::new();
        b.put_u8(b'R');
        b.put_u32(16384);
        cstr(&mut b, "public");
        cstr(&mut b, "items");
        b.put_u8(b'd');
        b.put_u16(2);
        b.put_u8(1);
        cstr(&mut b, "id");
        b.put_u32(23);
        b.put_i32(-1);
        b.put_u8(0);
        cstr(&mut b, "body");
        b.put_u32(25);
        b.put_i32(-1);
        let Ok(Message::Relation {
            oid,
            schema,
            name,
            replica_identity,
            columns,
        }) = decode(b.freeze())
        else {
            panic!("not a relation");
        };
        assert_eq!(
            (oid, schema.as_str(), name.as_str()),
            (16384, "public", "items")
        );
        assert_eq!(replica_identity, b'd');
        assert!(columns[0].key && !columns[1].key);
        assert_eq!(columns[1].name, "body");
        assert_eq!(columns[1].type_mod, -1);
    }

    #[test]
    fn update_with_old_key_null_and_unchanged_toast() {
        let mut b = BytesMut::new();
        b.put_u8(b'U');
        b.put_u32(5);
        b.put_u8(b'K');
        b.put_u16(3);
        text(&mut b, "1");
        b.put_u8(b'n');
        b.put_u8(b'n');
        b.put_u8(b'N');
        b.put_u16(3);
        text(&mut b, "2");
        b.put_u8(b'n');
        b.put_u8(b'u');
        let Ok(Message::Update { oid, old, new }) = decode(b.freeze()) else {
            panic!("not an update");
        };
        assert_eq!(oid, 5);
        assert_eq!(
            old,
            Some(vec![
                Value::Text(Bytes::from_static(b"1")),
                Value::Null,
                Value::Null
            ])
        );
        assert_eq!(
            new,
            vec![
                Value::Text(Bytes::from_static(b"2")),
                Value::Null,
                Value::Unchanged
            ]
        );
    }

    #[test]
    fn update_without_old_tuple() {
        let mut b = BytesMut::new();
        b.put_u8(b'U');
        b.put_u32(5);
        b.put_u8(b'N');
        b.put_u16(1);
        text(&mut b, "x");
        let Ok(Message::Update { old, .. }) = decode(b.freeze()) else {
            panic!("not an update");
        };
        assert_eq!(old, None);
    }

    #[test]
    fn insert_delete_truncate() {
        let mut b = BytesMut::new();
        b.put_u8(b'I');
        b.put_u32(9);
        b.put_u8(b'N');
        b.put_u16(1);
        text(&mut b, "it's");
        assert_eq!(
            decode(b.freeze()).ok(),
            Some(Message::Insert {
                oid: 9,
                new: vec![Value::Text(Bytes::from_static(b"it's"))]
            })
        );
        let mut b = BytesMut::new();
        b.put_u8(b'D');
        b.put_u32(9);
        b.put_u8(b'O');
        b.put_u16(1);
        b.put_u8(b'n');
        assert_eq!(
            decode(b.freeze()).ok(),
            Some(Message::Delete {
                oid: 9,
                old: vec![Value::Null]
            })
        );
        let mut b = BytesMut::new();
        b.put_u8(b'T');
        b.put_u32(2);
        b.put_u8(2);
        b.put_u32(9);
        b.put_u32(10);
        assert_eq!(
            decode(b.freeze()).ok(),
            Some(Message::Truncate {
                restart_identity: true,
                oids: vec![9, 10]
            })
        );
    }

    #[test]
    fn short_and_unknown_input_is_an_error_not_a_panic() {
        assert!(decode(Bytes::new()).is_err());
        assert!(decode(Bytes::from_static(b"B\x00\x00")).is_err());
        assert!(decode(Bytes::from_static(b"Z")).is_err());
        // A value claiming more bytes than the message holds.
        let mut b = BytesMut::new();
        b.put_u8(b'I');
        b.put_u32(9);
        b.put_u8(b'N');
        b.put_u16(1);
        b.put_u8(b't');
        b.put_u32(1000);
        b.put_slice(b"abc");
        assert!(decode(b.freeze()).is_err());
        // A relation name without its terminator.
        assert!(decode(Bytes::from_static(b"R\x00\x00\x00\x01public")).is_err());
    }

    #[test]
    fn stream_framing_and_status_update() {
        let mut b = BytesMut::new();
        b.put_u8(b'k');
        b.put_u64(0x200);
        b.put_u64(0);
        b.put_u8(1);
        match decode_stream(b.freeze()) {
            Ok(StreamMessage::Keepalive { wal_end, reply }) => {
                assert_eq!(wal_end, 0x200);
                assert!(reply);
            }
            other => panic!("{other:?}"),
        }
        let mut b = BytesMut::new();
        b.put_u8(b'w');
        b.put_u64(0x100);
        b.put_u64(0x200);
        b.put_u64(0);
        b.put_slice(b"Bxyz");
        match decode_stream(b.freeze()) {
            Ok(StreamMessage::XLogData { start, data, .. }) => {
                assert_eq!(start, 0x100);
                assert_eq!(&data[..], b"Bxyz");
            }
            other => panic!("{other:?}"),
        }
        let s = status_update(0x300, 0x280, true);
        assert_eq!(s.len(), 34);
        assert_eq!(s[0], b'r');
        assert_eq!(&s[9..17], &0x280u64.to_be_bytes());
        assert_eq!(s[33], 1);
    }
}
