import * as grpc from "@grpc/grpc-js";
import type { HealthCheckRequest, HealthCheckResponse, ServingStatus } from "./messages";

/**
 * The standard `grpc.health.v1.Health` service: `Check` answers the status of a service name
 * (NOT_FOUND for unknown names), `Watch` streams it whenever it changes. It needs no token.
 */
export class HealthService {
  private readonly statuses = new Map<string, ServingStatus>();
  private readonly watchers = new Set<{ service: string; stream: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse> }>();

  /** Sets the status of `service` ("" is the whole sidecar) and tells its watchers. */
  setStatus(service: string, status: ServingStatus): void {
    if (this.statuses.get(service) === status) return;
    this.statuses.set(service, status);
    for (const watcher of this.watchers) {
      if (watcher.service !== service) continue;
      try {
        watcher.stream.write({ status });
      } catch {
        this.watchers.delete(watcher);
      }
    }
  }

  /** Sets every known service to `status`. */
  setAll(status: ServingStatus): void {
    for (const service of [...this.statuses.keys()]) this.setStatus(service, status);
  }

  /** The status of a service, or undefined when unknown. */
  status(service: string): ServingStatus | undefined {
    return this.statuses.get(service);
  }

  /** Ends every Watch stream (so a stopping server has no open calls left). */
  endWatches(): void {
    for (const watcher of this.watchers) {
      try {
        watcher.stream.end();
      } catch {
        // already gone
      }
    }
    this.watchers.clear();
  }

  /** The gRPC implementation, for `server.addService`. */
  implementation(): grpc.UntypedServiceImplementation {
    return {
      Check: (
        call: grpc.ServerUnaryCall<HealthCheckRequest, HealthCheckResponse>,
        callback: grpc.sendUnaryData<HealthCheckResponse>,
      ) => {
        const status = this.statuses.get(call.request.service);
        if (status === undefined) {
          callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${JSON.stringify(call.request.service)}` });
          return;
        }
        callback(null, { status });
      },
      Watch: (stream: grpc.ServerWritableStream<HealthCheckRequest, HealthCheckResponse>) => {
        const service = stream.request.service;
        const watcher = { service, stream };
        this.watchers.add(watcher);
        stream.on("cancelled", () => this.watchers.delete(watcher));
        stream.write({ status: this.statuses.get(service) ?? "SERVICE_UNKNOWN" });
      },
    };
  }
}
