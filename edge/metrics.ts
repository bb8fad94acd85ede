import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type LabelValues } from "prom-client";

/**
 * The edge's Prometheus metrics (issue 5 item 6). One registry per edge instance (not prom-client's
 * global one) so several edges in one test process never collide on metric names. The fan-out and
 * Socket.IO code take these instruments from `deps.metrics`.
 */
export type Transport = "sse" | "websocket" | "polling" | "http";

export interface EdgeMetrics {
  registry: Registry;
  /** Open client connections by transport. */
  connections: Gauge<"transport">;
  /** Events delivered to clients, by transport. */
  deliveries: Counter<"transport">;
  /** Clients cut off or messages dropped (slow client over its bound, I7), by transport and reason. */
  drops: Counter<"transport" | "reason">;
  /** Milliseconds between an event's append and its hand-off to the transport. */
  deliveryLag: Histogram<"transport">;
  /** Seconds from receiving a command to its answer, by command and outcome. */
  commandLatency: Histogram<"command" | "outcome">;
  /** HTTP requests by route pattern, method and status. */
  httpRequests: Counter<"route" | "method" | "status">;
  /** Requests refused by the gateway, by reason (rate, overloaded, unavailable). */
  gatewayRejections: Counter<"reason">;
}

export function createEdgeMetrics(opts: { defaultMetrics?: boolean } = {}): EdgeMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    connections: new Gauge({ name: "tributary_edge_connections", help: "Open client connections", labelNames: ["transport"], registers }),
    deliveries: new Counter({ name: "tributary_edge_deliveries_total", help: "Events delivered to clients", labelNames: ["transport"], registers }),
    drops: new Counter({
      name: "tributary_edge_drops_total",
      help: "Slow clients disconnected or messages dropped",
      labelNames: ["transport", "reason"],
      registers,
    }),
    deliveryLag: new Histogram({
      name: "tributary_edge_delivery_lag_ms",
      help: "Append to hand-off latency in milliseconds",
      labelNames: ["transport"],
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000],
      registers,
    }),
    commandLatency: new Histogram({
      name: "tributary_edge_command_seconds",
      help: "Command latency from request to answer",
      labelNames: ["command", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    httpRequests: new Counter({
      name: "tributary_edge_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["route", "method", "status"],
      registers,
    }),
    gatewayRejections: new Counter({
      name: "tributary_edge_gateway_rejections_total",
      help: "Requests refused by the gateway",
      labelNames: ["reason"],
      registers,
    }),
  };
}

/**
 * A counter child for per-delivery hot paths. prom-client hashes and validates the label set on
 * every `inc`, even through `labels(...)`; at tens of thousands of deliveries a second that showed
 * in the edge's profile. This counts in a plain number and adds the sum to the counter once per
 * event-loop turn, so a scrape (always on a later turn) still sees every delivery.
 */
export function perTurnCounter<T extends string>(counter: Counter<T>, labels: LabelValues<T>): { inc(): void } {
  let pending = 0;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const n = pending;
    pending = 0;
    if (n > 0) counter.inc(labels, n);
  };
  return {
    inc() {
      pending++;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
  };
}
