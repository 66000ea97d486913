# Generated from proto/polyhost/runtime/v1/runtime.proto by proto/gen_python.py. Do not edit.
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DescribeRequest(_message.Message):
    __slots__ = ("protocol_version",)
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    protocol_version: str
    def __init__(self, protocol_version: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("protocol_version", "name", "sdk", "node_types")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SDK_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPES_FIELD_NUMBER: _ClassVar[int]
    protocol_version: str
    name: str
    sdk: str
    node_types: _containers.RepeatedCompositeFieldContainer[NodeTypeSpec]
    def __init__(self, protocol_version: _Optional[str] = ..., name: _Optional[str] = ..., sdk: _Optional[str] = ..., node_types: _Optional[_Iterable[_Union[NodeTypeSpec, _Mapping]]] = ...) -> None: ...

class NodeTypeSpec(_message.Message):
    __slots__ = ("type", "description", "input_schema_json", "output_schema_json", "ports", "port_field", "metadata", "unary")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    PORTS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    UNARY_FIELD_NUMBER: _ClassVar[int]
    type: str
    description: str
    input_schema_json: str
    output_schema_json: str
    ports: _containers.RepeatedScalarFieldContainer[str]
    port_field: str
    metadata: _containers.ScalarMap[str, str]
    unary: bool
    def __init__(self, type: _Optional[str] = ..., description: _Optional[str] = ..., input_schema_json: _Optional[str] = ..., output_schema_json: _Optional[str] = ..., ports: _Optional[_Iterable[str]] = ..., port_field: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., unary: _Optional[bool] = ...) -> None: ...

class ExecuteRequest(_message.Message):
    __slots__ = ("protocol_version", "node_type", "params_json", "context")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_TYPE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    protocol_version: str
    node_type: str
    params_json: str
    context: NodeContext
    def __init__(self, protocol_version: _Optional[str] = ..., node_type: _Optional[str] = ..., params_json: _Optional[str] = ..., context: _Optional[_Union[NodeContext, _Mapping]] = ...) -> None: ...

class NodeContext(_message.Message):
    __slots__ = ("run_id", "workflow_id", "node_id", "attempt", "idempotency_key", "deadline_unix")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    workflow_id: str
    node_id: str
    attempt: int
    idempotency_key: str
    deadline_unix: float
    def __init__(self, run_id: _Optional[str] = ..., workflow_id: _Optional[str] = ..., node_id: _Optional[str] = ..., attempt: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., deadline_unix: _Optional[float] = ...) -> None: ...

class ExecuteEvent(_message.Message):
    __slots__ = ("log", "chunk", "progress", "result", "error")
    LOG_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    log: Log
    chunk: Chunk
    progress: Progress
    result: Result
    error: Error
    def __init__(self, log: _Optional[_Union[Log, _Mapping]] = ..., chunk: _Optional[_Union[Chunk, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class RunReply(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ExecuteEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ExecuteEvent, _Mapping]]] = ...) -> None: ...

class Log(_message.Message):
    __slots__ = ("level", "message")
    class Level(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        LEVEL_UNSPECIFIED: _ClassVar[Log.Level]
        DEBUG: _ClassVar[Log.Level]
        INFO: _ClassVar[Log.Level]
        WARNING: _ClassVar[Log.Level]
        ERROR: _ClassVar[Log.Level]
    LEVEL_UNSPECIFIED: Log.Level
    DEBUG: Log.Level
    INFO: Log.Level
    WARNING: Log.Level
    ERROR: Log.Level
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    level: Log.Level
    message: str
    def __init__(self, level: _Optional[_Union[Log.Level, str]] = ..., message: _Optional[str] = ...) -> None: ...

class Chunk(_message.Message):
    __slots__ = ("data_json",)
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    data_json: str
    def __init__(self, data_json: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("fraction", "message")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    message: str
    def __init__(self, fraction: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("output_json",)
    OUTPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    output_json: str
    def __init__(self, output_json: _Optional[str] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "field", "retryable")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    field: str
    retryable: bool
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., field: _Optional[str] = ..., retryable: _Optional[bool] = ...) -> None: ...
