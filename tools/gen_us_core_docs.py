#!/usr/bin/env python3
"""Generates what the CapabilityStatement and the documentation say about US Core searches.

Two outputs, both committed:

- src/rest/generated/us_core_server.json: from the US Core server CapabilityStatements
  (3.1.1, 4.0.0, 6.1.0, 7.0.0), per resource type: the supported profiles (canonical|version),
  each US Core search parameter's expectation (SHALL/SHOULD/MAY) and documentation, and the
  search parameter combinations. `rest::capability` puts them into /metadata.
- docs/site/search-examples.json: for each of those searches (single parameters and
  combinations, as of US Core 7.0.0, else the newest version naming the type), a query that
  finds data in sample-data/ (what `kiln serve --load-sample-data` loads). Values are read
  from the resources with the parameter's FHIRPath expression (the simple subset the
  expressions of these parameters use); a combination takes all its values from one resource,
  so the resource matches them all. The docs pages show them and a test runs every one.

    python3 tools/gen_us_core_docs.py ../shared/data
"""
import datetime
import gzip
import json
import os
import re
import sys
import urllib.parse

VERSIONS = ["3.1.1", "4.0.0", "6.1.0", "7.0.0"]
EXPECTATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-expectation"
COMBINATION = "http://hl7.org/fhir/StructureDefinition/capabilitystatement-search-parameter-combination"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def expectation(element):
    for extension in element.get("extension", []):
        if extension.get("url") == EXPECTATION:
            return extension.get("valueCode")
    return None


def server_statements(data):
    """Per type, newest version last: the resource entries of each US Core version."""
    per_type = {}
    for version in VERSIONS:
        path = os.path.join(data, "us-core", version, "CapabilityStatement-us-core-server.json")
        with open(path, encoding="utf-8") as handle:
            statement = json.load(handle)
        for resource in statement["rest"][0]["resource"]:
            per_type.setdefault(resource["type"], []).append((version, resource))
    return per_type


def us_core_server(per_type):
    out = {}
    for resource_type, entries in sorted(per_type.items()):
        profiles = []
        for version, resource in entries:
            for profile in resource.get("supportedProfile", []) + ([resource["profile"]] if "profile" in resource else []):
                canonical = profile if "|" in profile else f"{profile}|{version}"
                if canonical not in profiles:
                    profiles.append(canonical)
        _, newest = entries[-1]
        params = {}
        for param in newest.get("searchParam", []):
            params[param["name"]] = {
                "expectation": expectation(param) or "MAY",
                "documentation": param.get("documentation", "").strip(),
            }
        combinations = []
        for extension in newest.get("extension", []):
            if extension.get("url") != COMBINATION:
                continue
            required = [e["valueString"] for e in extension["extension"] if e["url"] == "required"]
            combinations.append({"expectation": expectation(extension) or "MAY", "required": required})
        out[resource_type] = {"profiles": profiles, "params": params, "combinations": combinations}
    return out


# --- reading values with a FHIRPath expression (the subset these parameters use) -----------

