from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetNodeInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KindInfo(_message.Message):
    __slots__ = ("kind", "set_size", "tag_version")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SET_SIZE_FIELD_NUMBER: _ClassVar[int]
    TAG_VERSION_FIELD_NUMBER: _ClassVar[int]
    kind: str
    set_size: int
    tag_version: int
    def __init__(self, kind: _Optional[str] = ..., set_size: _Optional[int] = ..., tag_version: _Optional[int] = ...) -> None: ...

class NodeInfo(_message.Message):
    __slots__ = ("node_id", "name", "protocol_version", "suite", "epoch", "kinds", "budget_total", "budget_remaining", "max_batch_elements")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOTAL_FIELD_NUMBER: _ClassVar[int]
    BUDGET_REMAINING_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ELEMENTS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    name: str
    protocol_version: int
    suite: str
    epoch: int
    kinds: _containers.RepeatedCompositeFieldContainer[KindInfo]
    budget_total: int
    budget_remaining: int
    max_batch_elements: int
    def __init__(self, node_id: _Optional[str] = ..., name: _Optional[str] = ..., protocol_version: _Optional[int] = ..., suite: _Optional[str] = ..., epoch: _Optional[int] = ..., kinds: _Optional[_Iterable[_Union[KindInfo, _Mapping]]] = ..., budget_total: _Optional[int] = ..., budget_remaining: _Optional[int] = ..., max_batch_elements: _Optional[int] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("epoch", "kind", "batch_id", "blinded")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    BLINDED_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    kind: str
    batch_id: bytes
    blinded: bytes
    def __init__(self, epoch: _Optional[int] = ..., kind: _Optional[str] = ..., batch_id: _Optional[bytes] = ..., blinded: _Optional[bytes] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("batch_id", "evaluated", "budget_remaining")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_FIELD_NUMBER: _ClassVar[int]
    BUDGET_REMAINING_FIELD_NUMBER: _ClassVar[int]
    batch_id: bytes
    evaluated: bytes
    budget_remaining: int
    def __init__(self, batch_id: _Optional[bytes] = ..., evaluated: _Optional[bytes] = ..., budget_remaining: _Optional[int] = ...) -> None: ...

class SyncTagsRequest(_message.Message):
    __slots__ = ("kind", "epoch", "since_version", "policy_token")
    KIND_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    SINCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    POLICY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    kind: str
    epoch: int
    since_version: int
    policy_token: str
    def __init__(self, kind: _Optional[str] = ..., epoch: _Optional[int] = ..., since_version: _Optional[int] = ..., policy_token: _Optional[str] = ...) -> None: ...

class TagSetChunk(_message.Message):
    __slots__ = ("epoch", "version", "full", "policy_token", "added_tags", "added_sealed", "sealed_sizes", "removed_tags")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    POLICY_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ADDED_TAGS_FIELD_NUMBER: _ClassVar[int]
    ADDED_SEALED_FIELD_NUMBER: _ClassVar[int]
    SEALED_SIZES_FIELD_NUMBER: _ClassVar[int]
    REMOVED_TAGS_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    version: int
    full: bool
    policy_token: str
    added_tags: bytes
    added_sealed: bytes
    sealed_sizes: _containers.RepeatedScalarFieldContainer[int]
    removed_tags: bytes
    def __init__(self, epoch: _Optional[int] = ..., version: _Optional[int] = ..., full: bool = ..., policy_token: _Optional[str] = ..., added_tags: _Optional[bytes] = ..., added_sealed: _Optional[bytes] = ..., sealed_sizes: _Optional[_Iterable[int]] = ..., removed_tags: _Optional[bytes] = ...) -> None: ...
