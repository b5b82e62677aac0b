#!/usr/bin/env python3
"""Outside checks of health and reflection, with Python grpcio (not run by `pnpm test`).

Against a running `pnpm interop:server --port <port>`:

    python3 examples/interop/python/outside_check.py --port 50051
    python3 examples/interop/python/outside_check.py --port 50051 --sigterm <server pid>

Needs grpcio, protobuf and grpcio-tools (Debian: `apt-get install python3-grpcio
python3-protobuf python3-grpc-tools`; or pip). The health and reflection
messages are compiled here from protos/ with grpc_tools' own protoc, so nothing
of the server's code is used on this side. Reflection answers are loaded into a
fresh protobuf DescriptorPool, which rejects malformed descriptors (such as the
map entries @grpc/proto-loader produces).

Prints one PASS/FAIL line per check; exits 1 if any failed.
"""
import argparse
import os
import queue
import signal
import sys
import tempfile

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_tools import protoc

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")
PROTOS = os.path.join(ROOT, "protos")

failures = 0


def message_class(descriptor):
    """protobuf >= 4.22 has GetMessageClass; older ones (Debian 12's 4.21) a MessageFactory."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(descriptor.file.pool).GetPrototype(descriptor)


def check(name, condition, detail=""):
    global failures
    print(("PASS " if condition else "FAIL ") + name + ("" if condition else f": {detail}"), flush=True)
    if not condition:
        failures += 1


def compile_protos():
    """The client's own message classes, from protos/ compiled by grpc_tools."""
    out = os.path.join(tempfile.mkdtemp(), "set.pb")
    files = ["grpc/health/v1/health.proto", "grpc/reflection/v1/reflection.proto", "grpc/reflection/v1alpha/reflection.proto"]
    if protoc.main(["protoc", f"-I{PROTOS}", "--include_imports", f"--descriptor_set_out={out}", *files]) != 0:
        sys.exit("protoc failed")
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(out, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    cls = lambda name: message_class(pool.FindMessageTypeByName(name))
    return cls


def unary(channel, path, request, response_class):
    return channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                               response_deserializer=response_class.FromString)(request, timeout=5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sigterm", type=int, help="server pid: watch across SIGTERM (the server ends)")
    args = parser.parse_args()
    cls = compile_protos()
    channel = grpc.insecure_channel(f"{args.host}:{args.port}")
    HealthCheckRequest = cls("grpc.health.v1.HealthCheckRequest")
    HealthCheckResponse = cls("grpc.health.v1.HealthCheckResponse")
    SERVING, NOT_SERVING, SERVICE_UNKNOWN = 1, 2, 3

    # --- health ---------------------------------------------------------------
    for service in ["", "grpc.testing.TestService", "grpc.health.v1.Health"]:
        r = unary(channel, "/grpc.health.v1.Health/Check", HealthCheckRequest(service=service), HealthCheckResponse)
        check(f"health Check {service!r} is SERVING", r.status == SERVING, r)
    try:
        unary(channel, "/grpc.health.v1.Health/Check", HealthCheckRequest(service="no.such.Service"), HealthCheckResponse)
        check("health Check of an unknown service is NOT_FOUND", False, "it succeeded")
    except grpc.RpcError as e:
        check("health Check of an unknown service is NOT_FOUND", e.code() == grpc.StatusCode.NOT_FOUND, e)

    watch = channel.unary_stream("/grpc.health.v1.Health/Watch", request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=HealthCheckResponse.FromString)
    unknown = watch(HealthCheckRequest(service="no.such.Service"))
    first = next(unknown)
    check("health Watch of an unknown service sends SERVICE_UNKNOWN", first.status == SERVICE_UNKNOWN, first)
    check("... and the call stays open", unknown.is_active())
    unknown.cancel()

    # --- reflection, both versions -------------------------------------------
    for version in ["v1", "v1alpha"]:
        Request = cls(f"grpc.reflection.{version}.ServerReflectionRequest")
        Response = cls(f"grpc.reflection.{version}.ServerReflectionResponse")
        stream = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=Response.FromString)
        # One request at a time over one stream: a generator fed by `ask`.
        q = queue.Queue()
        responses = stream(iter(q.get, None))

        def ask(**fields):
            q.put(Request(host="localhost", **fields))
            return next(responses)

        listed = sorted(s.name for s in ask(list_services="").list_services_response.service)
        want = ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection", "grpc.testing.TestService"]
        check(f"{version} reflection lists exactly the served services", listed == want, listed)

        unknown = ask(file_containing_symbol="no.such.Symbol")
        check(f"{version} unknown symbol: NOT_FOUND on the stream",
              unknown.HasField("error_response") and unknown.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
              unknown)

        # As grpcurl does: the file of the service and its dependencies, into a strict pool.
        answer = ask(file_containing_symbol="grpc.testing.TestService")
        protos = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in answer.file_descriptor_response.file_descriptor_proto]
        check(f"{version} the stream keeps working after NOT_FOUND", len(protos) > 0, answer)
        pool = descriptor_pool.DescriptorPool()
        pending = {p.name: p for p in protos}
        added = set()

        def add(name):
            if name in added:
                return
            for dep in pending[name].dependency:
                add(dep)
            pool.Add(pending[name])
            added.add(name)
        try:
            for name in list(pending):
                add(name)
            method = pool.FindServiceByName("grpc.testing.TestService").FindMethodByName("UnaryCall")
            check(f"{version} symbol lookup resolves UnaryCall's input with its dependencies",
                  method.input_type.full_name == "grpc.testing.SimpleRequest", method.input_type.full_name)
            stats = pool.FindMessageTypeByName("grpc.testing.LoadBalancerStatsResponse")
            check(f"{version} map fields are accepted by the descriptor pool",
                  stats.fields_by_name["rpcs_by_peer"].message_type.GetOptions().map_entry)
            SimpleRequest = message_class(method.input_type)
            SimpleResponse = message_class(method.output_type)
            reply = unary(channel, "/grpc.testing.TestService/UnaryCall", SimpleRequest(response_size=5), SimpleResponse)
            check(f"{version} a call built from reflected descriptors works", len(reply.payload.body) == 5, reply)
        except Exception as e:  # noqa: BLE001 - any failure of the pool is a failed check
            check(f"{version} reflected descriptors load into a strict DescriptorPool", False, repr(e))
        q.put(None)

    # --- Watch across SIGTERM -------------------------------------------------
    if args.sigterm is not None:
        stream = watch(HealthCheckRequest(service=""))
        first = next(stream)
        check("Watch '' starts SERVING", first.status == SERVING, first)
        os.kill(args.sigterm, signal.SIGTERM)
        statuses = []
        code = grpc.StatusCode.OK
        try:
            for r in stream:
                statuses.append(r.status)
        except grpc.RpcError as e:
            code = e.code()
        check("on SIGTERM Watch receives NOT_SERVING, then the stream ends", statuses == [NOT_SERVING], (statuses, code))
        check("... with status OK", code == grpc.StatusCode.OK, code)

    print(f"{'all passed' if failures == 0 else f'{failures} failed'}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
