//! The client connection's socket: activity tracking, so that idle and silent connections
//! can be closed, and a lingering close, so that an early answer reaches a client that is
//! still sending.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// How long, and how much, a closed connection's late input is read and thrown away.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 << 20;

/// A count of the bytes-moving I/O calls on a connection. A counter rather than a
/// timestamp: reading the clock on every read and write was measurable on the hot path.
#[derive(Clone, Default)]
pub(super) struct Activity(Arc<AtomicU64>);

impl Activity {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn touch(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Resolves once a whole `limit` passes without I/O: the connection is closed between
    /// `limit` and twice `limit` after its last byte.
    pub(super) async fn idle_for(&self, limit: Duration) {
        let mut seen = self.0.load(Ordering::Relaxed);
        loop {
            tokio::time::sleep(limit).await;
            let now = self.0.load(Ordering::Relaxed);
            if now == seen {
                return;
            }
            seen = now;
        }
    }

    /// Resolves after `limit` if nothing has moved since the count was `snapshot`; never
    /// resolves once something has. A client that connects and sends nothing is cut off
    /// by this, as a slow request head is by hyper's header timer.
    pub(super) async fn silent_for(&self, snapshot: u64, limit: Duration) {
        tokio::time::sleep(limit).await;
        if self.0.load(Ordering::Relaxed) != snapshot {
            std::future::pending::<()>().await;
        }
    }

    pub(super) fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The client's TCP stream, recording its activity; closed with a linger (see `Drop`).
pub(super) struct Tracked {
    /// Always `Some` until dropped.
    inner: Option<TcpStream>,
    activity: Activity,
}

impl Tracked {
    pub(super) fn new(inner: TcpStream, activity: Activity) -> Self {
        Self { inner: Some(inner), activity }
    }

    fn stream(&mut self) -> Pin<&mut TcpStream> {
        Pin::new(self.inner.as_mut().expect("stream present until drop"))
    }
}

/// Closing a socket that still has unread input makes the kernel send a reset, and a
/// reset destroys what the client has not read yet: a `431` or `413` sent to a client
/// still sending its 600 KB header or 64 GiB body would never be seen. So when input is
/// still waiting, the stream is shut for writing (the answer is complete) and its input
/// read and dropped for a short, bounded while before it is closed (as nginx's lingering
/// close does).
impl Drop for Tracked {
    fn drop(&mut self) {
        let Some(stream) = self.inner.take() else { return };
        let mut probe = [0u8; 1];
        let unread = matches!(stream.try_read(&mut probe), Ok(n) if n > 0);
        if !unread {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(linger(stream));
        }
    }
}

async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let deadline = tokio::time::Instant::now() + LINGER_TIME;
    let mut buf = vec![0u8; 16 << 10];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => drained += n,
            _ => break,
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = self.stream().poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write(cx, data);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = self.stream().poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}
