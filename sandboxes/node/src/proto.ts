import { existsSync } from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** The options every part of this SDK loads the .proto files with. */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** The contract, relative to {@link protoDir}. */
export const RUNTIME_PROTO = "polyhost/runtime/v1/runtime.proto";
/** The standard health service, relative to {@link protoDir}. */
export const HEALTH_PROTO = "grpc/health/v1/health.proto";

/** Full names of the services. */
export const RUNTIME_SERVICE = "polyhost.runtime.v1.NodeRuntime";
export const HEALTH_SERVICE = "grpc.health.v1.Health";

let cachedDir: string | undefined;
let cachedDefinition: protoLoader.PackageDefinition | undefined;

/**
 * The folder that holds this package's copy of the .proto files (`<package>/proto`). Found by
 * walking up from this file, so it works from `dist/src` and from `src`.
 */
export function protoDir(): string {
  if (cachedDir !== undefined) return cachedDir;
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, "proto");
    if (existsSync(path.join(candidate, RUNTIME_PROTO))) {
      cachedDir = candidate;
      return candidate;
    }
    dir = path.dirname(dir);
  }
  throw new Error(`cannot find ${RUNTIME_PROTO} in a proto/ folder above ${__dirname}`);
}

/** Loads (once) the runtime and health protos with {@link PROTO_LOADER_OPTIONS}. */
export function loadProtos(): protoLoader.PackageDefinition {
  if (cachedDefinition === undefined) {
    cachedDefinition = protoLoader.loadSync([RUNTIME_PROTO, HEALTH_PROTO], {
      ...PROTO_LOADER_OPTIONS,
      includeDirs: [protoDir()],
    });
  }
  return cachedDefinition;
}

/** The gRPC service definition of a service loaded by {@link loadProtos}. */
export function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const definition = loadProtos()[fullName];
  if (definition === undefined || !isServiceDefinition(definition)) {
    throw new Error(`service ${fullName} is not defined in the loaded protos`);
  }
  return definition;
}

function isServiceDefinition(value: unknown): value is grpc.ServiceDefinition {
  return typeof value === "object" && value !== null && !("format" in value);
}

/** A client constructor for `polyhost.runtime.v1.NodeRuntime` (for tools and tests). */
export function runtimeClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(serviceDefinition(RUNTIME_SERVICE), "NodeRuntime");
}

/** A client constructor for `grpc.health.v1.Health` (for tools and tests). */
export function healthClientConstructor(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(serviceDefinition(HEALTH_SERVICE), "Health");
}
