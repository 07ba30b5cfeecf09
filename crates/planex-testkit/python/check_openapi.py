"""Validates an OpenAPI 3.1 document, and responses against it (planex's tests run it).

Usage: check_openapi.py SPEC.json [SAMPLES.json]

1. openapi-spec-validator on the whole document.
2. What that validator does not check: every `in: path` parameter names a `{...}` of its path
   template and is required; query and header parameters are not named in the template.
3. Each sample `{"path", "method", "status", "body"}` (`path` is the template, e.g.
   `/v1/tasks/{id}`): the operation documents that status, and a JSON body validates against
   the documented schema (OpenAPI 3.1 dialect, `$ref`s resolved within the document).

Exit status 0 when everything holds; else 1, with one line per problem.
"""

import json
import string
import sys

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate


def template_names(path):
    return {field for _, field, _, _ in string.Formatter().parse(path) if field}


def check_parameters(spec, problems):
    for path, item in spec.get("paths", {}).items():
        names = template_names(path)
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            params = item.get("parameters", []) + operation.get("parameters", [])
            for param in params:
                where = f"{method.upper()} {path} parameter {param.get('name')!r}"
                if param.get("in") == "path":
                    if param.get("name") not in names:
                        problems.append(f"{where} is in: path but the template has no {{{param.get('name')}}}")
                    if param.get("required") is not True:
                        problems.append(f"{where} is a path parameter and must be required")
                elif param.get("name") in names:
                    problems.append(f"{where} is in: {param.get('in')} but named in the template")


def check_sample(spec, sample, problems):
    path, method, status = sample["path"], sample["method"].lower(), str(sample["status"])
    where = f"{method.upper()} {path} -> {status}"
    operation = spec.get("paths", {}).get(path, {}).get(method)
    if operation is None:
        problems.append(f"{where}: the operation is not documented")
        return
    response = operation.get("responses", {}).get(status) or operation.get("responses", {}).get("default")
    if response is None:
        problems.append(f"{where}: status not documented (documented: {sorted(operation.get('responses', {}))})")
        return
    body = sample.get("body")
    content = response.get("content", {})
    schema = (content.get("application/json") or {}).get("schema")
    if body is None or schema is None:
        if body is not None and content and "application/json" not in content:
            problems.append(f"{where}: a JSON body, but the response documents {sorted(content)}")
        return
    # `$ref: #/components/...` resolves against the root of the schema being validated.
    rooted = dict(schema, components=spec.get("components", {}))
    for error in OAS31Validator(rooted).iter_errors(body):
        at = "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{where}: body at /{at}: {error.message[:300]}")


def main():
    spec = json.load(open(sys.argv[1]))
    problems = []
    try:
        validate(spec)
    except Exception as error:
        problems.append(f"openapi-spec-validator: {error}")
    if not str(spec.get("openapi", "")).startswith("3.1"):
        problems.append(f"openapi is {spec.get('openapi')!r}, expected 3.1.x")
    check_parameters(spec, problems)
    samples = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else []
    for sample in samples:
        check_sample(spec, sample, problems)
    for problem in problems:
        print(problem)
    print(f"{len(spec.get('paths', {}))} paths, {len(samples)} samples, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
