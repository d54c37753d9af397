//! Compiling search criteria to SQL over the index tables.
//!
//! Every criterion becomes a set of matching resource ids: `r.id IN (SELECT resource_id
//! FROM <index table> WHERE resource_type = … AND param = … AND <value test>)`, which both
//! engines run from the `(resource_type, param, …)` lookup indexes (the search's driving
//! criterion; `plan.rs` probes the others per candidate instead). Chains and `_has` wrap
//! that set in `search_reference` hops; `:missing` and `:not` negate it. A composite
//! value needs all its components to match rows of one tuple (joined on `tuple_id`).

use crate::search::ParamType;
use crate::search::query::{
    ComponentValue, Criterion, DateValue, Direction, NumberValue, Prefix, QuantityValue,
    ReferenceValue, StringValue, SystemCode, SystemMatch, Test, TokenValue, UriValue, Value,
};

use super::sql::{Sql, like_escape, prefix_upper_bound};
use super::{AccessFilter, push_within};

/// The index table of a parameter type.
pub fn table(kind: ParamType) -> &'static str {
    match kind {
        ParamType::String => "search_string",
        ParamType::Token => "search_token",
        ParamType::Date => "search_date",
        ParamType::Reference => "search_reference",
        ParamType::Quantity => "search_quantity",
        ParamType::Number => "search_number",
        ParamType::Uri => "search_uri",
        // Composites are matched through their components' own tables.
        ParamType::Composite => "search_token",
    }
}

/// Appends the condition that `r` (the searched resource) meets `criterion`; the resources
/// a chain or `_has` passes through count only when within `access` (`None`: everything).
pub fn push_criterion(
    sql: &mut Sql,
    criterion: &Criterion,
    base: &str,
    access: Option<&AccessFilter>,
) {
    match (
        &criterion.test,
        criterion.chain.is_empty(),
        criterion.resource_type,
    ) {
        // A system-level search: match on (type, id) pairs.
        (test, _, None) => {
            let negate = !matches!(test, Test::Any(_) | Test::Missing(false));
            sql.push(if negate {
                "(r.resource_type, r.id) NOT IN ("
            } else {
                "(r.resource_type, r.id) IN ("
            });
            sql.push("SELECT resource_type, resource_id FROM ")
                .push(table(criterion.kind))
                .push(" WHERE param = ")
                .text(criterion.param);
            push_values(sql, test, base);
            sql.push(")");
        }
        (Test::Missing(true), true, Some(resource_type))
        | (Test::NotAny(_), true, Some(resource_type)) => {
            sql.push("r.id NOT IN (");
            push_positive_set(sql, criterion, resource_type, base);
            sql.push(")");
        }
        (_, true, Some(resource_type)) => {
            sql.push("r.id IN (");
            push_positive_set(sql, criterion, resource_type, base);
            sql.push(")");
        }
        (_, false, Some(_)) => {
            sql.push("r.id IN (");
            push_chain(sql, criterion, base, access);
            sql.push(")");
        }
    }
}

/// Ids of `resource_type` resources with a row of the criterion's parameter that passes its
/// values (for `:missing` and `:not`: any row, or a row that matches, to be negated).
fn push_positive_set(sql: &mut Sql, criterion: &Criterion, resource_type: &str, base: &str) {
    if criterion.kind == ParamType::Composite {
        return push_composite_set(sql, criterion, resource_type, base);
    }
    sql.push("SELECT resource_id FROM ")
        .push(table(criterion.kind))
        .push(" WHERE resource_type = ")
        .text(resource_type)
        .push(" AND param = ")
        .text(criterion.param);
    push_values(sql, &criterion.test, base);
}

