//! One chunk's flow: reader -> (transform thread) -> writer, joined by bounded channels.
//!
//! [`ChunkFlow`] owns the channels, the transform thread and the join, so a lane (or verify's
//! repair, or a test) only opens the two ends and hands their futures to [`ChunkFlow::run`].
//! At most `channel_batches` batches wait in each channel: memory is bounded by configuration,
//! not by data. When the reader finishes, the flow closes the stream with a
//! [`Piece::End`] carrying the reader's counts; the transform adds its own rejects to it; the
//! writer commits the chunk's last segment only on that mark (see [`crate::sink::postgres`]).
//!
//! Errors: the transform's (too many rejects) explains both ends stopping early, so it wins;
//! then the writer's, unless the writer only saw the stream cut short, in which case the
//! reader's. A panic of the transform thread is raised again in the caller, not turned into an
//! error string. The transform thread ends when its input closes or its output is dropped, so
//! a flow dropped half-way leaves nothing running for long.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::batch::{Piece, StreamEnd};
use crate::error::{Error, Result};
use crate::sink::postgres::WriteStats;
use crate::source::ReadStats;
use crate::transform::TableTransform;

/// The channels and transform thread of one chunk.
pub struct ChunkFlow {
    input: mpsc::Sender<Piece>,
    output: Option<mpsc::Receiver<Piece>>,
    transform: Option<JoinHandle<Result<()>>>,
}

impl ChunkFlow {
    /// A flow with channels of `channel_batches` batches; with a transform, its thread starts
    /// now and waits for the first batch.
    pub fn new(channel_batches: usize, transform: Option<Arc<TableTransform>>) -> Self {
        let (input, rx) = mpsc::channel(channel_batches.max(1));
        let (output, transform) = match transform {
            None => (rx, None),
            Some(t) => {
                let (tx2, rx2) = mpsc::channel(channel_batches.max(1));
                let handle = tokio::task::spawn_blocking(move || run_transform(&t, rx, tx2));
                (rx2, Some(handle))
            }
        };
        ChunkFlow {
            input,
            output: Some(output),
            transform,
        }
    }

    /// Where the reader sends its batches.
    pub fn input(&self) -> mpsc::Sender<Piece> {
        self.input.clone()
    }

    /// What the writer receives (once).
    pub fn output(&mut self) -> mpsc::Receiver<Piece> {
        self.output.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// Runs the reader and the writer to their end, closes the stream after the reader, and
    /// joins the transform thread; returns what the writer committed.
    pub async fn run(
        self,
        read: impl Future<Output = Result<ReadStats>>,
        write: impl Future<Output = Result<WriteStats>>,
    ) -> Result<WriteStats> {
        let end = self.input;
        let read = async move {
            let stats = read.await;
            if let Ok(s) = &stats {
                let mark = StreamEnd {
                    read: s.rows,
                    read_rejected: s.rejected,
                    transform_rejected: 0,
                };
                // A writer that is gone has its own error to report.
                let _ = end.send(Piece::End(mark)).await;
            }
            stats
        };
        let (read, write) = tokio::join!(read, write);
        if let Some(handle) = self.transform {
            match handle.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(Error::Internal(format!("the transform stopped: {e}"))),
            }
        }
        match (read, write) {
            (Err(r), Err(w)) if is_stream_cut(&w) => Err(r),
            (_, Err(w)) => Err(w),
            (Err(r), Ok(_)) => Err(r),
            (Ok(_), Ok(w)) => Ok(w),
        }
    }
}

fn is_stream_cut(e: &Error) -> bool {
    matches!(e, Error::Copy { stage: "reading the source", reason, .. }
        if reason == "the stream of rows ended before its end mark")
}

/// The transform thread of one chunk: batches in, transformed batches out; the end mark gets
/// the transform's rejects added. Ends when the reader is done or the writer is gone.
fn run_transform(
    t: &TableTransform,
    mut rx: mpsc::Receiver<Piece>,
    tx: mpsc::Sender<Piece>,
) -> Result<()> {
    let mut rejected = 0u64;
    while let Some(piece) = rx.blocking_recv() {
        let out = match piece {
            Piece::Rows(batch) => {
                let (out, stats) = t.apply(batch)?;
                rejected += stats.rejected;
                Piece::Rows(out)
            }
            Piece::End(mut end) => {
                end.transform_rejected += rejected;
                Piece::End(end)
            }
        };
        if tx.blocking_send(out).is_err() {
            break;
        }
    }
    Ok(())
}

/// A writer that keeps nothing: it takes the stream to its end and counts it, for measuring
/// the read side alone and for tests of a flow without a target.
pub async fn null_sink(mut rx: mpsc::Receiver<Piece>) -> Result<WriteStats> {
    let mut stats = WriteStats::default();
    while let Some(piece) = rx.recv().await {
        match piece {
            Piece::Rows(b) => {
                stats.rows += b.rows;
                stats.bytes += b.data.len() as u64;
                stats.rejected += b.rejects.len() as u64;
            }
            Piece::End(_) => return Ok(stats),
        }
    }
    Err(Error::Internal(
        "the stream ended before its end mark".into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::batch::Batch;
    use bytes::Bytes;

    fn batch(rows: u64) -> Batch {
        Batch {
            data: Bytes::from(vec![0u8; rows as usize]),
            rows,
            last_tuple_start: 0,
            rejects: Vec::new(),
            last_key: None,
            last_raw_key: None,
        }
    }

    #[tokio::test]
    async fn the_stream_ends_with_the_readers_counts() {
        let mut flow = ChunkFlow::new(2, None);
        let tx = flow.input();
        let read = async move {
            for _ in 0..5 {
                tx.send(Piece::Rows(batch(10))).await.unwrap();
            }
            Ok(ReadStats {
                rows: 50,
                bytes: 50,
                rejected: 0,
            })
        };
        let out = flow.output();
        let stats = flow.run(read, null_sink(out)).await.unwrap();
        assert_eq!((stats.rows, stats.bytes), (50, 50));
    }

    #[tokio::test]
    async fn a_failed_reader_is_reported_not_the_cut_stream() {
        let mut flow = ChunkFlow::new(2, None);
        let tx = flow.input();
        let read = async move {
            tx.send(Piece::Rows(batch(1))).await.unwrap();
            Err(Error::Internal("the source broke".into()))
        };
        let out = flow.output();
        let write = async move {
            let mut rx = out;
            while let Some(p) = rx.recv().await {
                if matches!(p, Piece::End(_)) {
                    return Ok(WriteStats::default());
                }
            }
            Err(crate::sink::postgres::stream_cut(
                &crate::catalog::Table::default(),
                "chunk",
            ))
        };
        let err = flow.run(read, write).await.unwrap_err();
        assert!(err.to_string().contains("the source broke"), "{err}");
    }
}
