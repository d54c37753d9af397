#!/usr/bin/env python3
"""Generate kiln's search-parameter registry (FHIR R4 + US Core) for src/search.

Usage:
    python3 tools/gen_search_params.py [DATA_DIR] [--out OUT_DIR]

DATA_DIR defaults to ../shared/data (relative to the crate root) and must contain
fhir-r4/search-parameters.json, fhir-r4/profiles-resources.json,
fhir-r4/compartmentdefinition-patient.json and us-core/<version>/SearchParameter-*.json for
the US Core versions in US_CORE_VERSIONS. The concrete resource types and the types of choice
elements are read from src/fhir/generated/r4_definitions.json (run tools/gen_fhir_defs.py first).
OUT_DIR defaults to src/search/generated. The output is deterministic (sorted keys, minified)
and meant to be committed:

    src/search/generated/search_parameters.json   the registry (see below)
    src/search/generated/README.md                provenance, US Core merge report

Output model (``search_parameters.json``):

    {
      "_generated": "...do not edit...",
      "fhirVersion": "4.0.1",
      "choiceTypes": ["Address", "Age", ..., "Uuid"],   # JSON suffixes of choice elements
      "choiceElements": ["abatement", ..., "when"],     # names of choice elements (value[x])
      "resources": {
        "Observation": {
          "compartment": ["performer", "subject"],       # Patient compartment param codes
          "params": [                                    # sorted by code
            {"code": "patient", "type": "reference",
             "url": "http://hl7.org/fhir/SearchParameter/clinical-patient",
             "expression": "Observation.subject.where(resolve() is Patient)",
             "target": ["Patient"]},                     # reference params only
            {"code": "code-value-quantity", "type": "composite", "url": "...",
             "expression": "Observation",
             "component": [{"code": "code", "type": "token", "url": "...", "expression": "code"},
                           ...]},
            ...
          ]
        },
        ...
      }
    }

Rules:
  * SearchParameters of type ``special`` and those without an expression (``_text``,
    ``_content``, ``_query``) are skipped; ``_id``, ``_lastUpdated``, ``_tag``, ``_profile``,
    ``_security`` and ``_source`` (base ``Resource``) are given to every resource type.
  * A parameter with several bases (or base ``Resource`` / ``DomainResource``) is expanded to
    each concrete type; its expression, a union of branches such as
    ``AllergyIntolerance.code | Condition.code``, is narrowed to the branches that start with
    that type, with ``Resource`` / ``DomainResource``, or with a relative path.
  * A reference parameter's targets are its SearchParameter's ``target``, narrowed per type to
    the types its expression can reach: a branch ending in ``.where(resolve() is X)`` reaches
    X only, and a branch that is a plain element path (or ``(path as Reference)``) reaches the
    types its ElementDefinition's ``targetProfile`` allows (``clinical-patient`` lists Group for
    every base, but ``Encounter.subject.where(resolve() is Patient)`` and
    ``AllergyIntolerance.patient`` reach Patient only). Branches whose types cannot be read
    (canonicals, ``relatedArtifact.resource``) keep the declared targets.
  * Composite components name another SearchParameter by URL; it is resolved to its code and
    type. The component expression is relative to each item of the composite's expression.
  * US Core parameters (US_CORE_VERSIONS, newest definition wins) whose code already exists
    on the same type are merged into the R4 one when they index a subset of what it indexes
    (same type, every branch is one of the R4 branches); new codes are added; anything else
    is an error for a human to decide.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

US_CORE_VERSIONS = ["3.1.1", "4.0.0", "6.1.0", "7.0.0"]
ANY_RESOURCE = {"Resource", "DomainResource"}
PARAM_TYPES = {"number", "date", "string", "token", "reference", "composite", "quantity", "uri"}

# R4 errata: DocumentReference-relationship pairs `relatesto` (a reference) with `code` and
# `relation` (a token) with `target`; R5 fixed it to relatesto=target, relation=code.
COMPONENT_FIXES = {
    ("http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "relatesto"): "target",
    ("http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "relation"): "code",
}


def load_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def split_union(expr: str) -> list[str]:
    """The top-level `|` branches of a FHIRPath expression (outside parentheses and strings)."""
    branches, depth, quote, start = [], 0, False, 0
    for i, c in enumerate(expr):
        if quote:
            if c == "\\":
                continue
            if c == "'":
                quote = False
        elif c == "'":
            quote = True
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "|" and depth == 0:
            branches.append(expr[start:i])
            start = i + 1
    branches.append(expr[start:])
    return [b.strip() for b in branches if b.strip()]


HEAD = re.compile(r"^\(*\s*([A-Za-z_%][A-Za-z0-9_]*)")


def head(branch: str) -> str:
    m = HEAD.match(branch)
    if not m:
        sys.exit(f"cannot find the head of expression branch {branch!r}")
    return m.group(1)


def applies_to(branch: str, rtype: str) -> bool:
    h = head(branch)
    return h == rtype or h in ANY_RESOURCE or not h[0].isupper()


def narrow(expr: str, rtype: str) -> str:
    return " | ".join(b for b in split_union(expr) if applies_to(b, rtype))


def canonical_branch(branch: str, rtype: str) -> str:
    """A branch with whitespace removed and its head type replaced, for comparisons."""
    b = re.sub(r"\s+", "", branch)
    h = head(b)
    if h == rtype or h in ANY_RESOURCE:
        b = b.replace(h, "$T", 1)
    return b


def concrete_types(data_dir: str, crate: str) -> tuple[list[str], set[str], list[str], list[str]]:
    """(resource types, those that are DomainResources, JSON suffixes of choice elements,
    names of choice elements)."""
    defs = load_json(os.path.join(crate, "src", "fhir", "generated", "r4_definitions.json"))
    types = defs["resourceTypes"]
    choice, names = set(), set()
    for elements in defs["types"].values():
        for el in elements:
            if isinstance(el[3], list):
                choice.update(t[0].upper() + t[1:] for t in el[3])
                names.add(el[0].removesuffix("[x]"))
    bundle = load_json(os.path.join(data_dir, "fhir-r4", "profiles-resources.json"))
    direct = {
        e["resource"]["type"]
        for e in bundle["entry"]
        if e["resource"].get("resourceType") == "StructureDefinition"
        and e["resource"].get("baseDefinition") == "http://hl7.org/fhir/StructureDefinition/Resource"
    }
    domain = {t for t in types if t not in direct}
    return types, domain, sorted(choice), sorted(names)


def expand_bases(bases: list[str], types: list[str], domain: set[str]) -> list[str]:
    out: list[str] = []
    for b in bases:
        if b == "Resource":
            out.extend(types)
        elif b == "DomainResource":
            out.extend(t for t in types if t in domain)
        elif b in types:
            out.append(b)
        else:
            sys.exit(f"unknown base {b}")
    return list(dict.fromkeys(out))


def element_definitions(data_dir: str) -> dict[str, dict]:
    """Every ElementDefinition of the R4 resources and data types, by path."""
    elements = {}
    for name in ("profiles-resources.json", "profiles-types.json"):
        for e in load_json(os.path.join(data_dir, "fhir-r4", name))["entry"]:
            sd = e["resource"]
            if sd.get("resourceType") == "StructureDefinition":
                for el in sd.get("snapshot", {}).get("element", []):
                    elements[el["path"]] = el
    return elements


RESOLVE_IS = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)$")
AS_REFERENCE = re.compile(r"^\(\s*([A-Za-z.]+)\s+as\s+Reference\s*\)$")


def branch_targets(branch: str, elements: dict[str, dict]) -> set[str] | None:
    """The types one expression branch can refer to, or None when that cannot be read."""
    m = RESOLVE_IS.search(branch)
    if m:
        return {m.group(1)}
    m = AS_REFERENCE.match(branch)
    path = m.group(1) + "[x]" if m else branch
    el = elements.get(path)
    if el is None or not el.get("type"):
        return None
    out: set[str] = set()
    for t in el["type"]:
        if t["code"] != "Reference":
            if m:
                continue
            return None
        profiles = t.get("targetProfile", [])
        if not profiles:
            return None
        out.update(p.rsplit("/", 1)[1] for p in profiles)
    if "Resource" in out:
        return None
    return out


def reference_targets(sp: dict, expr: str, elements: dict[str, dict]) -> list[str]:
    """`sp`'s declared targets, narrowed to those the branches of `expr` can reach."""
    declared = set(sp.get("target", []))
    reachable: set[str] = set()
    for branch in split_union(expr):
        found = branch_targets(branch, elements)
        if found is None:
            return sorted(declared)
        reachable |= found
    narrowed = declared & reachable
    if not narrowed:
        sys.exit(f"{sp['url']}: no declared target is reachable by {expr!r}")
    return sorted(narrowed)


