/**
 * `pnpm demo --trace`: the OpenTelemetry SDK with an in-memory exporter,
 * installed as Effect's Tracer through @effect/opentelemetry, and a printer
 * that draws each scene's spans as a tree, with the time each span ended.
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Layer } from "effect"

export interface TraceCollector {
  /** Effect's Tracer, backed by the OpenTelemetry SDK. */
  readonly layer: Layer.Layer<OtelTracer.OtelTracer>
  /** The spans ended since the last call, drawn as trees (one per trace). */
  readonly drain: (sceneStart: number) => Array<string>
}

const millis = (time: readonly [number, number]) => time[0] * 1000 + time[1] / 1e6

const describe = (span: ReadableSpan, sceneStart: number): string => {
  const kind = span.kind === SpanKind.SERVER ? "server" : span.kind === SpanKind.CLIENT ? "client" : "internal"
  const where = span.kind === SpanKind.CLIENT ? ` -> :${String(span.attributes["server.port"])}` : ""
  const code = String(span.attributes["rpc.response.status_code"] ?? "-")
  const marks = [
    span.attributes["effect.fiber.interrupted"] === true ? "interrupted" : undefined,
    span.status.code === SpanStatusCode.ERROR ? "error" : undefined
  ].filter((m) => m !== undefined)
  const ended = Math.round(millis(span.endTime) - sceneStart)
  return `${span.name} [${kind}${where}] ${code}${marks.length > 0 ? ` (${marks.join(", ")})` : ""}, ended at ${ended} ms`
}

export const makeTraceCollector = (): TraceCollector => {
  const exporter = new InMemorySpanExporter()
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  const layer = OtelTracer.layer.pipe(Layer.provide(Layer.succeed(OtelTracer.OtelTracerProvider, provider)))
  const drain = (sceneStart: number) => {
    const spans = [...exporter.getFinishedSpans()]
    exporter.reset()
    const ids = new Set(spans.map((s) => s.spanContext().spanId))
    const children = (id: string) =>
      spans.filter((s) => s.parentSpanContext?.spanId === id).sort((a, b) => millis(a.startTime) - millis(b.startTime))
    const lines: Array<string> = []
    const draw = (span: ReadableSpan, prefix: string, last: boolean, root: boolean) => {
      lines.push(`${prefix}${root ? "" : last ? "└─ " : "├─ "}${describe(span, sceneStart)}`)
      const kids = children(span.spanContext().spanId)
      kids.forEach((kid, i) => draw(kid, root ? prefix : prefix + (last ? "   " : "│  "), i === kids.length - 1, false))
    }
    const roots = spans.filter((s) => s.parentSpanContext === undefined || !ids.has(s.parentSpanContext.spanId))
    for (const root of roots) {
      lines.push(`  trace ${root.spanContext().traceId}`)
      draw(root, "    ", true, true)
    }
    return lines
  }
  return { layer, drain }
}
