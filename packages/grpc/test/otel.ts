/**
 * An OpenTelemetry SDK tracer with an in-memory exporter, installed as
 * Effect's Tracer through @effect/opentelemetry: what the tracing tests read.
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer } from "effect"

export const inMemoryTracer = () => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const layer = OtelTracer.layer.pipe(Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider)))
  return { layer, spans: (): ReadonlyArray<ReadableSpan> => exporter.getFinishedSpans() }
}

export const parentId = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId
