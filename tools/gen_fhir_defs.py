#!/usr/bin/env python3
"""Generate compact FHIR R4 structure definitions for kiln's structural validator.

Usage:
    python3 tools/gen_fhir_defs.py [DATA_DIR] [--out OUT_DIR]

DATA_DIR defaults to ../shared/data/fhir-r4 (relative to the crate root) and must
contain the official FHIR R4 (4.0.1) definition bundles profiles-resources.json,
profiles-types.json and valuesets.json. OUT_DIR defaults to src/fhir/generated (relative
to the crate root). The output is deterministic (sorted keys, minified) and meant to be committed:

    src/fhir/generated/r4_definitions.json   compact element model (see below)
    src/fhir/generated/README.md             provenance note

Output model (``r4_definitions.json``):

    {
      "_generated": "...do not edit...",
      "fhirVersion": "4.0.1",
      "resourceTypes": ["Account", ...],          # concrete resource types, sorted
      "complexTypes": ["Address", ...],           # concrete complex datatypes, sorted
      "primitives": {"date": {"json": "string", "regex": "...", "maxLength": n?}, ...},
      "valueSets": {"http://hl7.org/fhir/ValueSet/administrative-gender":
                      ["male", "female", "other", "unknown"], ...},
      "types": {
        "Patient": [[name, min, max, type, valueSet?], ...],
        "Patient.contact": [...],                 # backbone elements, named by path
        "Quantity": [...],
        "Element": [...],                         # id + extension: content of `_name` objects
        ...
      }
    }

Each element is ``[name, min, max, type]`` or ``[name, min, max, type, valueSet]``:
  * ``name`` is the last path segment as in the snapshot (choice elements keep
    their ``[x]`` suffix, e.g. ``value[x]``);
  * ``min`` is an integer; ``max`` is the integer maximum or the string ``"*"``;
  * ``type`` is a type name (primitive, complex datatype, ``Resource`` for any
    embedded resource, or the key of a backbone entry in ``types`` such as
    ``Observation.component``; ``contentReference`` elements point to the referenced
    backbone) or, for choice elements, a list of type names;
  * ``valueSet`` (only on elements of type ``code`` with a *required* binding whose value
    set could be enumerated) is the versionless canonical URL of the value set, a key of
    ``valueSets``.

``valueSets`` holds, once per value set, its codes in definition order. A value set is
enumerated from its ``compose`` (valuesets.json) when every part can be applied:
``include`` entries that list ``concept`` codes (also of a code system not present, e.g.
the UCUM units of ``units-of-time``), that include a whole CodeSystem present in
valuesets.json with ``content = complete`` (all concepts, nested ones included), or that
import other value sets (``valueSet``, enumerated recursively; intersected with each other
and with the ``system`` part, as the spec defines); ``exclude`` entries of the same kinds
are subtracted. Value sets using a ``filter``, a whole code system that is not present
(UCUM, BCP-13 mime types, ISO 4217 currencies, ...) or anything else are not enumerated; their
bindings are not checked (the tool lists them, and they are named in README.md).
Codes are compared without their system: a ``code`` element carries no system.

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


class Unenumerable(Exception):
    """A value set whose codes cannot be listed from the available definitions."""


def all_concepts(concepts: list[dict], out: list[str]) -> list[str]:
    """The codes of a CodeSystem's concept tree (parents before their children)."""
    for c in concepts:
        out.append(c["code"])
        all_concepts(c.get("concept", []), out)
    return out


def dedupe(codes) -> list[str]:
    return list(dict.fromkeys(codes))


