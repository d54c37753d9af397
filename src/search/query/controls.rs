//! Result parameters: `_count`, `_sort`, `_total`, `_summary`, `_elements`, `_include`,
//! `_revinclude` and the paging cursor `_cursor`.

use super::bounds::{MAX_SORT_KEYS, too_costly};
use super::chain::allowed_target;
use super::escape::split;
use super::{ParamType, Parsed, invalid, lookup, no_suffix, static_type, unsupported};
use crate::search::param;

/// Names handled here rather than as search parameters.
const CONTROLS: [&str; 10] = [
    "_count",
    "_sort",
    "_total",
    "_summary",
    "_elements",
    "_include",
    "_revinclude",
    "_cursor",
    "_contained",
    "_containedType",
];

pub(super) fn is_control(name: &str) -> bool {
    CONTROLS.contains(&name)
}

/// How to shape the result. Each may be given once, except `_include` / `_revinclude`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Controls {
    /// `_count`, unbounded (the caller caps it at its page size limit); 0 asks for the
    /// total only.
    pub count: Option<u32>,
    pub sort: Vec<SortKey>,
    pub total: Option<Total>,
    pub summary: Option<Summary>,
    /// `_elements`, as written (`name`, `identifier`, ...).
    pub elements: Vec<String>,
    pub include: Vec<Include>,
    pub revinclude: Vec<Include>,
    /// The opaque paging cursor of this server's `next` links.
    pub cursor: Option<String>,
}

/// One `_sort` key: a parameter of the searched type (or a common one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    pub param: &'static str,
    /// Which index table holds `param`.
    pub kind: ParamType,
    /// `-param`.
    pub descending: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Total {
    None,
    Estimate,
    Accurate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Summary {
    True,
    False,
    Text,
    Data,
    Count,
}

/// One `_include` / `_revinclude`: the references of `source_type` resources through
/// `param`, to `target_type` resources. For `_include` the sources are the matches; for
/// `_revinclude` the matches are the targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Include {
    /// `None`: `*` (every type).
    pub source_type: Option<&'static str>,
    /// `None`: `*` or `Type:*` (every reference parameter).
    pub param: Option<&'static str>,
    /// `Type:param:Target`; `None`: every target type.
    pub target_type: Option<&'static str>,
    /// `:iterate` (or R3's `:recurse`): also from the included resources, repeatedly.
    pub iterate: bool,
}

impl Controls {
    /// Applies the control `name` (with `suffix`, the rest of the parameter name) of a
    /// search on `resource_type`.
    pub(super) fn apply(
        &mut self,
        resource_type: Option<&'static str>,
        name: &str,
        suffix: &str,
        value: &str,
    ) -> Parsed<()> {
        if name == "_include" || name == "_revinclude" {
            let iterate = match suffix {
                "" => false,
                ":iterate" | ":recurse" => true,
                _ => return Err(invalid(format!("unknown modifier '{suffix}'"))),
            };
            let include = include(value, iterate)?;
            let list = if name == "_include" {
                &mut self.include
            } else {
                &mut self.revinclude
            };
            list.push(include);
            return Ok(());
        }
        if name == "_contained" || name == "_containedType" {
            return Err(unsupported(
                "searching contained resources is not supported",
            ));
        }
        no_suffix(suffix)?;
        let repeated = match name {
            "_count" => self.count.is_some(),
            "_sort" => !self.sort.is_empty(),
            "_total" => self.total.is_some(),
            "_summary" => self.summary.is_some(),
            "_elements" => !self.elements.is_empty(),
            _ => self.cursor.is_some(),
        };
        if repeated {
            return Err(invalid("may appear only once"));
        }
        match name {
            "_count" => self.count = Some(count(value)?),
            "_sort" => self.sort = sort(resource_type, value)?,
            "_total" => {
                self.total = Some(match value {
                    "none" => Total::None,
                    "estimate" => Total::Estimate,
                    "accurate" => Total::Accurate,
                    _ => return Err(one_of(value, "none, estimate, accurate")),
                })
            }
            "_summary" => {
                self.summary = Some(match value {
                    "true" => Summary::True,
                    "false" => Summary::False,
                    "text" => Summary::Text,
                    "data" => Summary::Data,
                    "count" => Summary::Count,
                    _ => return Err(one_of(value, "true, false, text, data, count")),
                })
            }
            "_elements" => self.elements = elements(value)?,
            _ => self.cursor = Some(value.to_owned()),
        }
        Ok(())
    }
}

