/**
 * Starting a grpc-js call without its caller stack.
 *
 * grpc-js's `makeUnaryRequest` and `makeClientStreamRequest` construct an
 * `Error` on every call to remember where it was made, for the error their
 * callback gets if the call fails (grpc/grpc-node#2109). GrpcClient never
 * reads that error: it completes from the call's `'status'` event. Capturing
 * the stack costs about 1.6 µs per call here (V8 walks `Error.stackTraceLimit`
 * frames, 10 by default; 0.3 µs with none), so the call is started with the
 * limit at 0, and the limit is restored as soon as grpc-js returns. The
 * upstream opt-out (a `grpc.enable_caller_stack_traces` channel option,
 * grpc/grpc-node#3083) is not in grpc-js 1.14.7. Errors created while the
 * call starts (by grpc-js, or a codec that throws) have no stack either;
 * none of them reaches the caller with one. client.test.ts pins both the
 * grpc-js behaviour and the restored limit.
 *
 * @internal
 */
export const withoutCallerStack = <A>(start: () => A): A => {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    return start()
  } finally {
    Error.stackTraceLimit = limit
  }
}
