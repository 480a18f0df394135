//! The client stream as one HTTP/1 serving episode sees it: bytes already read (while the
//! connection was parked, or left over by the last episode) are read again first; writes
//! are watched, so a connection is parked only when everything written has been flushed;
//! and the stream is not shut down when the episode ends because it is being parked.

use bytes::{Buf, Bytes};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What the stream tells the episode about its writes, and what the episode tells the
/// stream about its end.
#[derive(Debug, Default)]
pub(super) struct Flushes {
    /// Something was written since the last completed flush (hyper may still hold bytes).
    dirty: AtomicBool,
    /// The episode is ending so the connection can be parked: its end must leave the
    /// stream open.
    parking: AtomicBool,
}

impl Flushes {
    pub(super) fn all_flushed(&self) -> bool {
        !self.dirty.load(Ordering::Relaxed)
    }

    pub(super) fn park(&self) {
        self.parking.store(true, Ordering::Relaxed);
    }

    pub(super) fn parking(&self) -> bool {
        self.parking.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
pub(super) struct Rewound<I> {
    unread: Bytes,
    inner: I,
    flushes: Arc<Flushes>,
}

impl<I> Rewound<I> {
    pub(super) fn new(inner: I, unread: Bytes, flushes: Arc<Flushes>) -> Self {
        Self { unread, inner, flushes }
    }

    /// The stream, and what of the bytes given to `new` was never read.
    pub(super) fn into_parts(self) -> (I, Bytes) {
        (self.inner, self.unread)
    }

    fn wrote(&self) {
        self.flushes.dirty.store(true, Ordering::Relaxed);
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Rewound<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            buf.put_slice(&self.unread[..n]);
            self.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Rewound<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.wrote();
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.wrote();
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// hyper flushes the stream only once its own buffer is empty, so a completed flush
    /// means nothing written is left anywhere but the kernel.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        if matches!(result, Poll::Ready(Ok(()))) {
            self.flushes.dirty.store(false, Ordering::Relaxed);
        }
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.flushes.parking() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_unread_bytes_come_first_then_the_stream() {
        let (client, mut server) = tokio::io::duplex(64);
        server.write_all(b" world").await.unwrap();
        drop(server);
        let mut io = Rewound::new(client, Bytes::from_static(b"hello"), Arc::default());
        let mut text = String::new();
        io.read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello world");
    }

    #[tokio::test]
    async fn a_write_is_dirty_until_flushed_and_a_parking_end_leaves_the_stream_open() {
        let (client, mut server) = tokio::io::duplex(64);
        let flushes = Arc::new(Flushes::default());
        let mut io = Rewound::new(client, Bytes::new(), flushes.clone());
        assert!(flushes.all_flushed());
        io.write_all(b"answer").await.unwrap();
        assert!(!flushes.all_flushed());
        io.flush().await.unwrap();
        assert!(flushes.all_flushed());

        flushes.park();
        io.shutdown().await.unwrap();
        let (mut client, unread) = io.into_parts();
        assert!(unread.is_empty());
        client.write_all(b"!").await.unwrap();
        let mut got = [0u8; 7];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"answer!", "the stream was not shut down");
    }
}
