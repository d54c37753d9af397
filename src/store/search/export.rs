//! Pages of one resource type for a Bulk Data export: in id order, after the last id of the
//! previous page, so an export of any size holds one page in memory at a time.

use super::criteria::push_criterion;
use super::{AccessFilter, Bind, Plan, Sql, push_access};
use crate::search::query::Criterion;
use crate::store::{Store, StoreResult, StoredResource};

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
}

impl Store {
    /// The next page of live resources of the scan.
    pub async fn export_page(&self, scan: &ExportScan<'_>) -> StoreResult<Vec<StoredResource>> {
        let mut sql = Sql::default();
        sql.push("SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body FROM resources r WHERE r.deleted = ")
            .bind(Bind::Bool(false));
        push_scope(&mut sql, scan);
        match scan.population {
            Population::All => {}
            Population::AnyPatient => {
                sql.push(
                    " AND r.id IN (SELECT resource_id FROM resource_compartment \
                     WHERE compartment_type = ",
                )
                .text("Patient")
                .push(" AND resource_type = r.resource_type)");
            }
            Population::Patients(patients) => {
                sql.push(
                    " AND r.id IN (SELECT resource_id FROM resource_compartment \
                     WHERE compartment_type = ",
                )
                .text("Patient")
                .push(" AND resource_type = r.resource_type AND compartment_id IN (");
                push_list(&mut sql, patients);
                sql.push("))");
            }
        }
        if !scan.filters.is_empty() {
            sql.push(" AND (");
            for (index, criteria) in scan.filters.iter().enumerate() {
                if index > 0 {
                    sql.push(" OR ");
                }
                sql.push("(1 = 1");
                for criterion in criteria {
                    sql.push(" AND ");
                    push_criterion(&mut sql, criterion, scan.base);
                }
                sql.push(")");
            }
            sql.push(")");
        }
        if let Some(access) = scan.access {
            sql.push(" AND ");
            push_access(&mut sql, access, scan.base);
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
        sql.push("SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body FROM resources r WHERE r.deleted = ")
            .bind(Bind::Bool(true));
        push_scope(&mut sql, scan);
        sql.push(" ORDER BY r.id LIMIT ").int(scan.limit);
        self.fetch(sql, Plan::PerRun).await
    }
}

/// Type, position and time window.
fn push_scope(sql: &mut Sql, scan: &ExportScan<'_>) {
    sql.push(" AND r.resource_type = ").text(scan.resource_type);
    if let Some(after) = scan.after_id {
        sql.push(" AND r.id > ").text(after);
    }
    if let Some(since) = scan.since {
        sql.push(" AND r.last_updated >= ").int(since);
    }
    if let Some(until) = scan.until {
        sql.push(" AND r.last_updated <= ").int(until);
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
