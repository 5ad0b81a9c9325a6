"""Server reflection as both ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``.

Current clients (grpcurl, Postman, grpcui, recent gRPC libraries) ask for v1 first and some
never fall back; the ``grpcio-reflection`` package serves v1alpha only. The v1 protocol is
v1alpha under a new package name: the same messages with the same field numbers, so its
bytes parse as v1alpha messages and one servicer answers both. What v1 adds is its own
descriptor, so that a client can resolve ``grpc.reflection.v1.ServerReflection`` itself:
it is derived here from the installed v1alpha descriptor (the package renamed in the file,
its type references and its service), so the two cannot drift apart, and added to the
default pool once.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2 as alpha

V1_PACKAGE = "grpc.reflection.v1"
V1_FILE = "grpc/reflection/v1/reflection.proto"
V1_SERVICE = f"{V1_PACKAGE}.ServerReflection"
V1ALPHA_SERVICE: str = reflection.SERVICE_NAME
METHOD = "ServerReflectionInfo"


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """The v1 reflection file: the v1alpha file with its package renamed throughout."""
    old = f".{alpha.DESCRIPTOR.package}."
    new = f".{V1_PACKAGE}."
    proto = descriptor_pb2.FileDescriptorProto()
    alpha.DESCRIPTOR.CopyToProto(proto)
    proto.name = V1_FILE
    proto.package = V1_PACKAGE
    proto.ClearField("options")
    for message in proto.message_type:
        for field in message.field:
            if field.type_name.startswith(old):
                field.type_name = new + field.type_name[len(old) :]
    for service in proto.service:
        for method in service.method:
            method.input_type = new + method.input_type[len(old) :]
            method.output_type = new + method.output_type[len(old) :]
    return proto


def _register_v1(pool: descriptor_pool.DescriptorPool) -> None:
    try:
        pool.FindFileByName(V1_FILE)
    except KeyError:
        pool.AddSerializedFile(v1_file().SerializeToString())


def enable(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection for ``service_names`` (and both reflection services) over v1 and
    v1alpha on ``server``."""
    pool = descriptor_pool.Default()
    _register_v1(pool)
    names = (*service_names, V1_SERVICE, V1ALPHA_SERVICE)
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                V1_SERVICE,
                {
                    METHOD: grpc.stream_stream_rpc_method_handler(
                        servicer.ServerReflectionInfo,
                        request_deserializer=alpha.ServerReflectionRequest.FromString,
                        response_serializer=alpha.ServerReflectionResponse.SerializeToString,
                    )
                },
            ),
        )
    )
