//! Serving the router over HTTP/1.1 with hyper, one task per connection, under the limits of
//! [`ClientLimits`]: a cap on open connections, a deadline for each request's headers, an idle timeout
//! between requests, and hyper's own limits on a request's head. HTTP/1.1 only: a reverse proxy or the
//! client speaks it to us (cleartext HTTP/2 is not offered), and every limit here is exact for it.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::limits::ClientLimits;

/// How long requests in flight may go on once shutdown begins; then their connections are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How long a client refused for too many connections is asked to wait: idle ones are closed meanwhile.
const REFUSED_RETRY_AFTER_SECONDS: u64 = 2;

/// Serves until `shutdown` completes, then stops accepting, lets requests in flight finish (up to a grace
/// period) and closes what is left.
///
/// The connections' tasks live in a `JoinSet` owned here rather than in `background::Background`: they
/// are the server's, not the engine's; shutdown waits for them (graceful, up to the grace period) and then
/// aborts the rest when the set is dropped, so none outlives this function.
pub fn serve_with_limits(
    listener: TcpListener,
    router: Router,
    limits: &ClientLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = io::Result<()>> + Send + 'static {
    raise_open_files_limit(limits.max_connections);
    let settings = Arc::new(ConnectionSettings::new(limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    accept_until(listener, router, settings, permits, shutdown)
}

async fn accept_until(
    listener: TcpListener,
    router: Router,
    settings: Arc<ConnectionSettings>,
    permits: Arc<Semaphore>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut refusals = Refusals::default();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = ended && error.is_panic() {
                    tracing::error!(%error, "a connection's task panicked");
                }
            }
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        accept_failed(error).await;
                        continue;
                    }
                };
                // Over the cap, refused at once: see `Refusals`.
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    refusals.refuse(stream);
                    continue;
                };
                // Without TCP_NODELAY, Nagle's algorithm holds small SSE frames back until the client's delayed
                // ACK: about 40 ms added to the first token of every stream (measured by examples/turn_latency.rs).
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "could not set TCP_NODELAY");
                }
                let connection = connection(stream, peer, router.clone(), Arc::clone(&settings), stopping.clone());
                connections.spawn(async move {
                    connection.await;
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    stopping.cancel();
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!("in-flight requests did not finish within 30 s of shutdown; closing them");
        connections.shutdown().await;
    }
    Ok(())
}

/// What every connection is held to, from [`ClientLimits`].
#[derive(Debug)]
struct ConnectionSettings {
    header_timeout: Duration,
    idle_timeout: Duration,
    /// hyper's own limits, twice ours, so that ours (answered with our error, `limits::header_limits`)
    /// apply first and hyper's bare 431 is only the last resort against a huge head.
    hyper_max_headers: usize,
    hyper_max_head_bytes: usize,
}

impl ConnectionSettings {
    fn new(limits: &ClientLimits) -> Self {
        Self {
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            hyper_max_headers: limits.max_headers.saturating_mul(2).max(16),
            // The request line counts here too; 16 KiB at least leaves room for a long URL.
            hyper_max_head_bytes: limits.max_header_bytes.saturating_mul(2).max(16 * 1024),
        }
    }
}

/// Serves one connection until it ends, its watchdog closes it, or shutdown has let it finish.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    settings: Arc<ConnectionSettings>,
    stopping: CancellationToken,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { stream, activity: Arc::clone(&activity) });
    let requests = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(&requests);
        let mut request = request.map(Body::new);
        // The peer's address: the demo page is only handed to this machine's own browser.
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap_or_else(|never| match never {});
            Ok::<_, Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    // hyper's header timeout also runs while a kept-alive connection waits for its next request, so it
    // cannot tell a slow head from an idle connection: the watchdog below keeps both deadlines instead.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_headers(settings.hyper_max_headers)
        .max_header_size(settings.hyper_max_head_bytes);
    let mut served = pin!(builder.serve_connection(io, service));
    let mut asked_to_finish = false;
    loop {
        tokio::select! {
            ended = served.as_mut() => {
                if let Err(error) = ended {
                    tracing::debug!(%error, %peer, "a connection ended with an error");
                }
                return;
            }
            reason = activity.expired(&settings) => {
                tracing::debug!(%peer, reason, "closing a connection");
                return;
            }
            () = stopping.cancelled(), if !asked_to_finish => {
                // Ends the connection once its response in flight (if any) is sent.
                served.as_mut().graceful_shutdown();
                asked_to_finish = true;
            }
        }
    }
}

/// Where a connection is, for its deadlines.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Opened (then), its first request not yet read: its head must be in within the header timeout.
    Opened(Instant),
    /// The next request's head began arriving then: within the header timeout too.
    ReadingHead(Instant),
    /// This many requests are being answered: no deadline here. A stalled body has its own (the body
    /// timeout), and a response, an event stream as much as any, is never cut.
    Busy(usize),
    /// Nothing in flight since then: the next request must begin within the idle timeout.
    Idle(Instant),
}

