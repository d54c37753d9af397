//! Search index rows: their shapes, and replacing a resource's rows inside a write.

use sqlx::QueryBuilder;

use super::StoreResult;
use super::copy::CopyRows;
use super::write::{CHUNK_ROWS, Tx, dispatch_tx};

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub param: &'static str,
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
    pub type_system: Option<String>,
    pub type_code: Option<String>,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct StringRow {
    pub param: &'static str,
    pub normalized: String,
    pub exact: String,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DateRow {
    pub param: &'static str,
    pub start_us: i64,
    pub end_us: i64,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct ReferenceRow {
    pub param: &'static str,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub url: Option<String>,
    pub identifier_system: Option<String>,
    pub identifier_value: Option<String>,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct QuantityRow {
    pub param: &'static str,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub system: Option<String>,
    pub code: Option<String>,
    pub unit: Option<String>,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NumberRow {
    pub param: &'static str,
    pub value: f64,
    pub low: f64,
    pub high: f64,
    pub tuple_id: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct UriRow {
    pub param: &'static str,
    pub uri: String,
    pub tuple_id: Option<i64>,
}

/// A compartment (e.g. `Patient/123`) that holds the resource.
#[derive(Debug, Clone)]
pub struct CompartmentRow {
    pub compartment_type: &'static str,
    pub compartment_id: String,
}

/// Every index row of one resource version. `tuple_id` is set on the component rows of a
/// composite parameter only: rows with the same one are the components of one tuple.
#[derive(Debug, Clone, Default)]
pub struct IndexRows {
    pub tokens: Vec<TokenRow>,
    pub strings: Vec<StringRow>,
    pub dates: Vec<DateRow>,
    pub references: Vec<ReferenceRow>,
    pub quantities: Vec<QuantityRow>,
    pub numbers: Vec<NumberRow>,
    pub uris: Vec<UriRow>,
    pub compartments: Vec<CompartmentRow>,
}

impl IndexRows {
    /// The one Patient whose compartment holds the resource; `None` when none or several.
    pub fn sole_patient(&self) -> Option<&str> {
        let mut patients = self
            .compartments
            .iter()
            .filter(|row| row.compartment_type == "Patient");
        match (patients.next(), patients.next()) {
            (Some(only), None) => Some(&only.compartment_id),
            _ => None,
        }
    }
}

/// A resource's index rows, as handed to [`Tx::replace_index_rows`].
#[derive(Debug, Clone, Copy)]
pub struct Indexed<'a> {
    pub resource_type: &'a str,
    pub id: &'a str,
    pub index: &'a IndexRows,
    /// False for a resource written for the first time: there is nothing to delete.
    pub may_have_rows: bool,
}

/// Tables keyed by `(resource_type, resource_id)` that hold a resource's index rows.
const OWNED_TABLES: [&str; 7] = [
    "search_token",
    "search_string",
    "search_date",
    "search_reference",
    "search_quantity",
    "search_number",
    "search_uri",
];

/// Inserts `(write, row)` pairs into `$table`: the owner columns, then each `column =>
/// value` of `row`. PostgreSQL gets one binary `COPY` (see `copy`); SQLite gets multi-row
/// VALUES in chunks.
macro_rules! insert_rows {
    ($tx:expr, $table:literal, $rows:expr, |$row:ident| [$($column:literal => $value:expr),+ $(,)?]) => {{
        let rows = $rows;
        if !rows.is_empty() {
            let columns = [$($column),+];
            match $tx {
                Tx::Postgres(conn) => {
                    let mut copy = CopyRows::new();
                    for (owner, $row) in &rows {
                        copy.row(columns.len() + 2);
                        copy.put(owner.resource_type);
                        copy.put(owner.id);
                        $(copy.put($value);)+
                    }
                    // Only fixed table and column names: every value travels as data.
                    copy.send(
                        &mut **conn,
                        &format!(
                            "COPY {} (resource_type, resource_id, {}) FROM STDIN (FORMAT binary)",
                            $table,
                            columns.join(", ")
                        ),
                    )
                    .await?;
                }
                Tx::Sqlite(conn) => {
                    for chunk in rows.chunks(CHUNK_ROWS) {
                        let mut sql = QueryBuilder::new(format!(
                            "INSERT INTO {} (resource_type, resource_id, {}) ",
                            $table,
                            columns.join(", ")
                        ));
                        sql.push_values(chunk, |mut builder, (owner, $row)| {
                            builder.push_bind(owner.resource_type).push_bind(owner.id);
                            $(builder.push_bind($value);)+
                        });
                        sql.build().execute(&mut **conn).await?;
                    }
                }
            }
        }
    }};
}

/// Pairs each row of one kind with the resource that owns it.
fn owned<'a, T>(
    resources: &'a [Indexed<'a>],
    rows: impl Fn(&'a IndexRows) -> &'a [T],
) -> Vec<(&'a Indexed<'a>, &'a T)> {
    resources
        .iter()
        .flat_map(|owner| rows(owner.index).iter().map(move |row| (owner, row)))
        .collect()
}

impl Tx {
    /// Replaces the index rows of `resources` (a tombstone keeps none).
    pub async fn replace_index_rows(&mut self, resources: &[Indexed<'_>]) -> StoreResult<()> {
        let replaced: Vec<&Indexed> = resources
            .iter()
            .filter(|owner| owner.may_have_rows)
            .collect();
        if !replaced.is_empty() {
            self.delete_index_rows(&replaced).await?;
        }
        insert_rows!(self, "search_token", owned(resources, |index| &index.tokens), |token| [
            "param" => token.param,
            "system" => token.system.as_deref(),
            "code" => token.code.as_deref(),
            "display" => token.display.as_deref(),
            "type_system" => token.type_system.as_deref(),
            "type_code" => token.type_code.as_deref(),
            "tuple_id" => token.tuple_id,
        ]);
        insert_rows!(self, "search_string", owned(resources, |index| &index.strings), |string| [
            "param" => string.param,
            "normalized" => string.normalized.as_str(),
            "exact" => string.exact.as_str(),
            "tuple_id" => string.tuple_id,
        ]);
        insert_rows!(self, "search_date", owned(resources, |index| &index.dates), |date| [
            "param" => date.param,
            "start_us" => date.start_us,
            "end_us" => date.end_us,
            "tuple_id" => date.tuple_id,
        ]);
        insert_rows!(self, "search_reference", owned(resources, |index| &index.references), |reference| [
            "param" => reference.param,
            "target_type" => reference.target_type.as_deref(),
            "target_id" => reference.target_id.as_deref(),
            "url" => reference.url.as_deref(),
            "identifier_system" => reference.identifier_system.as_deref(),
            "identifier_value" => reference.identifier_value.as_deref(),
            "tuple_id" => reference.tuple_id,
        ]);
        insert_rows!(self, "search_quantity", owned(resources, |index| &index.quantities), |quantity| [
            "param" => quantity.param,
            "value" => quantity.value,
            "low" => quantity.low,
            "high" => quantity.high,
            "system" => quantity.system.as_deref(),
            "code" => quantity.code.as_deref(),
            "unit" => quantity.unit.as_deref(),
            "tuple_id" => quantity.tuple_id,
        ]);
        insert_rows!(self, "search_number", owned(resources, |index| &index.numbers), |number| [
            "param" => number.param,
            "value" => number.value,
            "low" => number.low,
            "high" => number.high,
            "tuple_id" => number.tuple_id,
        ]);
        insert_rows!(self, "search_uri", owned(resources, |index| &index.uris), |uri| [
            "param" => uri.param,
            "uri" => uri.uri.as_str(),
            "tuple_id" => uri.tuple_id,
        ]);
        insert_rows!(self, "resource_compartment", owned(resources, |index| &index.compartments), |compartment| [
            "compartment_type" => compartment.compartment_type,
            "compartment_id" => compartment.compartment_id.as_str(),
        ]);
        Ok(())
    }

    /// Sets each resource's Patient (`resources.patient`, the one Patient whose compartment
    /// holds it) from its index rows: a reindex changes it with the rows. (A write sets it
    /// with the version.)
    pub async fn set_patients(&mut self, resources: &[Indexed<'_>]) -> StoreResult<()> {
        const SQL: &str = "UPDATE resources SET patient = $1 WHERE resource_type = $2 AND id = $3";
        for owner in resources {
            dispatch_tx!(self, tx => {
                sqlx::query(SQL)
                    .bind(owner.index.sole_patient())
                    .bind(owner.resource_type)
                    .bind(owner.id)
                    .execute(&mut **tx)
                    .await?;
            });
        }
        Ok(())
    }

    async fn delete_index_rows(&mut self, resources: &[&Indexed<'_>]) -> StoreResult<()> {
        for table in OWNED_TABLES {
            self.delete_owned(
                &format!("DELETE FROM {table} WHERE (resource_type, resource_id) IN ("),
                resources,
            )
            .await?;
        }
        self.delete_owned(
            "DELETE FROM resource_compartment WHERE (resource_type, resource_id) IN (",
            resources,
        )
        .await
    }

    /// Runs `prefix` followed by the `(type, id)` pairs of `resources`.
    async fn delete_owned(&mut self, prefix: &str, resources: &[&Indexed<'_>]) -> StoreResult<()> {
        // `prefix` is one of the fixed statements above, never client text.
        match self {
            Tx::Postgres(conn) => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "{prefix}SELECT * FROM UNNEST($1::text[], $2::text[]))"
                )))
                .bind(
                    resources
                        .iter()
                        .map(|owner| owner.resource_type)
                        .collect::<Vec<_>>(),
                )
                .bind(resources.iter().map(|owner| owner.id).collect::<Vec<_>>())
                .execute(&mut **conn)
                .await?;
            }
            Tx::Sqlite(conn) => {
                let mut sql = QueryBuilder::new(format!("{prefix}VALUES "));
                let mut values = sql.separated(", ");
                for owner in resources {
                    values.push("(");
                    values.push_bind_unseparated(owner.resource_type);
                    values.push_unseparated(", ");
                    values.push_bind_unseparated(owner.id);
                    values.push_unseparated(")");
                }
                sql.push(")");
                sql.build().execute(&mut **conn).await?;
            }
        }
        Ok(())
    }
}