class Terminology:
    """Enumerates the value sets of valuesets.json (see the module documentation)."""

    INCLUDE_KEYS = {"id", "extension", "system", "version", "concept", "valueSet"}
    COMPOSE_KEYS = {"id", "extension", "lockedDate", "inactive", "include", "exclude"}

    def __init__(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            bundle = json.load(f)
        self.value_sets: dict[str, dict] = {}
        self.code_systems: dict[str, dict] = {}
        for e in bundle.get("entry", []):
            r = e.get("resource", {})
            if r.get("resourceType") == "ValueSet":
                self.value_sets[r["url"]] = r
            elif r.get("resourceType") == "CodeSystem":
                self.code_systems[r["url"]] = r
        self._done: dict[str, list[str] | Unenumerable] = {}
        self._active: set[str] = set()
        self.warnings: list[str] = []

    def enumerate(self, canonical: str) -> list[str]:
        """The codes of the value set `canonical` (`url` or `url|version`), in definition
        order; raises Unenumerable with the reason."""
        url, _, version = canonical.partition("|")
        vs = self.value_sets.get(url)
        if vs is None:
            raise Unenumerable(f"value set {url} is not in valuesets.json")
        if version and vs.get("version") != version:
            raise Unenumerable(f"value set {url}: version {version} wanted, {vs.get('version')} available")
        done = self._done.get(url)
        if isinstance(done, Unenumerable):
            raise done
        if done is not None:
            return done
        if url in self._active:
            raise Unenumerable(f"value set {url} imports itself")
        self._active.add(url)
        try:
            codes = self._compose(url, vs)
        except Unenumerable as e:
            self._done[url] = e
            raise
        finally:
            self._active.discard(url)
        self._done[url] = codes
        return codes

    def _compose(self, url: str, vs: dict) -> list[str]:
        compose = vs.get("compose")
        if not compose:
            raise Unenumerable(f"value set {url} has no compose")
        unknown = set(compose) - self.COMPOSE_KEYS
        if unknown:
            raise Unenumerable(f"value set {url}: unsupported compose element(s) {sorted(unknown)}")
        codes: list[str] = []
        for inc in compose.get("include", []):
            codes.extend(self._part(url, inc))
        excluded: set[str] = set()
        for exc in compose.get("exclude", []):
            excluded.update(self._part(url, exc))
        codes = dedupe(c for c in codes if c not in excluded)
        if not codes:
            raise Unenumerable(f"value set {url} is empty")
        return codes

    def _part(self, url: str, inc: dict) -> list[str]:
        """The codes of one include / exclude entry."""
        if "filter" in inc:
            raise Unenumerable(f"value set {url} uses a filter")
        unknown = set(inc) - self.INCLUDE_KEYS
        if unknown:
            raise Unenumerable(f"value set {url}: unsupported include element(s) {sorted(unknown)}")
        parts: list[list[str]] = []
        system = inc.get("system")
        if system is not None:
            cs = self.code_systems.get(system)
            if "concept" in inc:
                listed = [c["code"] for c in inc["concept"]]
                if cs is not None and cs.get("content") == "complete":
                    known = set(all_concepts(cs.get("concept", []), []))
                    for code in listed:
                        if code not in known:
                            self.warnings.append(f"{url}: code {code} is not defined in {system}")
                parts.append(listed)
            else:
                if cs is None:
                    raise Unenumerable(f"value set {url}: code system {system} is not in valuesets.json")
                if cs.get("content") != "complete":
                    raise Unenumerable(f"value set {url}: code system {system} has content {cs.get('content')}")
                if "version" in inc and inc["version"] != cs.get("version"):
                    raise Unenumerable(
                        f"value set {url}: code system {system} version {inc['version']} wanted, "
                        f"{cs.get('version')} available"
                    )
                parts.append(all_concepts(cs.get("concept", []), []))
        elif "concept" in inc:
            raise Unenumerable(f"value set {url}: concepts without a system")
        for ref in inc.get("valueSet", []):
            parts.append(self.enumerate(ref))
        if not parts:
            raise Unenumerable(f"value set {url}: empty include")
        # Several parts of one include are intersected (by code: a `code` element has no system).
        others = [set(p) for p in parts[1:]]
        return [c for c in parts[0] if all(c in o for o in others)]


class Bindings:
    """Required bindings of `code` elements: enumerates each value set once."""

    def __init__(self, term: Terminology) -> None:
        self.term = term
        self.value_sets: dict[str, list[str]] = {}  # versionless url -> codes
        self.skipped: dict[str, str] = {}  # versionless url -> reason
        self.elements = 0  # bound elements that are checked
        self.unchecked: dict[str, list[str]] = {}  # skipped url -> bound element paths

    def value_set_for(self, el: dict, ty) -> str | None:
        """The key in `valueSets` to check element `el` (of generated type `ty`) against."""
        binding = el.get("binding")
        if ty != "code" or not binding or binding.get("strength") != "required":
            return None
        canonical = binding.get("valueSet")
        if not canonical:
            return None
        url = canonical.split("|", 1)[0]
        if url not in self.value_sets and url not in self.skipped:
            try:
                self.value_sets[url] = self.term.enumerate(canonical)
            except Unenumerable as e:
                self.skipped[url] = str(e)
        if url in self.skipped:
            self.unchecked.setdefault(url, []).append(el["path"])
            return None
        self.elements += 1
        return url


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


def build_types(sd: dict, is_resource: bool, out: dict, bindings: Bindings) -> None:
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
        entry = [name, int(el["min"]), parse_max(el["max"]), ty]
        value_set = bindings.value_set_for(el, ty)
        if value_set is not None:
            entry.append(value_set)
        lists[parent].append(entry)
    for key, value in lists.items():
        if key in out:
            sys.exit(f"duplicate type entry {key}")
        out[key] = value


def summary_elements(sd: dict) -> list[str]:
    """Top-level elements a `_summary=true` read keeps: those marked isSummary, and the
    mandatory ones (without the `[x]` of choice elements)."""
    names = []
    for el in sd["snapshot"]["element"]:
        path = el["path"]
        if path.count(".") != 1:
            continue
        if el.get("isSummary") or int(el.get("min", 0)) >= 1:
            names.append(path.split(".", 1)[1].removesuffix("[x]"))
    return sorted(set(names))


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
    bindings = Bindings(Terminology(os.path.join(args.data_dir, "valuesets.json")))

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
            build_types(sd, False, types, bindings)
            continue
        if sd.get("derivation") != "specialization" or sd.get("abstract", False):
            continue  # BackboneElement (abstract), SimpleQuantity / MoneyQuantity (constraints)
        if sd["kind"] == "primitive-type":
            primitives[sd["type"]] = primitive_info(sd)
        elif sd["kind"] == "complex-type":
            complex_types.append(sd["type"])
            build_types(sd, False, types, bindings)
    by_type = {sd["type"]: sd for sd in res_sds}
    for name in resource_types:
        build_types(by_type[name], True, types, bindings)
    summary = {name: summary_elements(by_type[name]) for name in resource_types}

    # Sanity: every referenced type must be known.
    known = set(primitives) | set(types) | {"Resource"}
    max_children = 0
    for key, elements in types.items():
        max_children = max(max_children, len(elements))
        for _name, _min, _max, ty, *_vs in elements:
            for t in ty if isinstance(ty, list) else [ty]:
                if t not in known:
                    sys.exit(f"{key}: unknown type {t}")
    if max_children > 128:
        sys.exit(f"a type has {max_children} child elements; the validator supports at most 128")

    doc = {
        "_generated": "Generated by tools/gen_fhir_defs.py from the FHIR R4 (4.0.1) "
        "profiles-resources.json, profiles-types.json and valuesets.json. Do not edit by hand; "
        "re-run the tool.",
        "fhirVersion": "4.0.1",
        "resourceTypes": resource_types,
        "complexTypes": sorted(complex_types),
        "primitives": primitives,
        "types": types,
        "valueSets": bindings.value_sets,
        "summary": summary,
    }
    os.makedirs(args.out, exist_ok=True)
    out_json = os.path.join(args.out, "r4_definitions.json")
    with open(out_json, "w", encoding="utf-8", newline="\n") as f:
        json.dump(doc, f, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")
    unchecked = sum(len(paths) for paths in bindings.unchecked.values())
    skipped = "".join(
        f"- `{url}` ({reason.removeprefix(f'value set {url}: ')}): "
        + ", ".join(f"`{p}`" for p in sorted(bindings.unchecked.get(url, [])))
        + "\n"
        for url, reason in sorted(bindings.skipped.items())
    )
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8", newline="\n") as f:
        f.write(
            "# Generated FHIR definitions\n\n"
            "`r4_definitions.json` is GENERATED by `tools/gen_fhir_defs.py` from the official FHIR R4\n"
            "(4.0.1, `hl7.fhir.r4.core`) bundles `profiles-resources.json`, `profiles-types.json` and\n"
            "`valuesets.json`. Do not edit it by hand; re-run from the crate root:\n\n"
            "    python3 tools/gen_fhir_defs.py ../shared/data/fhir-r4\n\n"
            "It is embedded into the binary by `src/fhir/validate/definitions.rs` (`include_str!`).\n"
            "The model is documented at the top of the tool.\n\n"
            f"Required bindings of `code` elements: {len(bindings.value_sets)} value sets enumerated "
            f"({bindings.elements} elements checked); {len(bindings.skipped)} value sets not enumerable, "
            f"so these {unchecked} elements are not checked:\n\n" + skipped
        )
    for w in bindings.term.warnings:
        print(f"warning: {w}", file=sys.stderr)
    for url, reason in sorted(bindings.skipped.items()):
        print(f"not enumerated: {reason}", file=sys.stderr)
    print(
        f"wrote {out_json}: {len(resource_types)} resource types, {len(complex_types)} complex types, "
        f"{len(primitives)} primitives, {len(types)} type entries, "
        f"{len(bindings.value_sets)} value sets enumerated ({bindings.elements} bound code elements), "
        f"{len(bindings.skipped)} skipped ({unchecked} elements), "
        f"{os.path.getsize(out_json)} bytes"
    )


if __name__ == "__main__":
    main()
