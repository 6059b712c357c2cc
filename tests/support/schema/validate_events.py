"""Validates health-bridge events against docs/contract/events.schema.json.

usage: validate_events.py SCHEMA FILE [--data]
FILE holds one JSON document per line: whole CloudEvents, or with --data the
`data` of each (Kafka binary mode). Prints one line per invalid document and
exits 1 if there was any.
"""
import json
import sys

import jsonschema


def main() -> int:
    schema_path, events_path = sys.argv[1], sys.argv[2]
    data_only = "--data" in sys.argv[3:]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    if data_only:
        schema = {"$ref": "#/$defs/data", "$defs": schema["$defs"]}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    failures = 0
    with open(events_path, encoding="utf-8", errors="surrogateescape") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except json.JSONDecodeError as error:
                print(f"document {number}: not JSON: {error}")
                failures += 1
                continue
            for error in validator.iter_errors(document):
                path = "/".join(str(part) for part in error.absolute_path) or "(root)"
                print(f"document {number}: {path}: {error.message}")
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
