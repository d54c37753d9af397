//! The search cases of `kiln bench --search` on small, skewed and fresh data: the bundled
//! sample measured right after `load_if_absent` (with the statistics it gathers, as `kiln
//! serve --load-sample-data` leaves them), and one Patient holding [`GROWN`] Observations,
//! most of them `category=laboratory`, searched by date with `_total=accurate`.

use std::io::{BufRead, BufReader, Cursor};

use serde_json::json;

use super::BenchResult;
use super::dataset::PatientKey;
use super::search::Kind;
use crate::import::files::Kind as FileKind;
use crate::store::Store;

/// Observations of the grown Patient.
pub const GROWN: usize = 20_000;

/// Patient 85 of the sample (US Core reference patient): its labs and medication orders.
pub const FRESH_KINDS: [Kind; 2] = [
    Kind {
        name: "fresh sample: Observation?patient=85&category=laboratory",
        resource_type: "Observation",
        params: |_| super::search::pairs(&[("patient", "85"), ("category", "laboratory")]),
    },
    Kind {
        name: "fresh sample: MedicationRequest?patient=85&intent=order",
        resource_type: "MedicationRequest",
        params: |_| super::search::pairs(&[("patient", "85"), ("intent", "order")]),
    },
];

/// The grown Patient's searches (its id is the `PatientKey` given): its laboratory
/// Observations since 2015, without a total and with each kind of total.
pub const GROWN_KINDS: [Kind; 3] = [
    Kind {
        name: "20k Observations: Observation?patient=G&category=laboratory&date=ge2015-01-01",
        resource_type: "Observation",
        params: |patient| grown_labs(patient, None),
    },
    Kind {
        name: "20k Observations: …&_total=accurate",
        resource_type: "Observation",
        params: |patient| grown_labs(patient, Some("accurate")),
    },
    Kind {
        name: "20k Observations: …&_total=estimate",
        resource_type: "Observation",
        params: |patient| grown_labs(patient, Some("estimate")),
    },
];

fn grown_labs(patient: &PatientKey, total: Option<&str>) -> Vec<(String, String)> {
    let mut params = vec![
        ("patient", patient.id.as_str()),
        ("category", "laboratory"),
        ("date", "ge2015-01-01"),
    ];
    params.extend(total.map(|total| ("_total", total)));
    super::search::pairs(&params)
}

/// Loads the bundled sample into `store` (migrated) as `kiln serve --load-sample-data` does.
pub async fn load_sample(store: &Store) -> BenchResult<()> {
    crate::sample::load_if_absent(store, None).await
}

/// Imports [`GROWN`] Observations of `patient`, nine in ten `laboratory`, one a day back
/// from 2024: as if one Patient's record had grown for decades.
pub async fn grow(store: &Store, patient: &PatientKey) -> BenchResult<()> {
    let mut lines = String::new();
    for index in 0..GROWN {
        let category = if index % 10 == 0 {
            "vital-signs"
        } else {
            "laboratory"
        };
        let day = time::Date::from_calendar_date(2024, time::Month::December, 31)?
            - time::Duration::days((index % 9_000) as i64);
        let observation = json!({
            "resourceType": "Observation",
            "id": format!("grown-{}-{index}", patient.id),
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": category
            }]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": format!("{}-{}", 1000 + index % 300, index % 10)}]},
            "subject": {"reference": format!("Patient/{}", patient.id)},
            "effectiveDateTime": day.to_string(),
            "valueQuantity": {"value": index % 200, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}
        });
        lines.push_str(&observation.to_string());
        lines.push('\n');
    }
    let reader: Box<dyn BufRead> = Box::new(BufReader::new(Cursor::new(lines.into_bytes())));
    let report =
        crate::import::run_sources(store, vec![("grown patient", FileKind::Ndjson, reader)])
            .await?;
    if report.failed > 0 {
        return Err(format!("{} grown Observations failed to load", report.failed).into());
    }
    Ok(())
}