fn one_of(value: &str, allowed: &str) -> super::Rejection {
    invalid(format!("'{value}' is not one of {allowed}"))
}

/// A non-negative integer; beyond `u32` it saturates (the caller caps it anyway).
fn count(value: &str) -> Parsed<u32> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(format!("'{value}' is not a non-negative integer")));
    }
    Ok(value.parse().unwrap_or(u32::MAX))
}

fn sort(resource_type: Option<&'static str>, value: &str) -> Parsed<Vec<SortKey>> {
    let keys = split(value, ',');
    if keys.len() > MAX_SORT_KEYS {
        return Err(too_costly(format!(
            "has {} keys; at most {MAX_SORT_KEYS} are allowed",
            keys.len()
        )));
    }
    keys.into_iter()
        .filter(|key| !key.is_empty())
        .map(|key| {
            let (code, descending) = match key.strip_prefix('-') {
                Some(code) => (code, true),
                None => (key, false),
            };
            let param = lookup(resource_type, code).ok_or_else(|| {
                invalid(format!(
                    "cannot sort by '{code}': not a search parameter of {}",
                    resource_type.unwrap_or("every resource type")
                ))
            })?;
            if param.kind == ParamType::Composite {
                return Err(unsupported(format!(
                    "cannot sort by '{code}': sorting by a composite parameter is not supported"
                )));
            }
            Ok(SortKey {
                param: &param.code,
                kind: param.kind,
                descending,
            })
        })
        .collect()
}

/// Element names (`name`, `Patient.name`): letters, digits and dots.
fn elements(value: &str) -> Parsed<Vec<String>> {
    value
        .split(',')
        .filter(|element| !element.is_empty())
        .map(|element| {
            if element
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.')
            {
                Ok(element.to_owned())
            } else {
                Err(invalid(format!("'{element}' is not an element name")))
            }
        })
        .collect()
}

/// `*`, `Type:*`, `Type:param` or `Type:param:Target`.
fn include(value: &str, iterate: bool) -> Parsed<Include> {
    let all = Include {
        source_type: None,
        param: None,
        target_type: None,
        iterate,
    };
    if value == "*" {
        return Ok(all);
    }
    let parts: Vec<&str> = value.split(':').collect();
    let (source, code, target) = match parts.as_slice() {
        [source, code] => (*source, *code, None),
        [source, code, target] => (*source, *code, Some(*target)),
        _ => {
            return Err(invalid(format!(
                "'{value}' is not Type:parameter, Type:parameter:TargetType or *"
            )));
        }
    };
    let source_type =
        static_type(source).ok_or_else(|| invalid(format!("'{source}' is not a resource type")))?;
    if code == "*" && target.is_none() {
        return Ok(Include {
            source_type: Some(source_type),
            ..all
        });
    }
    let param = param(source_type, code)
        .filter(|p| p.kind == ParamType::Reference)
        .ok_or_else(|| {
            invalid(format!(
                "'{code}' is not a reference search parameter of {source_type}"
            ))
        })?;
    let target_type = target
        .map(|target| {
            allowed_target(param, target).ok_or_else(|| {
                invalid(format!(
                    "'{target}' is not a target type of {source_type}.{code}"
                ))
            })
        })
        .transpose()?;
    Ok(Include {
        source_type: Some(source_type),
        param: Some(&param.code),
        target_type,
        iterate,
    })
}
