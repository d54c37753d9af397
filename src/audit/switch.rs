//! Switching auditing off is itself recorded: a server started with `--disable-audit`
//! appends "audit disabled" before it serves anything, and the next start with auditing on
//! appends "audit enabled". The last state is kept in the settings table, and the command
//! line's changes follow it ([`cli_recorder`]).

use super::event::{Agent, Event, Kind, Origin, Outcome, Security};
use super::recorder::Recorder;
use crate::store::audit::chain::AuditRow;
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

/// The observer of the events the command line records on a database no server has
/// started on yet.
pub const CLI_OBSERVER: &str = "urn:kiln:cli";

/// The recorder of a command (`kiln app …`, `kiln user …`, `kiln client …`): on unless the
/// last server start had auditing off; its events name the FHIR base of the last server
/// start as observer.
pub async fn cli_recorder(store: &Store) -> StoreResult<Recorder> {
    let last = store.setting(AUDIT_SETTING).await?;
    let base = match store.setting(crate::store::BASE_URL_SETTING).await? {
        Some(base_url) => format!("{}/fhir", base_url.trim_end_matches('/')),
        None => CLI_OBSERVER.to_owned(),
    };
    Ok(Recorder::start(
        store.clone(),
        base,
        last.as_deref() != Some("off"),
    ))
}

/// A change the operator made at the command line: a `security` alert about `subject` by
/// [`Agent::cli`].
pub fn cli_event(
    security: Security,
    subject: super::event::Subject,
    description: impl Into<String>,
) -> Event {
    Event::alert(
        security,
        Agent::cli(),
        Origin::default(),
        subject,
        description,
    )
}

/// The stored rows of `event` for a command's store call to append in the change's own
/// transaction (none when auditing is off).
pub fn cli_rows(audit: &Recorder, event: &Event) -> Vec<AuditRow> {
    audit.row(event).into_iter().collect()
}

/// Records a change the operator made at the command line (see [`cli_event`]), after it.
pub async fn record_cli(
    audit: &Recorder,
    security: Security,
    subject: super::event::Subject,
    description: impl Into<String>,
) -> Result<(), super::recorder::AuditUnavailable> {
    audit
        .record(cli_event(security, subject, description))
        .await
}
