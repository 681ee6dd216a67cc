//! `GET /api/agreements/{id}/events`: an agreement's progress as Server-Sent Events.

use std::{convert::Infallible, time::Duration};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::Stream;
use tracing::warn;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::store::Store;

use super::{
    agreements::agreement_view,
    context::ApiContext,
    error::{ApiError, ErrorBody},
    extract::AgreementId,
};

pub(super) fn router() -> OpenApiRouter<ApiContext> {
    OpenApiRouter::new().routes(routes!(agreement_events))
}

/// How often an event stream reads the store, and how often it says it is alive while nothing changes.
const EVENTS_POLL: Duration = Duration::from_millis(250);
const EVENTS_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The agreement as it changes (Server-Sent Events): an `event: progress` whose data is the JSON of
/// `GET /api/agreements/{id}`, at once and again whenever that JSON changes (the store is read about
/// every 250 ms, so every replica serves it); a `: keep-alive` comment every 15 s. An agreement not
/// seen on-chain yet gets one `event: unseen` (data `{}`), then its first `progress` once it is seen.
#[utoipa::path(
    get,
    path = "/api/agreements/{id}/events",
    tag = "agreements",
    params(("id" = u64, Path, description = "The agreement's on-chain id")),
    responses(
        (status = 200, description = "An endless stream of `progress` events (and at most one `unseen` first); \
                                      the schema is one event's",
         body = StreamEvent, content_type = "text/event-stream"),
        (status = 400, description = "The id is not an integer from 0 to 2^63 - 1 (the largest id the service \
                                      can record)", body = ErrorBody),
    )
)]
async fn agreement_events(
    State(ctx): State<ApiContext>,
    AgreementId(id): AgreementId,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // An id the store cannot hold would be awaited for ever.
    if i64::try_from(id).is_err() {
        return Err(ApiError::BadRequest(format!(
            "agreement id must be an integer from 0 to {} to be followed, got {id}",
            i64::MAX
        )));
    }
    /// What the stream remembers between reads: the JSON it sent last, and whether it said `unseen`.
    struct Follow {
        store: Store,
        id: u64,
        sent: Option<String>,
        said_unseen: bool,
    }
    let follow = Follow { store: ctx.store, id, sent: None, said_unseen: false };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        loop {
            match agreement_view(&follow.store, follow.id).await {
                Ok(Some(view)) => match serde_json::to_string(&view) {
                    Ok(json) if follow.sent.as_ref() != Some(&json) => {
                        follow.sent = Some(json.clone());
                        return Some((Ok(Event::default().event("progress").data(json)), follow));
                    }
                    Ok(_) => {}
                    Err(err) => warn!(agreement = follow.id, error = %err, "event stream: the view did not serialize"),
                },
                Ok(None) if !follow.said_unseen => {
                    follow.said_unseen = true;
                    return Some((Ok(Event::default().event("unseen").data("{}")), follow));
                }
                Ok(None) => {}
                // The stream's status is sent already: a failed read is logged and retried.
                Err(err) => warn!(agreement = follow.id, error = %err, kind = err.label(), "event stream: read failed"),
            }
            tokio::time::sleep(EVENTS_POLL).await;
        }
    });
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
