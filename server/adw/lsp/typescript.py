"""The extension's `ServerCommands` type map, generated from the command models' JSON schemas:
`python -m adw.lsp.typescript > extension/src/protocol.generated.ts` (tests/lsp/test_lsp_params.py checks it)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from adw.errors import Action
from adw.lsp.params import command_schemas

GENERATED_TS = "extension/src/protocol.generated.ts"


def typescript() -> str:
    """The extension's `ServerCommands` type map, written from the JSON schemas:
    each command's positional arguments as a tuple, so the TypeScript compiler checks every call."""
    lines = [
        "// Generated from server/adw/lsp/params.py by `python -m adw.lsp.typescript`: do not edit.",
        "// tests/lsp/test_lsp_params.py fails when this file and the server's models differ.",
        "",
        '/** Positional arguments of each `adw.server.*` command; `null` means "not given". */',
        "export interface ServerCommands {",
    ]
    for name, schema in command_schemas().items():
        required = set(schema.get("required", []))
        defs = schema.get("$defs", {})
        fields = list(schema["properties"].items())
        # A tuple's optional elements come last: one followed by a required argument is written `T | null`.
        last_required = max((i for i, (field, _) in enumerate(fields) if field in required), default=-1)
        arguments = [
            f"{field}: {_ts(spec, defs)}" if field in required
            else f"{field}{'?' if i > last_required else ''}: {_nullable(spec, defs)}"
            for i, (field, spec) in enumerate(fields)
        ]
        lines.append(f"  {name}: [{', '.join(arguments)}];")
    action = TypeAdapter(Action).json_schema(mode="serialization")
    lines += [
        "}",
        "",
        "/** A button of a failure's toast: a failed command's JSON-RPC error carries them in `data.actions`. */",
        f"export type ErrorAction = {_ts(action, action.get('$defs', {}))};",
    ]
    return "\n".join([*lines, ""])


def _nullable(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """An optional argument's type: `null` stands for "not given" whatever the type."""
    options = schema.get("anyOf", [])
    return _ts(schema, defs) if {"type": "null"} in options else f"{_ts(schema, defs)} | null"


def _ts(schema: dict[str, Any], defs: dict[str, Any]) -> str:
    """A TypeScript type for the JSON schema subset pydantic writes for these models."""
    if "$ref" in schema:
        return _ts(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if "anyOf" in schema or "oneOf" in schema:
        options = schema["anyOf"] if "anyOf" in schema else schema["oneOf"]
        return " | ".join(_ts(option, defs) for option in options)
    if "const" in schema:
        return f"'{schema['const']}'"
    if "enum" in schema:
        return " | ".join(f"'{value}'" for value in schema["enum"])
    kind = schema.get("type")
    if kind == "array":
        item = _ts(schema["items"], defs)
        return f"({item})[]" if "|" in item else f"{item}[]"
    if kind == "object":
        required = set(schema.get("required", []))
        fields = [f"{key}{'' if key in required else '?'}: {_ts(value, defs)}"
                  for key, value in schema.get("properties", {}).items()]
        return "{ " + "; ".join(fields) + " }"
    return {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}.get(
        str(kind), "null"
    )


if __name__ == "__main__":
    print(typescript(), end="")
