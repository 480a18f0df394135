//! Serving threads: a public listener is served by one thread per core, each with a
//! current-thread runtime of its own, as nginx runs one worker process per core.
//!
//! Why not the shared multi-thread runtime: hyper's HTTP/2 server spawns a task per
//! stream, and with a few hundred streams in flight a multi-thread worker's local queue
//! (256 tasks) overflows into the shared queue, which a busy worker looks at only every
//! 61 tasks; the overflowed requests waited up to ten times the mean (h2load: 200 ms
//! against nginx's 30–50 ms, see docs/BENCHMARKS.md). A current-thread runtime runs its
//! tasks from one unbounded queue in order, and a connection, its streams and its
//! upstream requests stay on one thread. The threads take turns at one listening socket.
//!
//! The rooms' tickers, the store's connections and the admin listener stay on the main
//! runtime; requests reach them through channels, as they did across worker threads.

use super::{Handler, Server};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// The threads serving one listener.
#[derive(Debug)]
pub(crate) struct ServingThreads {
    /// One per thread: resolves (or fails) once the thread has stopped.
    done: Vec<oneshot::Receiver<()>>,
    /// Cuts the connections still open: the threads' runtimes are dropped.
    cut: watch::Sender<bool>,
}

/// How many serving threads a listener gets: `TOKIO_WORKER_THREADS` if set (the same
/// setting sizes the main runtime), else one per core.
pub(crate) fn count() -> usize {
    std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
}

impl ServingThreads {
    /// Serves `listener` on `threads` threads until `shutdown` turns true and their open
    /// connections have finished (see [`Server::run`]), or until [`Self::cut`].
    pub(crate) fn start<H: Handler>(
        server: Arc<Server<H>>,
        listener: TcpListener,
        threads: usize,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Self> {
        let listener = listener.into_std()?;
        let (cut, cut_rx) = watch::channel(false);
        let mut done = Vec::with_capacity(threads);
        for i in 0..threads.max(1) {
            // A thread that cannot start stops those already started.
            let started = Self::spawn(i, &server, &listener, &shutdown, &cut_rx);
            match started {
                Ok(finished) => done.push(finished),
                Err(e) => {
                    let _ = cut.send(true);
                    return Err(e);
                }
            }
        }
        Ok(Self { done, cut })
    }

    /// Starts serving thread `i`; the receiver resolves once it has stopped.
    fn spawn<H: Handler>(
        i: usize,
        server: &Arc<Server<H>>,
        listener: &std::net::TcpListener,
        shutdown: &watch::Receiver<bool>,
        cut_rx: &watch::Receiver<bool>,
    ) -> std::io::Result<oneshot::Receiver<()>> {
        let listener = listener.try_clone()?;
        let (server, shutdown, mut cut_rx) = (server.clone(), shutdown.clone(), cut_rx.clone());
        let (finished, finished_rx) = oneshot::channel();
        std::thread::Builder::new().name(format!("anteroom-serve-{i}")).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(runtime) => runtime,
                Err(e) => return tracing::error!(error = %e, "cannot start a serving thread's runtime"),
            };
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return tracing::error!(error = %e, "a serving thread cannot listen"),
                };
                tokio::select! {
                    () = server.run(listener, shutdown) => {}
                    _ = cut_rx.wait_for(|cut| *cut) => {}
                }
            });
            // Whatever is still open is cut here, without waiting on it.
            runtime.shutdown_background();
            let _ = finished.send(());
        })?;
        Ok(finished_rx)
    }

    /// Resolves once every thread has stopped.
    pub(crate) async fn finished(&mut self) {
        // Removed as they finish, so that a wait given up half-way can be taken up again.
        while let Some(thread) = self.done.last_mut() {
            let _ = thread.await;
            self.done.pop();
        }
    }

    /// Cuts the connections still open and stops the threads.
    pub(crate) fn cut(&self) {
        let _ = self.cut.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use crate::response::{self, Body};
    use http::{Request, Response, StatusCode};
    use hyper::body::Incoming;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// Answers with the name of the thread serving the request; `/hang` never answers.
    struct ThreadName;

    impl Handler for ThreadName {
        async fn handle(&self, req: Request<Incoming>, _peer: super::super::Peer) -> Response<Body> {
            if req.uri().path() == "/hang" {
                std::future::pending::<()>().await;
            }
            let name = std::thread::current().name().unwrap_or("unnamed").to_owned();
            response::text(StatusCode::OK, &name)
        }
    }

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer).await;
        answer
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_are_served_on_the_serving_threads_and_a_cut_ends_what_a_drain_cannot() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Arc::new(Server::new(Arc::new(ThreadName), &Limits::default(), None, Arc::default()));
        let (stop, stopped) = watch::channel(false);
        let mut threads = ServingThreads::start(server, listener, 2, stopped).unwrap();

        let answers = answers_at_once(addr, 40).await;
        for answer in &answers {
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            let body = answer.rsplit("\r\n\r\n").next().unwrap().trim();
            assert!(body == "anteroom-serve-0" || body == "anteroom-serve-1", "served by {body}");
        }

        // A request that never ends holds the drain; a cut ends it.
        let mut hung = TcpStream::connect(addr).await.unwrap();
        hung.write_all(b"GET /hang HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send(true).unwrap();
        let drained = tokio::time::timeout(Duration::from_millis(500), threads.finished()).await;
        assert!(drained.is_err(), "the hung request keeps its thread draining");
        assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed while draining");

        threads.cut();
        tokio::time::timeout(Duration::from_secs(10), threads.finished()).await.expect("the threads stop when cut");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), hung.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the hung connection is closed, unanswered: {read:?}");
    }

    async fn answers_at_once(addr: std::net::SocketAddr, n: usize) -> Vec<String> {
        let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(get(addr, "/"))).collect();
        let mut answers = Vec::with_capacity(n);
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        answers
    }
}
