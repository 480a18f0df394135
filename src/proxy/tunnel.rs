//! Upgrade tunnels (WebSocket): after the origin's `101`, bytes flow both ways untouched.

use super::pool::Released;
use crate::response::{empty, Body};
use http::Response;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Answers the client with the origin's `101` and splices both upgraded connections.
pub(super) fn splice(client: OnUpgrade, mut origin_response: Response<Released>) -> Response<Body> {
    let origin = hyper::upgrade::on(&mut origin_response);
    tokio::spawn(async move {
        let (client, origin) = match tokio::try_join!(client, origin) {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade failed");
                return;
            }
        };
        let (mut client, mut origin) = (TokioIo::new(client), TokioIo::new(origin));
        if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut origin).await {
            tracing::debug!(error = %e, "tunnel closed with an error");
        }
    });
    let (parts, _) = origin_response.into_parts();
    Response::from_parts(parts, empty())
}
