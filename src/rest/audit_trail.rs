//! The audit layer around the FHIR API: every request but `/metadata` leaves an event —
//! reads, searches, history, operations, and every refused or failed request — appended
//! through the application's recorder; the answer goes out only once its event is committed
//! or written to the audit spool, and a request whose event cannot be written answers 503. A write that
//! succeeded recorded its events in its own transaction (`RecordedWithWrite`), so it is not
//! recorded again here.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::reach::Access;
use crate::audit::{Agent, Detail, Entity, Event, Origin, Outcome, RecordedWithWrite, SearchQuery};
use crate::fhir::outcome::FhirError;
use crate::state::AppState;

pub async fn record(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if !state.audit.enabled() || request.uri().path().ends_with("/metadata") {
        return next.run(request).await;
    }
    let origin = Origin::of(request.extensions(), request.headers());
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| matched.as_str().to_owned());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(str::to_owned);
    request.extensions_mut().insert(origin.clone());
    let response = next.run(request).await;
    if response.extensions().get::<RecordedWithWrite>().is_some() {
        return response;
    }
    let route = Route::of(template.as_deref(), &path, method.as_str());
    let agent = response
        .extensions()
        .get::<Access>()
        .map(Agent::of_access)
        .unwrap_or_default();
    let mut event = Event::rest(route.interaction, agent, origin);
    event.entity = route.entity;
    event.patient = route.patient;
    if route.interaction.starts_with("search") || route.interaction == "operation" {
        event.query = response
            .extensions()
            .get::<SearchQuery>()
            .map(|posted| posted.0.clone())
            .or(query)
            .filter(|query| !query.is_empty());
        if event.patient.is_none() {
            event.patient = event.query.as_deref().and_then(patient_param);
        }
    }
    if let Some(detail) = response.extensions().get::<Detail>() {
        if event.patient.is_none() {
            event.patient = detail.patient.clone();
        }
        if let (Some(entity), Some(version)) = (&mut event.entity, detail.version) {
            entity.version = Some(version);
        }
    }
    let status = response.status();
    if !status.is_success() && !status.is_redirection() {
        event.outcome = Outcome::of_status(status.as_u16());
        event.description = Some(status.canonical_reason().map_or_else(
            || status.to_string(),
            |reason| format!("{} {reason}", status.as_u16()),
        ));
    }
    match state.audit.record(event).await {
        Ok(()) => response,
        Err(error) => FhirError::from(error).into_response(),
    }
}

/// What a FHIR route is, for the log.
struct Route {
    interaction: &'static str,
    entity: Option<Entity>,
    patient: Option<String>,
}

impl Route {
    /// The interaction of `method` on the route `template` (without the `/fhir` prefix),
    /// with the entity and patient its path names.
    fn of(template: Option<&str>, path: &str, method: &str) -> Route {
        let template = template.unwrap_or(path);
        let template = template.strip_prefix("/fhir").unwrap_or(template);
        let path = path.strip_prefix("/fhir").unwrap_or(path);
        let mut names: Vec<&str> = template.trim_matches('/').split('/').collect();
        // The AuditEvent routes spell their type out (they take precedence over the generic
        // ones): the same interactions as on any type.
        if names.first() == Some(&"AuditEvent") {
            names[0] = "{resource_type}";
        }
        let values: Vec<&str> = path.trim_matches('/').split('/').collect();
        let param = |name: &str| {
            names
                .iter()
                .position(|segment| *segment == name)
                .and_then(|index| values.get(index))
                .map(|value| (*value).to_owned())
        };
        let resource_type = param("{resource_type}");
        let id = param("{id}");
        let version = param("{version}").and_then(|version| version.parse().ok());
        let interaction = match (method, names.as_slice()) {
            (_, [""]) if method == "POST" => "transaction",
            (_, [""] | ["_search"]) => "search-system",
            (_, ["_history"]) => "history-system",
            ("GET", ["{resource_type}"]) | (_, ["{resource_type}", "_search"]) => "search-type",
            ("POST", ["{resource_type}"]) => "create",
            ("PUT", ["{resource_type}"]) => "update",
            ("PATCH", ["{resource_type}"]) => "patch",
            ("DELETE", ["{resource_type}"]) => "delete",
            (_, ["{resource_type}", "_history"]) => "history-type",
            ("GET", ["{resource_type}", "{id}"]) => "read",
            ("PUT", ["{resource_type}", "{id}"]) => "update",
            ("PATCH", ["{resource_type}", "{id}"]) => "patch",
            ("DELETE", ["{resource_type}", "{id}"]) => "delete",
            (_, ["{resource_type}", "{id}", "_history"]) => "history-instance",
            (_, ["{resource_type}", "{id}", "_history", "{version}"]) => "vread",
            (_, ["{compartment}", "{id}", "{resource_type}"]) => "search-type",
            _ => "operation",
        };
        let entity = match (&resource_type, &id) {
            (Some(resource_type), Some(id)) if !names.contains(&"{compartment}") => Some(Entity {
                resource_type: resource_type.clone(),
                id: id.clone(),
                version,
            }),
            _ => None,
        };
        // Patient/{id}, its history, $everything and compartment searches.
        let patient = id.clone().filter(|_| values.first() == Some(&"Patient"));
        Route {
            interaction,
            entity,
            patient,
        }
    }
}

