//! Keyset paging: a page starts right after (or, walking back, right before) the row its
//! cursor names, by that row's `_sort` values and `(type, id)`, so writes between page
//! fetches neither skip nor repeat the rows that stay.

use super::criteria::table;
use super::plan::{Bound, Filter};
use super::sql::{Bind, Sql};
use super::{COLUMNS, Cursor};
use crate::search::ParamType;
use crate::search::query::SortKey;

/// One `_sort` value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    Text(String),
    Int(i64),
    Float(f64),
}

/// Which kind of value a `_sort` key has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortType {
    Text,
    Int,
    Float,
}

/// A row's place in a search's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyset {
    /// One per `_sort` key, in order; `None`: the row has no value for that key.
    pub values: Vec<Option<SortValue>>,
    pub resource_type: String,
    pub id: String,
}

impl SortValue {
    pub fn sort_type(&self) -> SortType {
        match self {
            SortValue::Text(_) => SortType::Text,
            SortValue::Int(_) => SortType::Int,
            SortValue::Float(_) => SortType::Float,
        }
    }

    fn bind(&self) -> Bind {
        match self {
            SortValue::Text(value) => Bind::Text(value.clone()),
            SortValue::Int(value) => Bind::Int(*value),
            SortValue::Float(value) => Bind::Float(*value),
        }
    }
}

/// The kind of value `key` sorts by.
pub fn sort_type(key: &SortKey) -> SortType {
    match (key.param, key.kind) {
        ("_id", _) => SortType::Text,
        ("_lastUpdated", _) | (_, ParamType::Date) => SortType::Int,
        (_, ParamType::Quantity | ParamType::Number) => SortType::Float,
        _ => SortType::Text,
    }
}

/// A column of the order: the `_sort` keys, then `(type, id)`.
struct Column {
    name: String,
    descending: bool,
    /// Rows without a value sort last (first when walking back).
    nullable: bool,
}

/// One page of `filter`'s matches after (or before) `cursor`, at most `limit`: the five
/// resource columns, then each `_sort` value.
pub fn page_sql(keys: &[SortKey], filter: Filter, cursor: &Cursor, limit: i64) -> Sql {
    let mut sql = Sql::default();
    let mut columns = Vec::new();
    if keys.is_empty() {
        // The default order reads the driver's rows (or the primary key) in order and
        // stops at the limit; a cursor of the driver's type bounds its rows too.
        let bound = match (cursor, &filter.driver) {
            (Cursor::After(keyset) | Cursor::Before(keyset), Some(driver))
                if keyset.resource_type == driver.resource_type =>
            {
                Some(Bound {
                    id: keyset.id.clone(),
                    backwards: matches!(cursor, Cursor::Before(_)),
                })
            }
            _ => None,
        };
        let id_column = filter.id_column();
        sql.push("SELECT ")
            .push(COLUMNS)
            .push(" ")
            .append(filter.source(bound.as_ref()));
        columns.extend(tiebreak("r.resource_type", id_column));
        push_cursor(&mut sql, " AND ", &columns, cursor);
    } else {
        push_sorted_matches(&mut sql, keys, filter);
        columns.extend(keys.iter().enumerate().map(|(index, key)| Column {
            name: format!("m.k{index}"),
            descending: key.descending,
            nullable: !matches!(key.param, "_id" | "_lastUpdated"),
        }));
        columns.extend(tiebreak("m.resource_type", "m.id"));
        push_cursor(&mut sql, " WHERE ", &columns, cursor);
    }
    push_order(&mut sql, &columns, matches!(cursor, Cursor::Before(_)));
    sql.push(" LIMIT ").int(limit);
    sql
}

/// The last columns of every order: the resource's type, then its id.
fn tiebreak(resource_type: &str, id: &str) -> [Column; 2] {
    [resource_type, id].map(|column| Column {
        name: column.to_owned(),
        descending: false,
        nullable: false,
    })
}

