//! Harnesses for Sky's tests, shared by the provider crates and the end-to-end tests: `moto` (a
//! moto server and a fault-injecting EC2 proxy in front of it), `aws_sso` (the SSO portal's
//! GetRoleCredentials), `gcp_fake` (Compute Engine REST)
//! and `azure_fake` (ARM + the identity platform's token endpoint); `require` fails a test that
//! cannot run here when in CI, instead of letting it skip.
//!
//! Test code only: it panics on setup failures (a harness that cannot start has nothing useful to
//! return) and knows nothing about Sky's providers, so it never pulls in a cloud SDK.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod aws_sso;
pub mod azure_fake;
pub mod crash;
pub mod gcp_fake;
pub mod hosts;
pub mod moto;
pub mod require;

/// The address a request came from (a metadata server tells its callers apart by it), in each
/// request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub std::net::SocketAddr);

/// Serves HTTP/1.1 on `listener` for as long as the test's runtime lives, one task per
/// connection, every request through `handle` (what each fake's `start` runs); `crash` hears of
/// each request once it was handled, before its answer goes out.
pub(crate) fn serve<H, Fut, E>(
    listener: tokio::net::TcpListener,
    crash: crash::CrashAfter,
    handle: H,
) where
    H: Fn(hyper::Request<hyper::body::Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<
            Output = Result<hyper::Response<http_body_util::Full<hyper::body::Bytes>>, E>,
        > + Send
        + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let (handle, crash) = (handle.clone(), crash.clone());
            tokio::spawn(async move {
                let service = move |mut req: hyper::Request<hyper::body::Incoming>| {
                    let (handle, crash) = (handle.clone(), crash.clone());
                    req.extensions_mut().insert(Peer(peer));
                    async move {
                        let request = format!("{} {}", req.method(), req.uri().path());
                        let answer = handle(req).await;
                        crash.after_request(&request).await;
                        answer
                    }
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper::service::service_fn(service),
                    )
                    .await;
            });
        }
    });
}
