//! Switching auditing off is itself recorded: a server started with `--disable-audit`
//! appends "audit disabled" before it serves anything, and the next start with auditing on
//! appends "audit enabled". The last state is kept in the settings table.

use super::event::{Agent, Event, Kind, Origin, Outcome, Security};
use crate::store::{Store, StoreResult};

/// The settings key of the last start's auditing state (`on` or `off`).
pub const AUDIT_SETTING: &str = "audit";

/// Records a start with auditing `enabled` (or not) on the log of the server at `base`.
pub async fn record_start(store: &Store, base: &str, enabled: bool) -> StoreResult<()> {
    let last = store.setting(AUDIT_SETTING).await?;
    let event = match (enabled, last.as_deref()) {
        (false, _) => Some((
            Security::AuditDisabled,
            "the server started with --disable-audit: no events are recorded until a start \
             without it",
        )),
        (true, Some("off")) => Some((
            Security::AuditEnabled,
            "the server started with auditing on again",
        )),
        (true, _) => None,
    };
    if let Some((security, description)) = event {
        let event = Event::security(
            Kind::Security(security),
            Outcome::Success,
            Agent::default(),
            Origin::default(),
        )
        .with_description(description);
        store.append_audit(&[event.row(base)]).await?;
    }
    store
        .set_setting(AUDIT_SETTING, if enabled { "on" } else { "off" })
        .await
}
