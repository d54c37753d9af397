//! Pages of one resource type for a Bulk Data export: in id order, after the last id of the
//! previous page, so an export of any size holds one page in memory at a time.

use super::criteria::push_criterion;
use super::{AccessFilter, Bind, Plan, Sql, push_access};
use crate::search::query::Criterion;
use crate::store::{Store, StoreResult, StoredResource};

/// The columns of a [`StoredResource`], for a condition on `r.deleted` to follow.
const SELECT_RESOURCES: &str = "SELECT r.resource_type, r.id, r.version_id, r.last_updated, \
                                r.body FROM resources r WHERE r.deleted = ";

/// Which resources of the type an export takes.
#[derive(Debug, Clone)]
pub enum Population<'a> {
    /// Every resource of the type.
    All,
    /// Those in some Patient's compartment.
    AnyPatient,
    /// Those in one of these Patients' compartments.
    Patients(&'a [String]),
}

/// One page of an export scan.
pub struct ExportScan<'a> {
    pub resource_type: &'a str,
    pub base: &'a str,
    pub after_id: Option<&'a str>,
    pub limit: i64,
    /// `meta.lastUpdated` at or after this (microseconds).
    pub since: Option<i64>,
    /// `meta.lastUpdated` at or before this (microseconds).
    pub until: Option<i64>,
    pub population: Population<'a>,
    /// `_typeFilter` queries: a resource matches one of them (empty: no filter).
    pub filters: &'a [Vec<Criterion>],
    pub access: Option<&'a AccessFilter>,
    /// Also the tombstones of resources deleted after this instant (microseconds): they
    /// still existed then. Tombstones have no index rows, so a population or filter drops them.
    pub deleted_after: Option<i64>,
}

impl Store {
    /// The next page of live resources of the scan.
    pub async fn export_page(&self, scan: &ExportScan<'_>) -> StoreResult<Vec<StoredResource>> {
        let mut sql = Sql::default();
        match scan.deleted_after {
            Some(at) => {
                sql.push(
                    "SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body \
                          FROM resources r WHERE (r.deleted = ",
                )
                .bind(Bind::Bool(false))
                .push(" OR r.last_updated > ")
                .int(at)
                .push(")");
            }
            None => {
                sql.push(SELECT_RESOURCES).bind(Bind::Bool(false));
            }
        }
        push_scope(&mut sql, scan);
        push_population(&mut sql, &scan.population, "r");
        if !scan.filters.is_empty() {
            sql.push(" AND (");
            for (index, criteria) in scan.filters.iter().enumerate() {
                if index > 0 {
                    sql.push(" OR ");
                }
                sql.push("(1 = 1");
                for criterion in criteria {
                    sql.push(" AND ");
                    push_criterion(&mut sql, criterion, scan.base, scan.access);
                }
                sql.push(")");
            }
            sql.push(")");
        }
        self.fetch_export_page(sql, scan).await
    }

    /// The next page of the Provenance resources whose `target` is one of the resources
    /// the scan's population holds of `targets` (types) in its time window: all of them, or
    /// with `latest` only the most recent one per target. The window and population apply
    /// to the targets; the access filter to the Provenance.
    pub async fn export_provenance_page(
        &self,
        scan: &ExportScan<'_>,
        targets: &[String],
        latest: bool,
    ) -> StoreResult<Vec<StoredResource>> {
        let mut sql = Sql::default();
        sql.push(SELECT_RESOURCES)
            .bind(Bind::Bool(false))
            .push(" AND r.resource_type = ")
            .text("Provenance");
        if let Some(after) = scan.after_id {
            sql.push(" AND r.id > ").text(after);
        }
        sql.push(" AND r.id IN (SELECT ");
        if latest {
            sql.push(
                "ranked.resource_id FROM (SELECT sr.resource_id, ROW_NUMBER() OVER \
                 (PARTITION BY sr.target_type, sr.target_id \
                 ORDER BY p.last_updated DESC, p.id DESC) AS position ",
            );
        } else {
            sql.push("sr.resource_id ");
        }
        sql.push(
            "FROM search_reference sr \
             JOIN resources t ON t.resource_type = sr.target_type AND t.id = sr.target_id ",
        );
        if latest {
            sql.push(
                "JOIN resources p ON p.resource_type = sr.resource_type \
                 AND p.id = sr.resource_id AND p.deleted = ",
            )
            .bind(Bind::Bool(false));
        }
        sql.push(" WHERE sr.resource_type = ")
            .text("Provenance")
            .push(" AND sr.param = ")
            .text("target")
            .push(" AND t.deleted = ")
            .bind(Bind::Bool(false))
            .push(" AND t.resource_type IN (");
        push_list(&mut sql, targets);
        sql.push(")");
        push_window(&mut sql, scan, "t");
        push_population(&mut sql, &scan.population, "t");
        if latest {
            sql.push(") ranked WHERE ranked.position = 1");
        }
        sql.push(")");
        self.fetch_export_page(sql, scan).await
    }