/// `m`: the matches with each sort value computed once, as `k0`, `k1`, ….
fn push_sorted_matches(sql: &mut Sql, keys: &[SortKey], filter: Filter) {
    sql.push("SELECT m.resource_type, m.id, m.version_id, m.last_updated, m.body");
    for index in 0..keys.len() {
        sql.push(&format!(", m.k{index}"));
    }
    sql.push(" FROM (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body");
    for (index, key) in keys.iter().enumerate() {
        sql.push(", ");
        push_sort_value(sql, key);
        sql.push(&format!(" AS k{index}"));
    }
    sql.push(" ").append(filter.source(None));
    // A LIMIT keeps both engines from merging `m` into the outer query, which would copy
    // each sort value's subquery into every condition that uses it.
    sql.push(" LIMIT 9223372036854775807) m");
}

/// The value `key` sorts `r` by: its smallest ascending, its largest descending.
fn push_sort_value(sql: &mut Sql, key: &SortKey) {
    match key.param {
        "_id" => {
            sql.push("r.id");
        }
        "_lastUpdated" => {
            sql.push("r.last_updated");
        }
        param => {
            let aggregate = if key.descending { "MAX" } else { "MIN" };
            sql.push("(SELECT ")
                .push(aggregate)
                .push("(s.")
                .push(sort_column(key))
                .push(") FROM ")
                .push(table(key.kind))
                .push(" s WHERE s.resource_type = r.resource_type AND s.resource_id = r.id AND s.param = ")
                .text(param)
                .push(")");
        }
    }
}

fn sort_column(key: &SortKey) -> &'static str {
    match key.kind {
        ParamType::String => "normalized",
        ParamType::Token | ParamType::Composite => "code",
        ParamType::Date if key.descending => "end_us",
        ParamType::Date => "start_us",
        ParamType::Reference => "target_id",
        ParamType::Quantity | ParamType::Number => "value",
        ParamType::Uri => "uri",
    }
}

/// Only rows beyond the cursor's row: an OR over the columns, each disjunct equal to the
/// row on the columns before and beyond it on its own.
fn push_cursor(sql: &mut Sql, joiner: &str, columns: &[Column], cursor: &Cursor) {
    let (keyset, backwards) = match cursor {
        Cursor::Start => return,
        Cursor::After(keyset) => (keyset, false),
        Cursor::Before(keyset) => (keyset, true),
    };
    let values: Vec<Option<Bind>> = keyset
        .values
        .iter()
        .map(|value| value.as_ref().map(SortValue::bind))
        .chain([
            Some(Bind::Text(keyset.resource_type.clone())),
            Some(Bind::Text(keyset.id.clone())),
        ])
        .collect();
    sql.push(joiner).push("(");
    let mut disjuncts = 0;
    for (index, (column, value)) in columns.iter().zip(&values).enumerate() {
        // Nothing sorts after a missing value: missing values come last.
        if value.is_none() && !backwards {
            continue;
        }
        if disjuncts > 0 {
            sql.push(" OR ");
        }
        disjuncts += 1;
        sql.push("(");
        for (before, value) in columns[..index].iter().zip(&values) {
            push_equal(sql, before, value);
            sql.push(" AND ");
        }
        push_beyond(sql, column, value, backwards);
        sql.push(")");
    }
    sql.push(")");
}

fn push_equal(sql: &mut Sql, column: &Column, value: &Option<Bind>) {
    sql.push(&column.name);
    match value {
        Some(value) => sql.push(" = ").bind(value.clone()),
        None => sql.push(" IS NULL"),
    };
}

/// `column` past `value` in the walking direction (missing values last going forward).
fn push_beyond(sql: &mut Sql, column: &Column, value: &Option<Bind>, backwards: bool) {
    let Some(value) = value else {
        sql.push(&column.name).push(" IS NOT NULL");
        return;
    };
    let comparison = if column.descending == backwards {
        " > "
    } else {
        " < "
    };
    sql.push("(")
        .push(&column.name)
        .push(comparison)
        .bind(value.clone());
    if column.nullable && !backwards {
        sql.push(" OR ").push(&column.name).push(" IS NULL");
    }
    sql.push(")");
}