def split_top(text, separator):
    """`text` split at `separator` outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, False, ""
    for char in text:
        if char == "'":
            quote = not quote
        elif not quote and char == "(":
            depth += 1
        elif not quote and char == ")":
            depth -= 1
        if not quote and depth == 0 and char == separator:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts]


def evaluate(expression, resource, choice_elements):
    nodes = []
    for path in split_top(expression, "|"):
        nodes.extend(evaluate_path(path, resource, choice_elements))
    return nodes


def evaluate_path(path, resource, choice_elements):
    path = path.strip()
    match = re.fullmatch(r"\((.*) as (\w+)\)", path)
    if match:
        path = f"{match.group(1)}.as({match.group(2)})"
    steps = split_top(path, ".")
    if steps and steps[0][:1].isupper():
        steps = steps[1:]
    nodes = [(resource, resource.get("resourceType"))]
    for step in steps:
        nodes = apply(step, nodes, choice_elements)
    return nodes


def apply(step, nodes, choice_elements):
    out = []
    call = re.fullmatch(r"(\w+)\((.*)\)", step)
    if call:
        name, argument = call.groups()
        if name in ("as", "ofType"):
            return [(v, t) for v, t in nodes if t is None or t.lower() == argument.lower()]
        if name == "where":
            resolve = re.fullmatch(r"resolve\(\) is (\w+)", argument)
            if resolve:
                return [(v, t) for v, t in nodes
                        if isinstance(v, dict) and str(v.get("reference", "")).startswith(resolve.group(1) + "/")]
            equals = re.fullmatch(r"(\w+)\s*=\s*'([^']*)'", argument)
            if equals:
                return [(v, t) for v, t in nodes if isinstance(v, dict) and v.get(equals.group(1)) == equals.group(2)]
        return []
    for value, _ in nodes:
        if not isinstance(value, dict):
            continue
        found = []
        if step in value:
            found = [(value[step], None)]
        elif step in choice_elements:
            for key, item in value.items():
                if key.startswith(step) and key[len(step):][:1].isupper():
                    found.append((item, key[len(step):]))
        for item, kind in found:
            for one in item if isinstance(item, list) else [item]:
                out.append((one, kind))
    return out


# --- search values ---------------------------------------------------------------------

def day_before(text):
    day = datetime.date.fromisoformat(text[:10]) if len(text) >= 10 else datetime.date(int(text[:4]), 1, 1)
    return (day - datetime.timedelta(days=1)).isoformat()


def search_value(kind, value):
    """The search value that matches `value` (a FHIR element) for a parameter of `kind`."""
    if kind == "token":
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            codings = value.get("coding", [value] if "code" in value else [])
            for coding in codings:
                if coding.get("code"):
                    system = coding.get("system")
                    return f"{system}|{coding['code']}" if system else coding["code"]
            if value.get("value"):
                system = value.get("system", "")
                return f"{system}|{value['value']}" if ":" in system else str(value["value"])
        return None
    if kind == "reference":
        reference = value.get("reference", "") if isinstance(value, dict) else ""
        return reference if re.fullmatch(r"[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}", reference) else None
    if kind == "string":
        if isinstance(value, str):
            return value.split()[0] if value.split() else None
        if isinstance(value, dict):
            for key in ("family", "city", "state", "postalCode", "text"):
                if isinstance(value.get(key), str):
                    return value[key].split()[0]
            for key in ("given", "line"):
                if value.get(key):
                    return value[key][0].split()[0]
        return None
    if kind == "date":
        if isinstance(value, str) and re.match(r"\d{4}", value):
            return "ge" + day_before(value)
        if isinstance(value, dict):
            for key in ("start", "end"):
                if isinstance(value.get(key), str):
                    return "ge" + day_before(value[key])
        return None
    if kind == "uri" and isinstance(value, str):
        return value
    return None


SAFE = "-._~/:|,"


def encode(value):
    return urllib.parse.quote(value, safe=SAFE)


def resolve(value, names):
    if isinstance(value, dict):
        return {
            key: names.get(item, item) if key == "reference" and isinstance(item, str) else resolve(item, names)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [resolve(item, names) for item in value]
    return value


def load_sample():
    resources = []
    path = os.path.join(ROOT, "sample-data", "synthea-small.ndjson.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        synthea = [json.loads(line) for line in handle if line.strip()]
    for name in ("uscore_bundle_patient_85.json.gz", "uscore_bundle_patient_355.json.gz"):
        with gzip.open(os.path.join(ROOT, "sample-data", name), "rt", encoding="utf-8") as handle:
            bundle = json.load(handle)
        # A transaction's urn:uuid references become the Type/id the import stores.
        names = {
            entry["fullUrl"]: f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
            for entry in bundle.get("entry", [])
            if "fullUrl" in entry and "id" in entry["resource"]
        }
        resources.extend(resolve(entry["resource"], names) for entry in bundle.get("entry", []))
    # The US Core patients first: they carry every US Core element.
    return resources + synthea


def examples(server, registry, resources):
    choice_elements = set(registry["choiceElements"])
    by_type = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    out = []
    for resource_type, entry in server.items():
        params = {p["code"]: p for p in registry["resources"].get(resource_type, {}).get("params", [])}
        searches = [[name] for name in entry["params"]] + [c["required"] for c in entry["combinations"]]
        for names in searches:
            if any(name not in params for name in names):
                continue
            query = first_match(names, params, by_type.get(resource_type, []), choice_elements)
            if query is not None:
                out.append({"resourceType": resource_type, "params": names, "query": query})
    return out


def first_match(names, params, candidates, choice_elements):
    for resource in candidates:
        pairs = []
        for name in names:
            param = params[name]
            if name == "_id":
                pairs.append((name, resource["id"]))
                continue
            values = [search_value(param["type"], v) for v, _ in evaluate(param["expression"], resource, choice_elements)]
            values = [v for v in values if v]
            if not values:
                break
            pairs.append((name, values[0]))
        else:
            return "&".join(f"{name}={encode(value)}" for name, value in pairs)
    return None


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    server = us_core_server(server_statements(data))
    with open(os.path.join(ROOT, "src", "search", "generated", "search_parameters.json"), encoding="utf-8") as handle:
        registry = json.load(handle)
    found = examples(server, registry, load_sample())
    os.makedirs(os.path.join(ROOT, "src", "rest", "generated"), exist_ok=True)
    with open(os.path.join(ROOT, "src", "rest", "generated", "us_core_server.json"), "w", encoding="utf-8") as handle:
        json.dump(server, handle, indent=1, sort_keys=True)
        handle.write("\n")
    with open(os.path.join(ROOT, "docs", "site", "search-examples.json"), "w", encoding="utf-8") as handle:
        json.dump(found, handle, indent=1)
        handle.write("\n")
    searches = sum(len(e["params"]) + len(e["combinations"]) for e in server.values())
    print(f"{len(server)} US Core types, {searches} searches, {len(found)} with an example on the sample data")


if __name__ == "__main__":
    main()