    /// The scan's access filter, then a page in id order.
    async fn fetch_export_page(
        &self,
        mut sql: Sql,
        scan: &ExportScan<'_>,
    ) -> StoreResult<Vec<StoredResource>> {
        if let Some(access) = scan.access {
            sql.push(" AND ");
            push_access(&mut sql, access, scan.base, &[]);
        }
        sql.push(" ORDER BY r.id LIMIT ").int(scan.limit);
        self.fetch(sql, Plan::PerRun).await
    }

    /// The next page of deletions (tombstones) of the scan's type in its time window.
    pub async fn export_deleted_page(
        &self,
        scan: &ExportScan<'_>,
    ) -> StoreResult<Vec<StoredResource>> {
        let mut sql = Sql::default();
        sql.push(SELECT_RESOURCES).bind(Bind::Bool(true));
        push_scope(&mut sql, scan);
        self.fetch_export_page(sql, scan).await
    }
}

/// Type, position and time window.
fn push_scope(sql: &mut Sql, scan: &ExportScan<'_>) {
    sql.push(" AND r.resource_type = ").text(scan.resource_type);
    if let Some(after) = scan.after_id {
        sql.push(" AND r.id > ").text(after);
    }
    push_window(sql, scan, "r");
}

/// `meta.lastUpdated` of the resources under `alias` within the scan's window. `alias` is
/// one of this module's fixed table aliases.
fn push_window(sql: &mut Sql, scan: &ExportScan<'_>, alias: &str) {
    if let Some(since) = scan.since {
        sql.push(&format!(" AND {alias}.last_updated >= "))
            .int(since);
    }
    if let Some(until) = scan.until {
        sql.push(&format!(" AND {alias}.last_updated <= "))
            .int(until);
    }
}

/// The resources under `alias` that the population holds.
fn push_population(sql: &mut Sql, population: &Population<'_>, alias: &str) {
    let in_compartment = format!(
        " AND {alias}.id IN (SELECT resource_id FROM resource_compartment \
         WHERE resource_type = {alias}.resource_type AND compartment_type = "
    );
    match population {
        Population::All => {}
        Population::AnyPatient => {
            sql.push(&in_compartment).text("Patient").push(")");
        }
        Population::Patients(patients) => {
            sql.push(&in_compartment)
                .text("Patient")
                .push(" AND compartment_id IN (");
            push_list(sql, patients);
            sql.push("))");
        }
    }
}

fn push_list(sql: &mut Sql, values: &[String]) {
    if values.is_empty() {
        sql.push("NULL");
    }
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.text(value.as_str());
    }
}

impl Store {
    /// The types of the resources in a Patient's compartment.
    pub async fn patient_compartment_types(&self, patient: &str) -> StoreResult<Vec<String>> {
        crate::store::dispatch!(self, pool => {
            let rows = sqlx::query(
                "SELECT DISTINCT resource_type FROM resource_compartment \
                 WHERE compartment_type = 'Patient' AND compartment_id = $1",
            )
            .bind(patient)
            .fetch_all(pool)
            .await?;
            rows.iter()
                .map(|row| sqlx::Row::try_get::<String, _>(row, 0))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(Into::into)
        })
    }
}