def entry_for(sp: dict, rtype: str, by_url: dict[str, dict], elements: dict[str, dict]) -> dict:
    """The registry entry of SearchParameter `sp` on resource type `rtype`."""
    if sp["type"] not in PARAM_TYPES:
        sys.exit(f"{sp['url']}: unexpected type {sp['type']}")
    expr = narrow(sp["expression"], rtype)
    if not expr:
        sys.exit(f"{sp['url']}: no expression branch applies to {rtype}")
    entry = {"code": sp["code"], "type": sp["type"], "url": sp["url"], "expression": expr}
    if sp["type"] == "reference":
        entry["target"] = reference_targets(sp, expr, elements)
    if sp["type"] == "composite":
        comps = []
        for c in sp["component"]:
            ref = by_url.get(c["definition"])
            if ref is None:
                sys.exit(f"{sp['url']}: component {c['definition']} is not defined")
            comp_expr = COMPONENT_FIXES.get((sp["url"], ref["code"]), c["expression"])
            comps.append(
                {"code": ref["code"], "type": ref["type"], "url": ref["url"], "expression": comp_expr}
            )
        entry["component"] = comps
    return entry


def merge_us_core(
    data_dir: str, registry: dict[str, dict[str, dict]], elements: dict[str, dict]
) -> tuple[list[tuple[str, str, str, list[str]]], list[tuple[str, str, list[str]]]]:
    """Adds / merges the US Core parameters; returns (added, merged) for the README."""
    newest: dict[tuple[str, str], tuple[dict, list[str]]] = {}
    for version in US_CORE_VERSIONS:
        files = sorted(glob.glob(os.path.join(data_dir, "us-core", version, "SearchParameter-*.json")))
        if not files:
            sys.exit(f"no US Core {version} SearchParameters under {data_dir}/us-core/{version}")
        for path in files:
            sp = load_json(path)
            for base in sp["base"]:
                key = (base, sp["code"])
                versions = newest.get(key, (None, []))[1]
                newest[key] = (sp, versions + [version])
    added, merged = [], []
    for (rtype, code), (sp, versions) in sorted(newest.items()):
        params = registry.get(rtype)
        if params is None:
            sys.exit(f"US Core {sp['url']}: unknown base {rtype}")
        existing = params.get(code)
        if existing is None:
            entry = entry_for(sp, rtype, {}, elements)
            params[code] = entry
            added.append((rtype, code, entry["expression"], versions))
            continue
        r4 = {canonical_branch(b, rtype) for b in split_union(existing["expression"])}
        us = {canonical_branch(b, rtype) for b in split_union(sp["expression"])}
        if sp["type"] != existing["type"] or not us <= r4:
            sys.exit(
                f"US Core {sp['url']} ({versions}) indexes something other than R4 {existing['url']}: "
                f"{sp['type']} {sp['expression']!r} vs {existing['type']} {existing['expression']!r}"
            )
        merged.append((rtype, code, versions))
    return added, merged


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.path.join(crate, "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(crate, "src", "search", "generated"))
    args = ap.parse_args()

    types, domain, choice_types, choice_elements = concrete_types(args.data_dir, crate)
    bundle = load_json(os.path.join(args.data_dir, "fhir-r4", "search-parameters.json"))
    all_params = [e["resource"] for e in bundle["entry"]]
    by_url = {sp["url"]: sp for sp in all_params}
    elements = element_definitions(args.data_dir)

    registry: dict[str, dict[str, dict]] = {t: {} for t in types}
    skipped = []
    for sp in all_params:
        if sp["type"] == "special" or not sp.get("expression"):
            skipped.append(sp)
            continue
        for rtype in expand_bases(sp["base"], types, domain):
            if sp["code"] in registry[rtype]:
                sys.exit(f"duplicate code {sp['code']} on {rtype}")
            registry[rtype][sp["code"]] = entry_for(sp, rtype, by_url, elements)
    r4_count = sum(len(p) for p in registry.values())

    added, merged = merge_us_core(args.data_dir, registry, elements)

    compartment_def = load_json(os.path.join(args.data_dir, "fhir-r4", "compartmentdefinition-patient.json"))
    compartments: dict[str, list[str]] = {}
    for res in compartment_def["resource"]:
        codes = res.get("param", [])
        for code in codes:
            if code not in registry.get(res["code"], {}):
                sys.exit(f"Patient compartment: {res['code']} has no search parameter {code}")
        if codes:
            compartments[res["code"]] = sorted(codes)

    resources = {}
    for rtype in types:
        entry = {"params": [registry[rtype][c] for c in sorted(registry[rtype])]}
        if rtype in compartments:
            entry["compartment"] = compartments[rtype]
        resources[rtype] = entry
    doc = {
        "_generated": "Generated by tools/gen_search_params.py from the FHIR R4 (4.0.1) "
        "SearchParameters, the Patient CompartmentDefinition and US Core "
        + ", ".join(US_CORE_VERSIONS)
        + ". Do not edit by hand; re-run the tool.",
        "fhirVersion": "4.0.1",
        "choiceTypes": choice_types,
        "choiceElements": choice_elements,
        "resources": resources,
    }
    os.makedirs(args.out, exist_ok=True)
    out_json = os.path.join(args.out, "search_parameters.json")
    with open(out_json, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")

    total = sum(len(r["params"]) for r in resources.values())
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(
            "# Generated search parameters\n\n"
            "`search_parameters.json` is GENERATED by `tools/gen_search_params.py`; do not edit it by\n"
            "hand. Re-run from the crate root:\n\n"
            "    python3 tools/gen_search_params.py ../shared/data\n\n"
            "It is embedded into the binary by `src/search/registry.rs` (`include_str!`). The model is\n"
            "documented at the top of the tool.\n\n"
            f"{total} parameters on {len(types)} resource types: {r4_count} from the FHIR R4 "
            f"SearchParameters (multi-base and `Resource` parameters expanded per type) and "
            f"{len(added)} added from US Core {', '.join(US_CORE_VERSIONS)}. "
            f"{len(compartments)} types have Patient compartment parameters.\n\n"
            "Skipped R4 parameters (type `special` or no expression): "
            + ", ".join(f"`{sp['code']}` ({', '.join(sp['base'])})" for sp in skipped)
            + ".\n\n"
            "R4 errata fixed: `DocumentReference-relationship` components are paired as in R5\n"
            "(`relatesto` = `target`, `relation` = `code`).\n\n"
            "Reference targets: each SearchParameter's `target`, narrowed per type to the types its\n"
            "expression reaches (`.where(resolve() is X)`, or the element's `targetProfile`), so\n"
            "`Encounter.patient` (R4 `clinical-patient`, declared for Group and Patient) targets\n"
            "Patient only.\n\n"
            "## US Core parameters added (new codes)\n\n"
            "| type | code | expression | US Core versions |\n|---|---|---|---|\n"
            + "".join(
                f"| {t} | `{c}` | `{e.replace('|', '&#124;')}` | {', '.join(v)} |\n" for t, c, e, v in added
            )
            + "\n## US Core parameters merged into the R4 parameter of the same code\n\n"
            "Each indexes the same as, or a subset of, the R4 expression on that type, so the R4\n"
            "definition is kept:\n\n"
            + "".join(f"- {t} `{c}` ({', '.join(v)})\n" for t, c, v in merged)
        )
    print(
        f"wrote {out_json}: {total} parameters on {len(types)} types ({r4_count} R4, "
        f"{len(added)} US Core added, {len(merged)} US Core merged), {os.path.getsize(out_json)} bytes"
    )


if __name__ == "__main__":
    main()
