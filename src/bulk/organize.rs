//! Output organized by Patient (`organizeOutputBy=Patient`): for each Patient a block of a
//! header (a Parameters resource naming it), the Patient and the resources of its
//! compartment. A block never spans two files.

use serde_json::json;

use super::output::{Kind, Part, RunResult, Sink};
use super::run::{Going, Run, type_filters};
use crate::engine::export::{self, ExportAccess};
use crate::store::{ExportScan, Population};

/// Patients per page of the walk; the lease is renewed after each page.
const PATIENTS_PER_PAGE: i64 = 100;

pub async fn blocks(run: &Run<'_>, sink: &mut Sink<'_>) -> RunResult<Going> {
    let Some(mut part) = sink.part(Kind::Output, "Patient", "output") else {
        return Ok(true);
    };
    let mut after = part.resume_after.clone();
    loop {
        let patients = patient_page(run, after.as_deref()).await?;
        let full = patients.len() as i64 >= PATIENTS_PER_PAGE;
        for patient in &patients {
            block(run, sink, &mut part, patient).await?;
        }
        if let Some(last) = patients.last() {
            after = Some(last.clone());
        }
        if !run.renew("exporting Patient blocks").await? {
            return Ok(false);
        }
        if !full {
            break;
        }
    }
    sink.finish(part).await?;
    Ok(true)
}

/// The next Patient ids of the population, in id order.
async fn patient_page(run: &Run<'_>, after: Option<&str>) -> RunResult<Vec<String>> {
    if let Some(patients) = &run.spec.patients {
        let mut ids: Vec<String> = patients
            .iter()
            .filter(|id| after.is_none_or(|after| id.as_str() > after))
            .cloned()
            .collect();
        ids.sort();
        ids.truncate(PATIENTS_PER_PAGE as usize);
        return Ok(ids);
    }
    let scan = ExportScan {
        resource_type: "Patient",
        base: &run.base,
        after_id: after,
        limit: PATIENTS_PER_PAGE,
        since: None,
        until: None,
        population: Population::All,
        filters: &[],
        access: None,
        deleted_after: None,
    };
    let page = run.reads.export_page(&scan).await?;
    Ok(page.into_iter().map(|stored| stored.id).collect())
}

/// One Patient's block: the exported types its compartment holds, the Patient first.
async fn block(
    run: &Run<'_>,
    sink: &mut Sink<'_>,
    part: &mut Part,
    patient: &str,
) -> RunResult<()> {
    let present = run.reads.patient_compartment_types(patient).await?;
    let mut types: Vec<String> = run
        .spec
        .types
        .iter()
        .filter(|t| present.contains(t))
        .cloned()
        .collect();
    types.sort_by_key(|t| t != "Patient");
    let owner = [patient.to_owned()];
    let mut header_written = false;
    for resource_type in &types {
        let Some(access) = ExportAccess::of(run.access(), resource_type) else {
            continue;
        };
        let filters = type_filters(&run.spec, resource_type)?;
        let mut after: Option<String> = None;
        loop {
            let scan = ExportScan {
                resource_type,
                base: &run.base,
                after_id: after.as_deref(),
                limit: run.batch(),
                since: run.spec.params.since,
                until: run.spec.params.until,
                population: Population::Patients(&owner),
                filters: &filters,
                access: None,
                deleted_after: None,
            };
            let page = export::resource_page(&run.reads, &access, scan).await?;
            let full = page.len() as i64 >= run.batch();
            if let Some(last) = page.last() {
                after = Some(last.id.clone());
            }
            for stored in page {
                let Some(stored) = run.as_of_transaction(stored).await? else {
                    continue;
                };
                if !header_written {
                    sink.write(part, patient, &header(patient)?).await?;
                    header_written = true;
                }
                sink.write(part, patient, &run.resource_line(stored))
                    .await?;
                run.count_exported(1);
            }
            if !full {
                break;
            }
        }
    }
    Ok(())
}

/// The line that opens a Patient's block.
fn header(patient: &str) -> RunResult<Vec<u8>> {
    let parameters = json!({
        "resourceType": "Parameters",
        "parameter": [{
            "name": "header",
            "valueReference": {"reference": format!("Patient/{patient}")},
        }],
    });
    let mut line = serde_json::to_vec(&parameters)?;
    line.push(b'\n');
    Ok(line)
}