/// The order of the columns, reversed when walking back to a previous page.
fn push_order(sql: &mut Sql, columns: &[Column], backwards: bool) {
    sql.push(" ORDER BY ");
    for (index, column) in columns.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push(&column.name);
        sql.push(if column.descending == backwards {
            " ASC"
        } else {
            " DESC"
        });
        if column.nullable {
            // Rows without a value come last, on both engines.
            sql.push(if backwards {
                " NULLS FIRST"
            } else {
                " NULLS LAST"
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: [SortKey; 2] = [
        SortKey {
            param: "date",
            kind: ParamType::Date,
            descending: true,
        },
        SortKey {
            param: "code",
            kind: ParamType::Token,
            descending: false,
        },
    ];

    /// A row dated 5 without a code.
    fn keyset() -> Keyset {
        Keyset {
            values: vec![Some(SortValue::Int(5)), None],
            resource_type: "Observation".into(),
            id: "o1".into(),
        }
    }

    fn filter() -> Filter {
        let mut conditions = Sql::default();
        conditions.push("r.deleted = ").bind(Bind::Bool(false));
        Filter {
            driver: None,
            conditions,
        }
    }

    #[test]
    fn the_next_page_follows_the_last_row_with_missing_values_last() {
        let sql = page_sql(&KEYS, filter(), &Cursor::After(keyset()), 3);
        assert_eq!(
            sql.text,
            "SELECT m.resource_type, m.id, m.version_id, m.last_updated, m.body, m.k0, m.k1 \
             FROM (SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body, \
             (SELECT MAX(s.end_us) FROM search_date s WHERE s.resource_type = r.resource_type AND s.resource_id = r.id AND s.param = $1) AS k0, \
             (SELECT MIN(s.code) FROM search_token s WHERE s.resource_type = r.resource_type AND s.resource_id = r.id AND s.param = $2) AS k1 \
             FROM resources r WHERE r.deleted = $3 LIMIT 9223372036854775807) m \
             WHERE (((m.k0 < $4 OR m.k0 IS NULL)) \
             OR (m.k0 = $5 AND m.k1 IS NULL AND (m.resource_type > $6)) \
             OR (m.k0 = $7 AND m.k1 IS NULL AND m.resource_type = $8 AND (m.id > $9))) \
             ORDER BY m.k0 DESC NULLS LAST, m.k1 ASC NULLS LAST, m.resource_type ASC, m.id ASC LIMIT $10"
        );
        let text = |value: &str| Bind::Text(value.into());
        assert_eq!(
            sql.binds,
            [
                text("date"),
                text("code"),
                Bind::Bool(false),
                Bind::Int(5),
                Bind::Int(5),
                text("Observation"),
                Bind::Int(5),
                text("Observation"),
                text("o1"),
                Bind::Int(3),
            ]
        );
    }

    #[test]
    fn the_previous_page_walks_back_from_the_first_row() {
        let sql = page_sql(&KEYS, filter(), &Cursor::Before(keyset()), 3);
        let (_, tail) = sql.text.split_once(") m WHERE ").unwrap();
        assert_eq!(
            tail,
            "(((m.k0 > $4)) \
             OR (m.k0 = $5 AND m.k1 IS NOT NULL) \
             OR (m.k0 = $6 AND m.k1 IS NULL AND (m.resource_type < $7)) \
             OR (m.k0 = $8 AND m.k1 IS NULL AND m.resource_type = $9 AND (m.id < $10))) \
             ORDER BY m.k0 ASC NULLS FIRST, m.k1 DESC NULLS FIRST, m.resource_type DESC, m.id DESC LIMIT $11"
        );
    }

    #[test]
    fn the_default_order_pages_by_type_and_id() {
        let keyset = Keyset {
            values: Vec::new(),
            ..keyset()
        };
        let sql = page_sql(&[], filter(), &Cursor::After(keyset), 3);
        assert_eq!(
            sql.text,
            "SELECT r.resource_type, r.id, r.version_id, r.last_updated, r.body FROM resources r \
             WHERE r.deleted = $1 AND (((r.resource_type > $2)) \
             OR (r.resource_type = $3 AND (r.id > $4))) \
             ORDER BY r.resource_type ASC, r.id ASC LIMIT $5"
        );
        let first = page_sql(&[], filter(), &Cursor::Start, 3);
        assert!(
            first
                .text
                .ends_with("WHERE r.deleted = $1 ORDER BY r.resource_type ASC, r.id ASC LIMIT $2")
        );
    }
}
