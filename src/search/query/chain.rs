//! Parameter names: `code[:modifier]`, chains (`subject:Patient.name`,
//! `patient.organization.name`) and reverse chains (`_has:Observation:patient:code`, nested),
//! resolved against the registry to the parameter tested and the links to reach it.

use super::{
    Direction, Hop, ParamType, Parsed, SearchParam, invalid, lookup, static_type, unsupported,
};

/// Most links (chain and `_has`) one parameter may follow: each is a join.
pub const MAX_HOPS: usize = 4;

/// The parameter a name tests, and how to reach it.
pub(super) struct Leaf<'a> {
    pub chain: Vec<Hop>,
    pub resource_type: Option<&'static str>,
    pub param: &'static SearchParam,
    /// Written after the last code (`exact` in `name:exact`).
    pub modifier: Option<&'a str>,
}

/// The last step of a name: its type, parameter and modifier.
type Target<'a> = (Option<&'static str>, &'static SearchParam, Option<&'a str>);

/// Resolves `name` on `resource_type`. `Ok(None)`: its first code is not a parameter of the
/// searched type (an unknown parameter, not an error); an unknown code further down a chain
/// is an error.
pub(super) fn resolve<'a>(
    resource_type: Option<&'static str>,
    name: &'a str,
) -> Parsed<Option<Leaf<'a>>> {
    let mut chain = Vec::new();
    Ok(
        step(resource_type, name, &mut chain)?.map(|(resource_type, param, modifier)| Leaf {
            chain,
            resource_type,
            param,
            modifier,
        }),
    )
}

fn step<'a>(
    current: Option<&'static str>,
    name: &'a str,
    chain: &mut Vec<Hop>,
) -> Parsed<Option<Target<'a>>> {
    if let Some(rest) = name.strip_prefix("_has:") {
        // A system-level search has no `_has` (not a parameter of every type).
        return match current {
            Some(current) => reverse(current, rest, chain).map(Some),
            None => Ok(None),
        };
    }
    let (head, rest) = match name.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (name, None),
    };
    let (code, modifier) = match head.split_once(':') {
        Some((code, modifier)) => (code, Some(modifier)),
        None => (head, None),
    };
    let Some(param) = lookup(current, code) else {
        return Ok(None);
    };
    let Some(rest) = rest else {
        return Ok(Some((current, param, modifier)));
    };
    let Some(source) = current else {
        return Err(invalid(format!(
            "'{code}' cannot be chained in a system-level search"
        )));
    };
    if param.kind != ParamType::Reference {
        return Err(invalid(format!(
            "'{code}' is not a reference parameter, so it cannot be chained"
        )));
    }
    let target = chain_target(param, modifier, rest)?;
    link(
        chain,
        Hop {
            direction: Direction::Forward,
            source_type: source,
            param: &param.code,
            target_type: target,
        },
    )?;
    next(target, rest, chain).map(Some)
}

/// `_has:Type:param:rest` (after `_has:`) on resources of type `current`.
fn reverse<'a>(current: &'static str, has: &'a str, chain: &mut Vec<Hop>) -> Parsed<Target<'a>> {
    let mut parts = has.splitn(3, ':');
    let (Some(source), Some(code), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid(
            "_has takes the form _has:Type:reference-parameter:search-parameter",
        ));
    };
    let source = static_type(source)
        .ok_or_else(|| invalid(format!("'{source}' in _has is not a resource type")))?;
    let param = lookup(Some(source), code)
        .ok_or_else(|| invalid(format!("{source} has no search parameter '{code}'")))?;
    if param.kind != ParamType::Reference {
        return Err(invalid(format!(
            "{source}.{code} in _has is not a reference parameter"
        )));
    }
    if !param.targets.is_empty() && !param.targets.iter().any(|t| **t == *current) {
        return Err(invalid(format!(
            "{source}.{code} does not refer to {current}"
        )));
    }
    link(
        chain,
        Hop {
            direction: Direction::Reverse,
            source_type: source,
            param: &param.code,
            target_type: current,
        },
    )?;
    next(source, rest, chain)
}

fn link(chain: &mut Vec<Hop>, hop: Hop) -> Parsed<()> {
    if chain.len() == MAX_HOPS {
        return Err(unsupported(format!(
            "chains of more than {MAX_HOPS} links are not supported"
        )));
    }
    chain.push(hop);
    Ok(())
}

/// The rest of a chain, on `resource_type`: it must name one of its parameters.
fn next<'a>(
    resource_type: &'static str,
    rest: &'a str,
    chain: &mut Vec<Hop>,
) -> Parsed<Target<'a>> {
    step(Some(resource_type), rest, chain)?.ok_or_else(|| {
        invalid(format!(
            "{resource_type} has no search parameter '{}'",
            first_code(rest)
        ))
    })
}

/// Whether the rest of a chain can start on `resource_type`: it has the next parameter, or
/// the next `_has` refers to it.
fn continues_on(resource_type: &str, rest: &str) -> bool {
    let Some(has) = rest.strip_prefix("_has:") else {
        return lookup(Some(resource_type), first_code(rest)).is_some();
    };
    let mut parts = has.split(':');
    match (parts.next(), parts.next()) {
        (Some(source), Some(code)) => lookup(Some(source), code).is_some_and(|p| {
            p.targets.is_empty() || p.targets.iter().any(|t| **t == *resource_type)
        }),
        _ => false,
    }
}

/// The code a chain continues with (`name` in `name:exact`, `organization` in
/// `organization.name`).
fn first_code(rest: &str) -> &str {
    if rest.starts_with("_has:") {
        return "_has";
    }
    rest.split([':', '.']).next().unwrap_or(rest)
}

/// The type a chain follows `param` to: the `:Type` modifier, else the one target type that
/// has the next parameter.
fn chain_target(
    param: &'static SearchParam,
    modifier: Option<&str>,
    rest: &str,
) -> Parsed<&'static str> {
    let code = &*param.code;
    if let Some(modifier) = modifier {
        return allowed_target(param, modifier).ok_or_else(|| {
            invalid(format!(
                "'{modifier}' is not a target type of the reference parameter '{code}'"
            ))
        });
    }
    let next = first_code(rest);
    let targets: Vec<&'static str> = param.targets.iter().map(|t| &**t).collect();
    let candidates: Vec<&'static str> = targets
        .iter()
        .copied()
        .filter(|t| continues_on(t, rest))
        .collect();
    match (candidates.as_slice(), targets.as_slice()) {
        ([only], _) => Ok(only),
        // The next step reports that its only type lacks the parameter.
        (_, [only]) => Ok(only),
        (_, []) => Err(invalid(format!(
            "'{code}' has no declared target type: name one with a modifier ({code}:Type.{rest})"
        ))),
        ([], _) => Err(invalid(format!(
            "no target type of '{code}' has a search parameter '{next}'"
        ))),
        (many, _) => Err(invalid(format!(
            "'{code}' may refer to {}: name the type with a modifier, e.g. {code}:{}.{rest}",
            many.join(", "),
            many[0]
        ))),
    }
}

/// `name` if it is a type `param` may refer to (any type when it declares none).
pub(super) fn allowed_target(param: &'static SearchParam, name: &str) -> Option<&'static str> {
    if param.targets.is_empty() {
        return static_type(name);
    }
    param.targets.iter().find(|t| ***t == *name).map(|t| &**t)
}