/// A connection's phase, moved by its reads ([`Watched`]) and requests ([`InFlight`]), and watched by
/// [`Activity::expired`].
#[derive(Debug)]
struct Activity {
    phase: Mutex<Phase>,
    /// Told when a deadline comes nearer (a head begins, the last request ends).
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self { phase: Mutex::new(Phase::Opened(Instant::now())), changed: Notify::new() }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = change(*phase);
        drop(phase);
        // A stored permit if the watchdog is not waiting: it is never missed.
        self.changed.notify_one();
    }

    fn bytes_read(&self) {
        let idle = matches!(*self.phase.lock().unwrap_or_else(PoisonError::into_inner), Phase::Idle(_));
        if idle {
            self.update(|phase| if let Phase::Idle(_) = phase { Phase::ReadingHead(Instant::now()) } else { phase });
        }
    }

    /// Completes when the connection has missed a deadline, saying which.
    async fn expired(&self, settings: &ConnectionSettings) -> &'static str {
        loop {
            let phase = *self.phase.lock().unwrap_or_else(PoisonError::into_inner);
            let deadline = match phase {
                Phase::Opened(since) | Phase::ReadingHead(since) => {
                    Some((since + settings.header_timeout, "the request's headers took too long"))
                }
                Phase::Idle(since) => Some((since + settings.idle_timeout, "idle for too long")),
                Phase::Busy(_) => None,
            };
            match deadline {
                Some((deadline, reason)) if deadline <= Instant::now() => return reason,
                Some((deadline, _)) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request being answered, from its head until its response's body is done with (sent, or dropped
/// with the connection).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: &Arc<Activity>) -> Self {
        activity.update(|phase| match phase {
            Phase::Busy(requests) => Phase::Busy(requests + 1),
            _ => Phase::Busy(1),
        });
        Self(Arc::clone(activity))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.update(|phase| match phase {
            Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
            _ => Phase::Idle(Instant::now()),
        });
    }
}

/// A response body holding its request's [`InFlight`].
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Connections over `SWITCHBOARD_MAX_CONNECTIONS` are accepted, sent a ready-made 503
/// `too_many_connections` with `Retry-After` in one non-blocking write, and closed: no task, no buffer,
/// no wait, so a flood of them costs nothing past the moment. Reading their requests first (to answer
/// them properly) would hold a socket and a task for each, the very resources the cap protects; leaving
/// them unaccepted would have clients hang in the kernel's queue without a word. A client whose request
/// had already arrived may see the connection reset instead of the 503; both say "try again".
#[derive(Debug, Default)]
struct Refusals {
    unreported: u64,
    reported: Option<Instant>,
}

impl Refusals {
    fn refuse(&mut self, stream: TcpStream) {
        use std::io::Write as _;
        if let Ok(stream) = stream.into_std() {
            let _ = (&stream).write(&too_many_connections());
        }
        self.unreported += 1;
        if self.reported.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            tracing::warn!(refused = self.unreported, "connections refused: SWITCHBOARD_MAX_CONNECTIONS are open");
            self.unreported = 0;
            self.reported = Some(Instant::now());
        }
    }
}

/// The whole answer to a refused connection, in the API's error shape.
fn too_many_connections() -> Vec<u8> {
    let request_id = uuid::Uuid::now_v7().to_string();
    let body = serde_json::json!({
        "error": {
            "code": "too_many_connections",
            "message": "the server has too many open connections; try again shortly",
            "request_id": request_id,
        }
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: {REFUSED_RETRY_AFTER_SECONDS}\r\nx-request-id: {request_id}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A failed `accept`: a connection that went away before it was accepted is nothing; anything else (out
/// of file descriptors) is logged and waited out for a moment rather than retried in a busy loop.
async fn accept_failed(error: io::Error) {
    if matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    ) {
        return;
    }
    tracing::error!(%error, "could not accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Every connection is a file descriptor, and a streamed turn holds two: its client's and its provider's.
/// Raises the soft limit on open files to what `max_connections` streamed turns need, with room for the
/// database pool and files, as Go's runtime does for its servers; and the hard limit too where the process
/// may (as root, up to the kernel's `fs.nr_open`). A limit that stays too low is logged.
fn raise_open_files_limit(max_connections: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let wanted = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_mul(2).saturating_add(1024);
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return };
    if soft >= wanted {
        return;
    }
    let raised = if hard < wanted && setrlimit(Resource::RLIMIT_NOFILE, wanted, wanted).is_ok() {
        wanted
    } else {
        let raised = wanted.min(hard);
        if let Err(error) = setrlimit(Resource::RLIMIT_NOFILE, raised, hard) {
            tracing::warn!(%error, soft, "could not raise the limit on open files");
            return;
        }
        raised
    };
    if raised < wanted {
        tracing::warn!(
            open_files = raised,
            max_connections,
            "the hard limit on open files is below what SWITCHBOARD_MAX_CONNECTIONS needs; connections past it \
             will fail to be accepted"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_connection_expires_by_its_phase_and_never_while_busy() {
        let settings = ConnectionSettings {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            hyper_max_headers: 200,
            hyper_max_head_bytes: 65536,
        };
        let activity = Arc::new(Activity::new());
        let opened = Instant::now();
        assert_eq!(activity.expired(&settings).await, "the request's headers took too long");
        assert_eq!(opened.elapsed(), settings.header_timeout);

        let activity = Arc::new(Activity::new());
        let in_flight = InFlight::begin(&activity);
        let busy = tokio::time::timeout(Duration::from_secs(3600), activity.expired(&settings)).await;
        assert!(busy.is_err(), "a request in flight, however long, keeps its connection");
        let done = Instant::now();
        drop(in_flight);
        assert_eq!(activity.expired(&settings).await, "idle for too long");
        assert_eq!(done.elapsed(), settings.idle_timeout);

        let activity = Arc::new(Activity::new());
        drop(InFlight::begin(&activity));
        let head_begins = async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            activity.bytes_read();
            Instant::now()
        };
        let (reason, head_began) = tokio::join!(activity.expired(&settings), head_begins);
        assert_eq!(reason, "the request's headers took too long");
        assert_eq!(head_began.elapsed(), Duration::from_secs(10), "the head's deadline, nearer than the idle one");
    }
}
