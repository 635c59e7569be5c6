//! Reading a PostgreSQL source's large objects: their list, each chunk's metadata (owner,
//! privileges, comment), and their bytes streamed in pieces.
//!
//! Invariants: every query runs in the caller's session (a reader inside the job's snapshot),
//! so the list, the metadata and the bytes are one image; an object is never held whole, only
//! [`PIECE_BYTES`] at a time per piece in flight (`lo_get` with offset and length), whatever
//! its size. A piece shorter than [`PIECE_BYTES`] ends its object; an object whose size is a
//! multiple of it ends with an empty piece.

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::error::{query_error, Error, Result};
use crate::state::large_objects::LoChunk;

/// Bytes read (and written) per piece of an object.
pub const PIECE_BYTES: i32 = 1024 * 1024;

/// One large object's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoMeta {
    /// The object's OID (kept on the target).
    pub oid: u32,
    /// Owner role name.
    pub owner: String,
    /// Privileges granted to others: (privilege, grantee quoted or `PUBLIC`, grant option).
    pub grants: Vec<(String, String, bool)>,
    /// `COMMENT ON LARGE OBJECT` text.
    pub comment: Option<String>,
}

/// One piece of an object's bytes.
#[derive(Debug)]
pub struct LoPiece {
    /// The object.
    pub oid: u32,
    /// Byte offset of the piece in the object.
    pub offset: i64,
    /// The bytes.
    pub data: Vec<u8>,
    /// The object's last piece.
    pub last: bool,
}

/// The OIDs of every large object, in order.
pub async fn list(client: &Client) -> Result<Vec<u32>> {
    let rows = client
        .query(
            "SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid",
            &[],
        )
        .await
        .map_err(|e| query_error("listing the source's large objects", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The metadata of the objects of a chunk, by OID.
pub async fn metadata(client: &Client, chunk: &LoChunk) -> Result<Vec<LoMeta>> {
    let what = || {
        format!(
            "reading large objects {}..{} on the source",
            chunk.first_oid, chunk.last_oid
        )
    };
    let rows = client
        .query(
            "SELECT m.oid, pg_catalog.pg_get_userbyid(m.lomowner), \
               obj_description(m.oid, 'pg_largeobject'), \
               ARRAY(SELECT a.privilege_type FROM aclexplode(m.lomacl) a \
                     WHERE a.grantee <> m.lomowner ORDER BY a.grantee, a.privilege_type), \
               ARRAY(SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' \
                       ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END \
                     FROM aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner \
                     ORDER BY a.grantee, a.privilege_type), \
               ARRAY(SELECT a.is_grantable FROM aclexplode(m.lomacl) a \
                     WHERE a.grantee <> m.lomowner ORDER BY a.grantee, a.privilege_type) \
             FROM pg_catalog.pg_largeobject_metadata m \
             WHERE m.oid BETWEEN $1 AND $2 ORDER BY m.oid",
            &[&chunk.first_oid, &chunk.last_oid],
        )
        .await
        .map_err(|e| query_error(what(), &e))?;
    rows.iter()
        .map(|r| {
            let privileges: Vec<String> = r.try_get(3).map_err(|e| query_error(what(), &e))?;
            let grantees: Vec<String> = r.try_get(4).map_err(|e| query_error(what(), &e))?;
            let options: Vec<bool> = r.try_get(5).map_err(|e| query_error(what(), &e))?;
            Ok(LoMeta {
                oid: r.try_get(0).map_err(|e| query_error(what(), &e))?,
                owner: r.try_get(1).map_err(|e| query_error(what(), &e))?,
                comment: r.try_get(2).map_err(|e| query_error(what(), &e))?,
                grants: privileges
                    .into_iter()
                    .zip(grantees)
                    .zip(options)
                    .map(|((p, g), o)| (p, g, o))
                    .collect(),
            })
        })
        .collect()
}

/// Sends the bytes of `objects`, in order and in pieces, into `tx`; stops early (without
/// error) when the receiver is gone.
pub async fn read(client: &Client, objects: &[LoMeta], tx: mpsc::Sender<LoPiece>) -> Result<()> {
    let stmt = client
        .prepare("SELECT pg_catalog.lo_get($1, $2, $3)")
        .await
        .map_err(|e| query_error("preparing the large-object reader", &e))?;
    for o in objects {
        let mut offset: i64 = 0;
        loop {
            let row = client
                .query_one(&stmt, &[&o.oid, &offset, &PIECE_BYTES])
                .await
                .map_err(|e| query_error(format!("reading large object {}", o.oid), &e))?;
            let data: Vec<u8> = row
                .try_get(0)
                .map_err(|e| query_error(format!("reading large object {}", o.oid), &e))?;
            let len = data.len() as i64;
            let last = len < i64::from(PIECE_BYTES);
            let piece = LoPiece {
                oid: o.oid,
                offset,
                data,
                last,
            };
            if tx.send(piece).await.is_err() {
                return Ok(());
            }
            if last {
                break;
            }
            offset += len;
        }
    }
    Ok(())
}

/// One object's size and digest: the `md5` of each piece in order, computed by the server
/// (so only 32 bytes a piece travel).
pub async fn digest(client: &Client, oid: u32) -> Result<(i64, String)> {
    let what = || format!("checksumming large object {oid}");
    let mut offset: i64 = 0;
    let mut md5s = String::new();
    loop {
        let row = client
            .query_one(
                "SELECT md5(p), length(p) FROM (SELECT pg_catalog.lo_get($1, $2, $3) AS p) s",
                &[&oid, &offset, &PIECE_BYTES],
            )
            .await
            .map_err(|e| query_error(what(), &e))?;
        let md5: String = row.try_get(0).map_err(|e| query_error(what(), &e))?;
        let len: i32 = row.try_get(1).map_err(|e| query_error(what(), &e))?;
        md5s.push_str(&md5);
        offset += i64::from(len);
        if len < PIECE_BYTES {
            return Ok((offset, md5s));
        }
    }
}

/// The error of a piece stream that ended before its objects did.
pub fn stream_cut(chunk: &LoChunk, oid: u32) -> Error {
    Error::Internal(format!(
        "the stream of large objects {}..{} ended at object {oid} before its last piece",
        chunk.first_oid, chunk.last_oid
    ))
}
