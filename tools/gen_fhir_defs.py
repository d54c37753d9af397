#!/usr/bin/env python3
"""Generate compact FHIR R4 structure definitions for kiln's structural validator.

Usage:
    python3 tools/gen_fhir_defs.py [DATA_DIR] [--out OUT_DIR]

DATA_DIR defaults to ../shared/data/fhir-r4 (relative to the crate root) and must
contain the official FHIR R4 (4.0.1) definition bundles profiles-resources.json and
profiles-types.json. OUT_DIR defaults to src/fhir/generated (relative to the crate
root). The output is deterministic (sorted keys, minified) and meant to be committed:

    src/fhir/generated/r4_definitions.json   compact element model (see below)
    src/fhir/generated/README.md             provenance note

Output model (``r4_definitions.json``):

    {
      "_generated": "...do not edit...",
      "fhirVersion": "4.0.1",
      "resourceTypes": ["Account", ...],          # concrete resource types, sorted
      "complexTypes": ["Address", ...],           # concrete complex datatypes, sorted
      "primitives": {"date": {"json": "string", "regex": "...", "maxLength": n?}, ...},
      "types": {
        "Patient": [[name, min, max, type], ...],
        "Patient.contact": [...],                 # backbone elements, named by path
        "Quantity": [...],
        "Element": [...],                         # id + extension: content of `_name` objects
        ...
      }
    }

Each element is ``[name, min, max, type]``:
  * ``name`` is the last path segment as in the snapshot (choice elements keep
    their ``[x]`` suffix, e.g. ``value[x]``);
  * ``min`` is an integer; ``max`` is the integer maximum or the string ``"*"``;
  * ``type`` is a type name (primitive, complex datatype, ``Resource`` for any
    embedded resource, or the key of a backbone entry in ``types`` such as
    ``Observation.component``; ``contentReference`` elements point to the referenced
    backbone) or, for choice elements, a list of type names.
SimpleQuantity / MoneyQuantity (constraints on Quantity) are mapped onto Quantity.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SYSTEM_DEFAULTS = {
    "String": "string",
    "Boolean": "boolean",
    "Integer": "integer",
    "Decimal": "decimal",
    "Date": "date",
    "DateTime": "dateTime",
    "Time": "time",
}
QUANTITY_CONSTRAINTS = {"SimpleQuantity", "MoneyQuantity"}
INTEGER_PRIMITIVES = {"integer", "positiveInt", "unsignedInt"}


def load_bundle(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        bundle = json.load(f)
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("resource", {}).get("resourceType") == "StructureDefinition"
    ]


def type_code(el: dict, ty: dict, root_name: str, is_resource: bool) -> str:
    code = ty["code"]
    if code.startswith(SYSTEM_PREFIX):
        # The id of a resource is an `id`; every other system-typed element (Element.id,
        # Extension.url, ...) carries its FHIR type in an extension.
        if is_resource and el["path"] == root_name + ".id":
            return "id"
        for ext in ty.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return SYSTEM_DEFAULTS[code[len(SYSTEM_PREFIX) :]]
    if code in QUANTITY_CONSTRAINTS:
        return "Quantity"
    return code


def parse_max(value: str):
    return "*" if value == "*" else int(value)


def build_types(sd: dict, is_resource: bool, out: dict) -> None:
    """Add the element lists of one StructureDefinition (and its backbones) to out."""
    root = sd["type"]
    elements = sd["snapshot"]["element"]
    paths = [el["path"] for el in elements]
    # Paths that own child elements are backbone (or datatype-internal Element) types.
    parents = {p.rsplit(".", 1)[0] for p in paths if "." in p}
    lists: dict[str, list] = {root: []}
    for p in sorted(parents):
        lists.setdefault(p, [])
    for el in elements:
        path = el["path"]
        if "." not in path:
            continue
        parent, name = path.rsplit(".", 1)
        if parent not in lists:
            sys.exit(f"{sd['id']}: element {path} has no parent entry")
        if "contentReference" in el:
            target = el["contentReference"].lstrip("#")
            if target not in parents:
                sys.exit(f"{sd['id']}: contentReference {target} is not a backbone element")
            ty = target
        elif path in parents:
            ty = path
        else:
            codes = []
            for t in el.get("type", []):
                c = type_code(el, t, root, is_resource)
                if c not in codes:
                    codes.append(c)
            if not codes:
                sys.exit(f"{sd['id']}: element {path} has no type")
            if name.endswith("[x]"):
                ty = codes
            else:
                if len(codes) != 1:
                    sys.exit(f"{sd['id']}: non-choice element {path} has types {codes}")
                ty = codes[0]
        lists[parent].append([name, int(el["min"]), parse_max(el["max"]), ty])
    for key, value in lists.items():
        if key in out:
            sys.exit(f"duplicate type entry {key}")
        out[key] = value


def primitive_info(sd: dict) -> dict:
    name = sd["type"]
    info: dict = {}
    if name == "boolean":
        info["json"] = "boolean"
    elif name in INTEGER_PRIMITIVES:
        info["json"] = "integer"
    elif name == "decimal":
        info["json"] = "number"
    else:
        info["json"] = "string"
    for el in sd["snapshot"]["element"]:
        if el["path"] != name + ".value":
            continue
        if "maxLength" in el:
            info["maxLength"] = el["maxLength"]
        for t in el.get("type", []):
            for ext in t.get("extension", []):
                if ext.get("url") == REGEX_EXT:
                    info["regex"] = ext["valueString"]
    return info


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    crate = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data_dir", nargs="?", default=os.path.join(crate, "..", "shared", "data", "fhir-r4"))
    ap.add_argument("--out", default=os.path.join(crate, "src", "fhir", "generated"))
    args = ap.parse_args()

    res_sds = load_bundle(os.path.join(args.data_dir, "profiles-resources.json"))
    type_sds = load_bundle(os.path.join(args.data_dir, "profiles-types.json"))

    resource_types = sorted(
        sd["type"]
        for sd in res_sds
        if sd.get("kind") == "resource"
        and not sd.get("abstract", False)
        and sd.get("derivation") == "specialization"
    )
    primitives = {}
    complex_types = []
    types: dict[str, list] = {}
    for sd in sorted(type_sds, key=lambda s: s["id"]):
        if sd["type"] == "Element":
            # Abstract, but its content model (id + extension) is what a primitive's
            # `_name` sibling object holds in JSON.
            build_types(sd, False, types)
            continue
        if sd.get("derivation") != "specialization" or sd.get("abstract", False):
            continue  # BackboneElement (abstract), SimpleQuantity / MoneyQuantity (constraints)
        if sd["kind"] == "primitive-type":
            primitives[sd["type"]] = primitive_info(sd)
        elif sd["kind"] == "complex-type":
            complex_types.append(sd["type"])
            build_types(sd, False, types)
    by_type = {sd["type"]: sd for sd in res_sds}
    for name in resource_types:
        build_types(by_type[name], True, types)

    # Sanity: every referenced type must be known.
    known = set(primitives) | set(types) | {"Resource"}
    max_children = 0
    for key, elements in types.items():
        max_children = max(max_children, len(elements))
        for _name, _min, _max, ty in elements:
            for t in ty if isinstance(ty, list) else [ty]:
                if t not in known:
                    sys.exit(f"{key}: unknown type {t}")
    if max_children > 128:
        sys.exit(f"a type has {max_children} child elements; the validator supports at most 128")

    doc = {
        "_generated": "Generated by tools/gen_fhir_defs.py from the FHIR R4 (4.0.1) "
        "profiles-resources.json and profiles-types.json. Do not edit by hand; re-run the tool.",
        "fhirVersion": "4.0.1",
        "resourceTypes": resource_types,
        "complexTypes": sorted(complex_types),
        "primitives": primitives,
        "types": types,
    }
    os.makedirs(args.out, exist_ok=True)
    out_json = os.path.join(args.out, "r4_definitions.json")
    with open(out_json, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(
            "# Generated FHIR definitions\n\n"
            "`r4_definitions.json` is GENERATED by `tools/gen_fhir_defs.py` from the official FHIR R4\n"
            "(4.0.1, `hl7.fhir.r4.core`) bundles `profiles-resources.json` and `profiles-types.json`.\n"
            "Do not edit it by hand; re-run from the crate root:\n\n"
            "    python3 tools/gen_fhir_defs.py ../shared/data/fhir-r4\n\n"
            "It is embedded into the binary by `src/fhir/validate/definitions.rs` (`include_str!`).\n"
            "The model is documented at the top of the tool.\n"
        )
    print(
        f"wrote {out_json}: {len(resource_types)} resource types, {len(complex_types)} complex types, "
        f"{len(primitives)} primitives, {len(types)} type entries, {os.path.getsize(out_json)} bytes"
    )


if __name__ == "__main__":
    main()