/// Ids of the resources with a tuple of the composite (`:missing`), or with a tuple whose
/// components all match one of the values: the component rows of one tuple share their
/// `tuple_id` (see `migrations/*/0003_composite_search.sql`).
fn push_composite_set(sql: &mut Sql, criterion: &Criterion, resource_type: &str, base: &str) {
    let values = match &criterion.test {
        Test::Any(values) | Test::NotAny(values) => values,
        Test::Missing(_) => return push_any_tuple(sql, criterion, resource_type),
    };
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            sql.push(" UNION ");
        }
        match value {
            Value::Composite(components) => push_tuple_match(sql, components, resource_type, base),
            _ => push_no_resource(sql),
        }
    }
}

/// Ids of the resources with a tuple of the composite: every tuple has a row of each
/// component, so those of the first component.
fn push_any_tuple(sql: &mut Sql, criterion: &Criterion, resource_type: &str) {
    let first = crate::search::param(resource_type, criterion.param)
        .and_then(|param| param.components.first());
    let Some(first) = first else {
        return push_no_resource(sql);
    };
    sql.push("SELECT resource_id FROM ")
        .push(table(first.kind))
        .push(" WHERE resource_type = ")
        .text(resource_type)
        .push(" AND param = ")
        .text(&*first.row_param);
}

/// Ids of the resources with a tuple whose rows match each component value: a row `t` of
/// the first component, and for each other component a row `c` of the same tuple.
fn push_tuple_match(sql: &mut Sql, components: &[ComponentValue], resource_type: &str, base: &str) {
    let Some((first, others)) = components.split_first() else {
        return push_no_resource(sql);
    };
    // A value test names its table's columns unqualified: they resolve to the innermost
    // table with them, `c` inside `EXISTS`, else `t`.
    sql.push("SELECT t.resource_id FROM ")
        .push(table(kind_of(&first.value)))
        .push(" t WHERE t.resource_type = ")
        .text(resource_type)
        .push(" AND t.param = ")
        .text(first.param)
        .push(" AND (");
    push_value(sql, &first.value, base);
    sql.push(")");
    for component in others {
        sql.push(" AND EXISTS (SELECT 1 FROM ")
            .push(table(kind_of(&component.value)))
            .push(
                " c WHERE c.resource_type = t.resource_type AND c.resource_id = t.resource_id \
                 AND c.param = ",
            )
            .text(component.param)
            .push(" AND c.tuple_id = t.tuple_id AND (");
        push_value(sql, &component.value, base);
        sql.push("))");
    }
}

/// A set of resource ids that is always empty.
fn push_no_resource(sql: &mut Sql) {
    sql.push("SELECT resource_id FROM search_token WHERE 1 = 0");
}

/// The `AND (…)` of a test's values (nothing for `:missing`).
pub(super) fn push_values(sql: &mut Sql, test: &Test, base: &str) {
    let values = match test {
        Test::Missing(_) => return,
        Test::Any(values) | Test::NotAny(values) => values,
    };
    sql.push(" AND (");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            sql.push(" OR ");
        }
        sql.push("(");
        push_value(sql, value, base);
        sql.push(")");
    }
    sql.push(")");
}

/// Ids of the searched resources that reach, through the chain, a resource meeting the test
/// (and every resource on the way within `access`).
fn push_chain(sql: &mut Sql, criterion: &Criterion, base: &str, access: Option<&AccessFilter>) {
    // Innermost: the resources at the end of the chain that meet the test.
    let last_type = criterion
        .chain
        .last()
        .map_or("", |hop| match hop.direction {
            Direction::Forward => hop.target_type,
            Direction::Reverse => hop.source_type,
        });
    let mut inner = Sql::default();
    match &criterion.test {
        Test::Any(_) | Test::Missing(false) => {
            push_positive_set(&mut inner, criterion, last_type, base)
        }
        Test::Missing(true) | Test::NotAny(_) => {
            inner
                .push("SELECT id FROM resources WHERE resource_type = ")
                .text(last_type)
                .push(" AND deleted = ")
                .bind(super::sql::Bind::Bool(false))
                .push(" AND id NOT IN (");
            push_positive_set(&mut inner, criterion, last_type, base);
            inner.push(")");
        }
    }
    // Wrap the hops from the last to the first.
    let mut wrapped = inner;
    for hop in criterion.chain.iter().rev() {
        let mut outer = Sql {
            text: String::new(),
            binds: Vec::new(),
        };
        let (select, filter, far_type) = match hop.direction {
            Direction::Forward => ("resource_id", "target_id", hop.target_type),
            Direction::Reverse => ("target_id", "resource_id", hop.source_type),
        };
        outer
            .push("SELECT ")
            .push(select)
            .push(" FROM search_reference WHERE resource_type = ")
            .text(hop.source_type)
            .push(" AND param = ")
            .text(hop.param)
            .push(" AND target_type = ")
            .text(hop.target_type)
            .push(" AND ")
            .push(filter)
            .push(" IN (");
        push_within(&mut outer, wrapped, far_type, access, base);
        outer.push(")");
        wrapped = outer;
    }
    sql.append(wrapped);
}

