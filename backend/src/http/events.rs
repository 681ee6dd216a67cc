//! `GET /api/agreements/{id}/events`: an agreement's progress as Server-Sent Events.
//!
//! A stream reads the store once when it opens (so any replica serves it), then follows the
//! agreement's later records through [`super::progress::ProgressFeed`]; an idle stream costs a
//! keep-alive comment every 15 s. Streams are capped per client and in all, and end after
//! `EVENT_STREAM_LIFETIME_SECS`; the page's EventSource reconnects (`retry` is sent first).

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    context::ApiContext,
    error::{ApiError, ErrorBody},
    extract::{AgreementId, ClientIp},
    progress::read_view,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(agreement_events))
}

/// How often a stream says it is alive while nothing changes.
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How long the page's EventSource waits before it reconnects to an ended stream.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// The agreement as it changes (Server-Sent Events): an `event: progress` whose data is the JSON of
/// `GET /api/agreements/{id}`, at once and again whenever that JSON changes; a `: keep-alive` comment
/// every 15 s. An agreement not seen on-chain yet gets one `event: unseen` (data `{}`), then its first
/// `progress` once it is seen. The stream ends after `EVENT_STREAM_LIFETIME_SECS` (the EventSource
/// reconnects); a client with too many streams open, or a service with too many, gets 429.
#[utoipa::path(
    get,
    path = "/api/agreements/{id}/events",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "A stream of `progress` events (and at most one `unseen` first), until the \
                                      stream's lifetime ends; the schema is one event's",
         body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "The id is not an integer from 0 to 2^63 - 1 (the largest id the service \
                                      can record)", body = ErrorBody),
        (status = 429, description = "Too many streams open, for this client or in all; `Retry-After` says \
                                      when to try again", body = ErrorBody),
        (status = 500, description = "The store failed; the service logged why", body = ErrorBody),
    )
)]
async fn agreement_events(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
    ClientIp(client): ClientIp,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // An id the store cannot hold would be awaited for ever.
    if i64::try_from(id).is_err() {
        return Err(ApiError::BadRequest(format!(
            "agreement id must be an integer from 0 to {} to be followed, got {id}",
            i64::MAX
        )));
    }
    let slot = ctx.guards.streams.try_take(client).ok_or_else(|| ApiError::TooManyRequests {
        message: format!(
            "too many progress streams open (at most {} per client, {} in all): close one, or try again later",
            ctx.guards.limits.event_streams_per_client, ctx.guards.limits.event_streams_max
        ),
        retry_after_secs: 10,
    })?;
    let (views, following) = ctx.progress.follow(id);
    let first = read_view(&ctx.store, id).await?;
    let sent = first.clone();
    let start = futures::stream::once(async move {
        let event = match &first {
            Some(json) => Event::default().event("progress").data(json.as_ref()),
            None => Event::default().event("unseen").data("{}"),
        };
        Ok(event.retry(RECONNECT_AFTER))
    });
    // The stream holds its slot and its following for as long as it lives, and sends a record only
    // when it differs from the one it sent last.
    let state = (views, sent, following, slot);
    let later = futures::stream::unfold(state, |(mut views, mut sent, following, slot)| async move {
        loop {
            views.changed().await.ok()?;
            let view = views.borrow_and_update().clone();
            if let Some(json) = view.filter(|json| sent.as_ref() != Some(json)) {
                sent = Some(json.clone());
                let event = Event::default().event("progress").data(json.as_ref());
                return Some((Ok(event), (views, sent, following, slot)));
            }
        }
    });
    let lifetime = tokio::time::sleep(ctx.guards.limits.event_stream_lifetime);
    let events = start.chain(later).take_until(lifetime);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(EVENTS_KEEP_ALIVE).text("keep-alive")))
}

/// One event of `GET /api/agreements/{id}/events`, as the OpenAPI document describes an event of a
/// stream (the handler writes them as Server-Sent Events, never as this struct).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct StreamEvent {
    event: StreamEventName,
    /// `progress`: the JSON of `GET /api/agreements/{id}`; `unseen`: `{}`.
    data: String,
}

#[derive(utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum StreamEventName {
    /// The agreement as it is now.
    Progress,
    /// The agreement has not been seen on-chain yet (sent once, first).
    Unseen,
}