/// The one Patient a search names with `patient=` or `subject=Patient/…`.
fn patient_param(query: &str) -> Option<String> {
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let name = name.split(':').next().unwrap_or_default();
        let id = match name {
            "patient" => value.strip_prefix("Patient/").unwrap_or(&value).to_owned(),
            "subject" => match value.strip_prefix("Patient/") {
                Some(id) => id.to_owned(),
                None => continue,
            },
            _ => continue,
        };
        if id.is_empty() || id.contains(',') || found.as_ref().is_some_and(|seen| *seen != id) {
            return None;
        }
        found = Some(id);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_event_routes_are_the_interactions_of_a_type() {
        let search = Route::of(Some("/fhir/AuditEvent"), "/fhir/AuditEvent", "GET");
        assert_eq!(search.interaction, "search-type");
        assert!(search.entity.is_none());
        let read = Route::of(Some("/fhir/AuditEvent/{id}"), "/fhir/AuditEvent/e1", "GET");
        assert_eq!(read.interaction, "read");
        assert_eq!(read.entity.unwrap().reference(), "AuditEvent/e1");
        let delete = Route::of(
            Some("/fhir/AuditEvent/{id}"),
            "/fhir/AuditEvent/e1",
            "DELETE",
        );
        assert_eq!(delete.interaction, "delete");
        let history = Route::of(
            Some("/fhir/AuditEvent/{id}/_history"),
            "/fhir/AuditEvent/e1/_history",
            "GET",
        );
        assert_eq!(history.interaction, "history-instance");
        let conditional_patch = Route::of(Some("/fhir/AuditEvent"), "/fhir/AuditEvent", "PATCH");
        assert_eq!(conditional_patch.interaction, "patch");
        assert_eq!(
            Route::of(Some("/fhir/AuditEvent"), "/fhir/AuditEvent", "POST").interaction,
            "create"
        );
    }

    #[test]
    fn routes_name_their_interaction_entity_and_patient() {
        let read = Route::of(
            Some("/fhir/{resource_type}/{id}"),
            "/fhir/Patient/p1",
            "GET",
        );
        assert_eq!(read.interaction, "read");
        assert_eq!(read.patient.as_deref(), Some("p1"));
        assert_eq!(read.entity.unwrap().reference(), "Patient/p1");
        let vread = Route::of(
            Some("/fhir/{resource_type}/{id}/_history/{version}"),
            "/fhir/Observation/o1/_history/2",
            "GET",
        );
        assert_eq!(vread.interaction, "vread");
        assert_eq!(vread.entity.unwrap().version, Some(2));
        assert_eq!(vread.patient, None);
        let everything = Route::of(
            Some("/fhir/Patient/{id}/$everything"),
            "/fhir/Patient/p2/$everything",
            "GET",
        );
        assert_eq!(everything.interaction, "operation");
        assert_eq!(everything.patient.as_deref(), Some("p2"));
        let compartment = Route::of(
            Some("/fhir/{compartment}/{id}/{resource_type}"),
            "/fhir/Patient/p3/Observation",
            "GET",
        );
        assert_eq!(compartment.interaction, "search-type");
        assert_eq!(compartment.patient.as_deref(), Some("p3"));
        assert!(compartment.entity.is_none());
        assert_eq!(
            Route::of(Some("/fhir/"), "/fhir/", "GET").interaction,
            "search-system"
        );
        assert_eq!(
            Route::of(Some("/fhir/"), "/fhir/", "POST").interaction,
            "transaction"
        );
        assert_eq!(
            Route::of(
                Some("/fhir/{resource_type}/_history"),
                "/fhir/Patient/_history",
                "GET"
            )
            .interaction,
            "history-type"
        );
    }

    #[test]
    fn a_search_names_its_patient_only_when_it_is_one() {
        assert_eq!(patient_param("patient=p1&code=x").as_deref(), Some("p1"));
        assert_eq!(patient_param("subject=Patient/p1").as_deref(), Some("p1"));
        assert_eq!(patient_param("subject=Group/g1"), None);
        assert_eq!(patient_param("patient=p1,p2"), None);
        assert_eq!(patient_param("patient=p1&patient=p2"), None);
        assert_eq!(patient_param("code=x"), None);
    }
}