fn push_value(sql: &mut Sql, value: &Value, base: &str) {
    match value {
        Value::String(value) => push_string(sql, value),
        Value::Token(value) => push_token(sql, value),
        Value::Date(value) => push_date(sql, value),
        Value::Number(value) => push_number(sql, value),
        Value::Quantity(value) => push_quantity(sql, value),
        Value::Reference(value) => push_reference(sql, value, base),
        Value::Uri(value) => push_uri(sql, value),
        // A composite's components are tested by `push_tuple_match`.
        Value::Composite(_) => {
            sql.push("1 = 0");
        }
    }
}

fn kind_of(value: &Value) -> ParamType {
    match value {
        Value::String(_) => ParamType::String,
        Value::Token(_) | Value::Composite(_) => ParamType::Token,
        Value::Date(_) => ParamType::Date,
        Value::Number(_) => ParamType::Number,
        Value::Quantity(_) => ParamType::Quantity,
        Value::Reference(_) => ParamType::Reference,
        Value::Uri(_) => ParamType::Uri,
    }
}

fn push_string(sql: &mut Sql, value: &StringValue) {
    match value {
        StringValue::StartsWith(prefix) => {
            sql.push("normalized >= ")
                .text(prefix.as_str())
                .push(" AND normalized < ")
                .text(prefix_upper_bound(prefix));
        }
        StringValue::Contains(part) => {
            sql.push("normalized LIKE ")
                .text(format!("%{}%", like_escape(part)))
                .push(" ESCAPE '\\'");
        }
        StringValue::Exact(text) => {
            sql.push("exact = ").text(text.as_str());
        }
    }
}

fn push_system_code(sql: &mut Sql, value: &SystemCode, system_column: &str, code_column: &str) {
    let mut first = true;
    if let Some(code) = &value.code {
        sql.push(code_column).push(" = ").text(code.as_str());
        first = false;
    }
    let and = if first { "" } else { " AND " };
    match &value.system {
        SystemMatch::Any => {
            if first {
                sql.push("1 = 1");
            }
        }
        SystemMatch::Absent => {
            sql.push(and).push(system_column).push(" IS NULL");
        }
        SystemMatch::Is(system) => {
            sql.push(and)
                .push(system_column)
                .push(" = ")
                .text(system.as_str());
        }
    }
}

fn push_token(sql: &mut Sql, value: &TokenValue) {
    match value {
        TokenValue::Code(system_code) => push_system_code(sql, system_code, "system", "code"),
        TokenValue::Text(text) => {
            sql.push("display >= ")
                .text(text.as_str())
                .push(" AND display < ")
                .text(prefix_upper_bound(text));
        }
        TokenValue::OfType {
            type_system,
            type_code,
            value,
        } => {
            sql.push("type_code = ")
                .text(type_code.as_str())
                .push(" AND code = ")
                .text(value.as_str());
            if let Some(system) = type_system {
                sql.push(" AND type_system = ").text(system.as_str());
            }
        }
    }
}

