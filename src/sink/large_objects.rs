//! PostgreSQL target for large objects, and the commit point of a chunk of them.
//!
//! A chunk of objects is one target transaction: the chunk is claimed by locking its state
//! row, every object is created under its source OID (`lo_from_bytea` for the first piece,
//! `lo_put` for the next ones, so no object is ever held whole), then owners, privileges and
//! comments, then the chunk is marked done, then COMMIT ([`LoWriter::commit_chunk`]). A crash
//! anywhere before the COMMIT leaves neither objects nor mark; after it, both.

use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::catalog::{quote_ident, quote_literal};
use crate::error::{query_error, Result};
use crate::source::large_objects::{stream_cut, LoMeta, LoPiece};
use crate::state::large_objects::{self as lo_state, LoChunk};
use crate::state::StateRef;

/// What to reproduce besides the bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoOptions {
    /// `ALTER LARGE OBJECT ... OWNER TO` the source owner.
    pub owners: bool,
    /// `GRANT ... ON LARGE OBJECT` the source privileges.
    pub grants: bool,
    /// Replace target objects that have a source object's OID (`--schema recreate`); else
    /// such an object stops the copy with the server's "already exists".
    pub replace: bool,
}

/// What one chunk wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoWritten {
    /// Objects created.
    pub objects: i32,
    /// Bytes written.
    pub bytes: i64,
}

/// A target session that writes chunks of large objects.
pub struct LoWriter<'a> {
    client: &'a Client,
}

impl<'a> LoWriter<'a> {
    /// A writer over a target session (a [`super::postgres::PgWriter`]'s).
    pub fn new(client: &'a Client) -> Self {
        LoWriter { client }
    }

    /// Starts a chunk's transaction and claims the first open chunk; `None` (and no open
    /// transaction) when every chunk is done or held by another worker.
    pub async fn begin(&self, st: &StateRef) -> Result<Option<LoChunk>> {
        self.client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| query_error("starting a chunk of large objects", &e))?;
        let chunk = lo_state::claim(self.client, st).await?;
        if chunk.is_none() {
            self.rollback().await;
        }
        Ok(chunk)
    }

    /// Writes the pieces received on `rx`, which must cover `objects` in order, then their
    /// owners, privileges and comments as `opts` asks.
    pub async fn write(
        &self,
        chunk: &LoChunk,
        objects: &[LoMeta],
        mut rx: mpsc::Receiver<LoPiece>,
        opts: LoOptions,
    ) -> Result<LoWritten> {
        let create = self
            .client
            .prepare("SELECT pg_catalog.lo_from_bytea($1, $2)")
            .await
            .map_err(|e| query_error("preparing the large-object writer", &e))?;
        let put = self
            .client
            .prepare("SELECT pg_catalog.lo_put($1, $2, $3)")
            .await
            .map_err(|e| query_error("preparing the large-object writer", &e))?;
        if opts.replace {
            let oids: Vec<u32> = objects.iter().map(|o| o.oid).collect();
            self.client
                .execute(
                    "SELECT pg_catalog.lo_unlink(m.oid) FROM pg_catalog.pg_largeobject_metadata m \
                     WHERE m.oid = ANY($1)",
                    &[&oids],
                )
                .await
                .map_err(|e| {
                    query_error(
                        format!(
                            "dropping the target's large objects {}..{} to copy them again",
                            chunk.first_oid, chunk.last_oid
                        ),
                        &e,
                    )
                })?;
        }
        let mut written = LoWritten::default();
        for o in objects {
            loop {
                let Some(piece) = rx.recv().await else {
                    return Err(stream_cut(chunk, o.oid));
                };
                let what = || format!("writing large object {} on the target", o.oid);
                if piece.oid != o.oid {
                    return Err(stream_cut(chunk, o.oid));
                }
                if piece.offset == 0 {
                    self.client
                        .execute(&create, &[&piece.oid, &piece.data])
                        .await
                        .map_err(|e| query_error(what(), &e))?;
                } else if !piece.data.is_empty() {
                    self.client
                        .execute(&put, &[&piece.oid, &piece.offset, &piece.data])
                        .await
                        .map_err(|e| query_error(what(), &e))?;
                }
                written.bytes += piece.data.len() as i64;
                if piece.last {
                    break;
                }
            }
            written.objects += 1;
        }
        let sql = metadata_sql(objects, opts);
        if !sql.is_empty() {
            self.client.batch_execute(&sql).await.map_err(|e| {
                query_error(
                    format!(
                        "setting owners, privileges and comments of large objects {}..{}",
                        chunk.first_oid, chunk.last_oid
                    ),
                    &e,
                )
            })?;
        }
        Ok(written)
    }

    /// The commit point: marks the chunk done with what it wrote, then COMMIT.
    pub async fn commit_chunk(
        &self,
        st: &StateRef,
        chunk: &LoChunk,
        written: LoWritten,
    ) -> Result<()> {
        lo_state::mark_done(self.client, st, chunk, written.objects, written.bytes).await?;
        self.client.batch_execute("COMMIT").await.map_err(|e| {
            query_error(
                format!(
                    "committing large objects {}..{}",
                    chunk.first_oid, chunk.last_oid
                ),
                &e,
            )
        })
    }

    /// Rolls the chunk back (its objects and its claim go with it); a failure here means the
    /// session is gone, which rolls back too.
    pub async fn rollback(&self) {
        let _ = self.client.batch_execute("ROLLBACK").await;
    }
}

/// Owners, privileges and comments of `objects`, as `opts` asks (comments always).
fn metadata_sql(objects: &[LoMeta], opts: LoOptions) -> String {
    let mut sql = String::new();
    for o in objects {
        if opts.owners {
            sql.push_str(&format!(
                "ALTER LARGE OBJECT {} OWNER TO {};\n",
                o.oid,
                quote_ident(&o.owner)
            ));
        }
        if opts.grants {
            for (privilege, grantee, option) in &o.grants {
                let option = if *option { " WITH GRANT OPTION" } else { "" };
                sql.push_str(&format!(
                    "GRANT {privilege} ON LARGE OBJECT {} TO {grantee}{option};\n",
                    o.oid
                ));
            }
        }
        if let Some(c) = &o.comment {
            sql.push_str(&format!(
                "COMMENT ON LARGE OBJECT {} IS {};\n",
                o.oid,
                quote_literal(c)
            ));
        }
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_follows_the_options() {
        let o = LoMeta {
            oid: 42,
            owner: "Ann".into(),
            grants: vec![("SELECT".into(), "PUBLIC".into(), false)],
            comment: Some("it's".into()),
        };
        let plain = metadata_sql(std::slice::from_ref(&o), LoOptions::default());
        assert_eq!(plain, "COMMENT ON LARGE OBJECT 42 IS 'it''s';\n");
        let all = metadata_sql(
            &[o],
            LoOptions {
                owners: true,
                grants: true,
                replace: false,
            },
        );
        assert!(all.contains("ALTER LARGE OBJECT 42 OWNER TO \"Ann\";"));
        assert!(all.contains("GRANT SELECT ON LARGE OBJECT 42 TO PUBLIC;"));
    }
}
