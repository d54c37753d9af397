//! The bundled sample data: the Synthea `small` set (10 patients) and the US Core reference
//! patients 85 and 355, built by `tools/make_sample_data.py` and embedded in the binary.

use std::io::{BufRead, BufReader};

use flate2::read::GzDecoder;

use crate::import::files::Kind;
use crate::import::{audit_event, run_sources};
use crate::store::Store;

const SOURCES: [(&str, Kind, &[u8]); 4] = [
    (
        "sample-data/synthea-small.ndjson",
        Kind::Ndjson,
        include_bytes!("../sample-data/synthea-small.ndjson.gz"),
    ),
    (
        "sample-data/uscore_bundle_patient_85.json",
        Kind::Json,
        include_bytes!("../sample-data/uscore_bundle_patient_85.json.gz"),
    ),
    (
        "sample-data/uscore_bundle_patient_355.json",
        Kind::Json,
        include_bytes!("../sample-data/uscore_bundle_patient_355.json.gz"),
    ),
    (
        "sample-data/uscore_group_1a.json",
        Kind::Json,
        include_bytes!("../sample-data/uscore_group_1a.json.gz"),
    ),
];

/// The Synthea part of the sample as ndjson lines: `kiln bench` clones it into larger sets.
pub fn synthea_ndjson() -> impl BufRead {
    BufReader::new(GzDecoder::new(SOURCES[0].2))
}

/// The source the audit log names for the sample's load.
const SAMPLE_SOURCE: &str = "bundled sample data";

/// A patient of the sample: when present, the sample was loaded before.
const MARKER_PATIENT: &str = "2be9b668-847a-4437-b33a-bdc38c665e08";

/// Loads the sample unless it is there. `audit`: the FHIR base of the server whose audit log
/// records the load (none when auditing is off); the event is appended right after the load.
pub async fn load_if_absent(
    store: &Store,
    audit: Option<&str>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if store.read("Patient", MARKER_PATIENT).await?.is_some() {
        tracing::info!("sample data already loaded");
        return Ok(());
    }
    tracing::info!("loading the bundled sample data");
    let sources = SOURCES
        .iter()
        .map(|(name, kind, bytes)| {
            let reader: Box<dyn BufRead> = Box::new(BufReader::new(GzDecoder::new(*bytes)));
            (*name, *kind, reader)
        })
        .collect();
    let result = run_sources(store, sources).await;
    if let Some(base) = audit {
        let event = audit_event(SAMPLE_SOURCE, &result);
        store.append_audit(&[event.row(base)]).await?;
    }
    let report = result?;
    if report.failed > 0 {
        return Err(format!("{} sample records failed to load", report.failed).into());
    }
    // The first searches come right after: plan them for the loaded data, not an empty one.
    store.analyze().await?;
    Ok(())
}
