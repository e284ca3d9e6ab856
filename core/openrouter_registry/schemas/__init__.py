"""Stage 5: JSON values and what they must look like. Schema classes turned into JSON Schema and
replies structured back into them, validation (jsonschema for the messages, jsonschema-rs for the
fast "valid" answer), the schema memo, input checks, and fast JSON reading.

    schema      to_json_schema, structure, unstructure: dataclasses, attrs, TypedDict, pydantic
    validation  validate, is_valid: bounded error lists and depth
    fastvalid   the fast first check
    memo        SchemaMemo: per-schema work done once
    inputs      a call's input checked before anything is sent
    fastjson    fast_loads (orjson with the json module's answers) and MAPPING

May import: the shared base (settings, errors) only. Every module here is internal.
"""
