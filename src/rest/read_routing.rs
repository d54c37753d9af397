//! Which database answers a read when a standby is configured (`KILN_DATABASE_READ_URL`):
//! [`reads`] picks it for searches and history, and the [`fence_writes`]
//! middleware records each successful write so that its client keeps reading its own
//! writes (see `crate::state::replicas`). Without a standby both do nothing.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::access::reach::Access;
use crate::state::AppState;
use crate::store::Store;

/// The caller a fence belongs to: the token's client, or every anonymous caller at once.
fn client_key(access: Option<&Access>) -> String {
    match access {
        Some(Access::Token(granted)) => format!("client:{}", granted.client_id),
        _ => "anonymous".to_string(),
    }
}

/// The store that answers `access`'s search or history: the standby, unless it has not yet
/// replayed that caller's latest write.
pub async fn reads(state: &AppState, access: &Access) -> Store {
    if state.read_replica.is_none() {
        return state.store.clone();
    }
    state.reads_for(&client_key(Some(access))).await
}

/// After a successful write (any method but GET and HEAD, except a `_search`), records the
/// primary's WAL position for the writer. Runs inside the bearer check (it reads [`Access`]).
pub async fn fence_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(replica) = state.read_replica.clone() else {
        return next.run(request).await;
    };
    let writes = !matches!(*request.method(), Method::GET | Method::HEAD)
        && !request.uri().path().ends_with("/_search");
    let key = client_key(request.extensions().get::<Access>());
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        replica.wrote(&key).await;
    }
    response
}
