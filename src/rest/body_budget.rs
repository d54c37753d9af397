//! Bounds the request bodies the server holds at once. A handler buffers its whole body and
//! then works on several copies of it (the bytes, the parsed JSON, the stamped resource), so
//! 200 concurrent 10 MB uploads used to hold over 3 GB, which the allocator then kept. A
//! request whose body is large takes a share of a fixed budget before its body is read and
//! gives it back when its response is ready; the rest wait their turn (their bytes stay in the
//! network buffers), within the request timeout. Small bodies never wait.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, header};
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;

/// Bodies below this size pass without taking from the budget.
const SMALL_BODY_BYTES: u64 = 64 * 1024;
/// The budget is counted in KiB.
const UNIT_BYTES: u64 = 1024;

#[derive(Clone)]
pub struct BodyBudget {
    permits: Arc<Semaphore>,
    total_units: u32,
    max_body_units: u32,
}

impl BodyBudget {
    /// A budget of `budget_bytes` for bodies of at most `max_body_bytes` each.
    pub fn new(budget_bytes: u64, max_body_bytes: u64) -> BodyBudget {
        let total_units = units(budget_bytes).max(1);
        BodyBudget {
            permits: Arc::new(Semaphore::new(total_units as usize)),
            total_units,
            max_body_units: units(max_body_bytes),
        }
    }

    /// The share a request takes: its declared length, or the largest body allowed when it
    /// declares none (chunked); never more than the whole budget, so any body can go alone.
    fn share(&self, request: &Request<Body>) -> u32 {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        let units = match declared {
            Some(length) if length < SMALL_BODY_BYTES => 0,
            Some(length) => units(length).min(self.max_body_units),
            None if request.headers().contains_key(header::TRANSFER_ENCODING) => {
                self.max_body_units
            }
            None => 0,
        };
        units.min(self.total_units)
    }
}

fn units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(UNIT_BYTES)).unwrap_or(u32::MAX)
}

pub async fn limit(
    State(budget): State<BodyBudget>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let share = budget.share(&request);
    if share == 0 {
        return next.run(request).await;
    }
    // The semaphore is never closed, so acquiring only waits.
    let _permit = budget.permits.acquire_many(share).await;
    next.run(request).await
}