/// Ranges `[start_us, end_us)` against the value's `[start, end)` (R4 search.html, dates).
fn push_date(sql: &mut Sql, value: &DateValue) {
    let (start, end) = (value.start, value.end);
    match value.prefix {
        Prefix::Eq => sql
            .push("start_us >= ")
            .int(start)
            .push(" AND end_us <= ")
            .int(end),
        Prefix::Ne => sql
            .push("(start_us < ")
            .int(start)
            .push(" OR end_us > ")
            .int(end)
            .push(")"),
        Prefix::Gt => sql.push("end_us > ").int(end),
        Prefix::Lt => sql.push("start_us < ").int(start),
        Prefix::Ge => sql.push("end_us > ").int(start),
        Prefix::Le => sql.push("start_us < ").int(end),
        Prefix::Sa => sql.push("start_us >= ").int(end),
        Prefix::Eb => sql.push("end_us <= ").int(start),
        Prefix::Ap => sql
            .push("start_us < ")
            .int(end)
            .push(" AND end_us > ")
            .int(start),
    };
}

/// A stored number against the value and its precision range `[low, high)`.
fn push_numeric(sql: &mut Sql, prefix: Prefix, value: f64, low: f64, high: f64) {
    match prefix {
        Prefix::Eq | Prefix::Ap => sql
            .push("value >= ")
            .float(low)
            .push(" AND value < ")
            .float(high),
        Prefix::Ne => sql
            .push("(value < ")
            .float(low)
            .push(" OR value >= ")
            .float(high)
            .push(")"),
        Prefix::Gt | Prefix::Sa => sql.push("value > ").float(value),
        Prefix::Lt | Prefix::Eb => sql.push("value < ").float(value),
        Prefix::Ge => sql.push("value >= ").float(value),
        Prefix::Le => sql.push("value <= ").float(value),
    };
}

fn push_number(sql: &mut Sql, value: &NumberValue) {
    push_numeric(sql, value.prefix, value.value, value.low, value.high);
}

fn push_quantity(sql: &mut Sql, value: &QuantityValue) {
    push_numeric(sql, value.prefix, value.value, value.low, value.high);
    match (&value.system, &value.code) {
        (Some(system), Some(code)) => {
            sql.push(" AND system = ")
                .text(system.as_str())
                .push(" AND code = ")
                .text(code.as_str());
        }
        // Without a system the code may be the coded unit or the human-readable one.
        (None, Some(code)) => {
            sql.push(" AND (code = ")
                .text(code.as_str())
                .push(" OR unit = ")
                .text(code.as_str())
                .push(")");
        }
        (Some(system), None) => {
            sql.push(" AND system = ").text(system.as_str());
        }
        (None, None) => {}
    }
}

fn push_reference(sql: &mut Sql, value: &ReferenceValue, base: &str) {
    match value {
        ReferenceValue::Local { target_type, id } => {
            sql.push("target_id = ").text(id.as_str());
            if let Some(target_type) = target_type {
                sql.push(" AND target_type = ").text(*target_type);
            }
        }
        ReferenceValue::Url { url, local } => {
            sql.push("(url = ").text(url.as_str());
            // An absolute URL on this server also names the local `Type/id`.
            if let Some((target_type, id)) = local
                && url.starts_with(base)
            {
                sql.push(" OR (target_type = ")
                    .text(*target_type)
                    .push(" AND target_id = ")
                    .text(id.as_str())
                    .push(")");
            }
            sql.push(")");
        }
        ReferenceValue::Identifier(system_code) => {
            push_system_code(sql, system_code, "identifier_system", "identifier_value");
        }
    }
}

fn push_uri(sql: &mut Sql, value: &UriValue) {
    match value {
        UriValue::Exact(uri) => {
            sql.push("uri = ").text(uri.as_str());
        }
        UriValue::Below(uri) => {
            sql.push("uri LIKE ")
                .text(format!("{}%", like_escape(uri)))
                .push(" ESCAPE '\\'");
        }
        UriValue::Above(uri) => {
            sql.push("substr(")
                .text(uri.as_str())
                .push(", 1, length(uri)) = uri");
        }
    }
}
