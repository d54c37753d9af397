//! Stamping server-owned metadata onto a resource before it is stored.

use serde_json::{Map, Value};

use super::instant::to_fhir_instant;

/// Sets `id`, `meta.versionId` and `meta.lastUpdated`: the resource as it is stored and served.
/// Keys are ordered `resourceType`, `id`, `meta`, then the client's elements in their order;
/// the rest of `meta` (profile, tag, security, source) is kept.
pub fn stamp(resource: Map<String, Value>, id: &str, version_id: i64, last_updated: i64) -> Value {
    let mut resource = resource;
    let resource_type = resource.shift_remove("resourceType").unwrap_or(Value::Null);
    resource.shift_remove("id");
    let mut meta = match resource.shift_remove("meta") {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    meta.shift_remove("versionId");
    meta.shift_remove("lastUpdated");
    let mut stamped_meta = Map::with_capacity(meta.len() + 2);
    stamped_meta.insert("versionId".into(), Value::String(version_id.to_string()));
    stamped_meta.insert(
        "lastUpdated".into(),
        Value::String(to_fhir_instant(last_updated)),
    );
    stamped_meta.extend(meta);

    let mut out = Map::with_capacity(resource.len() + 3);
    out.insert("resourceType".into(), resource_type);
    out.insert("id".into(), Value::String(id.to_string()));
    out.insert("meta".into(), Value::Object(stamped_meta));
    out.extend(resource);
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stamps_meta_first_and_keeps_profile() {
        let resource = json!({
            "gender": "female",
            "meta": {"profile": ["http://example.org/p"], "versionId": "99"},
            "resourceType": "Patient",
            "id": "old",
        });
        let Value::Object(map) = resource else {
            unreachable!()
        };
        let stamped = stamp(map, "p1", 3, 1_714_564_800_000_000);
        assert_eq!(
            stamped.to_string(),
            r#"{"resourceType":"Patient","id":"p1","meta":{"versionId":"3","lastUpdated":"2024-05-01T12:00:00Z","profile":["http://example.org/p"]},"gender":"female"}"#
        );
    }
}
