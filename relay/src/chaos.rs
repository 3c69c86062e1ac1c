//! Chaos mode (`?chaos=1` or `X-Chunkwise-Chaos: 1`): the response body is cut into random
//! writes of 1 to 7 bytes, each flushed on its own (and now and then a millisecond apart), so
//! pieces reach the client as separate reads that split UTF-8 characters and SSE lines
//! anywhere. It shows (and tests) that a client decodes correctly however its input is split.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

pub fn split<S>(inner: S) -> impl Stream<Item = Result<Bytes, Infallible>> + Send
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    futures_util::stream::unfold((Box::pin(inner), Bytes::new()), |(mut inner, mut pending)| async move {
        if pending.is_empty() {
            pending = match inner.next().await? {
                Ok(bytes) => bytes,
                Err(never) => match never {},
            };
        } else {
            // Returning Pending makes hyper flush, so each piece is its own write and, with
            // TCP_NODELAY, its own TCP segment. A real pause now and then keeps a fast reader
            // from catching up and reading several pieces at once.
            if fastrand::u8(..8) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        let piece = pending.split_to(fastrand::usize(1..=7).min(pending.len()));
        Some((Ok(piece), (inner, pending)))
    })
}
