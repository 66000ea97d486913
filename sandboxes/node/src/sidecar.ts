import type { ServeOptions, StartOptions } from "./config";
import { type Logger, stderrLogger } from "./log";
import type { DescribeResponse } from "./messages";
import { buildSpec, type NodeHandler, type NodeTypeDefinition, type RegisteredNodeType } from "./node-type";
import { PROTOCOL_VERSION } from "./protocol";
import { serveProcess } from "./serve";
import { type RunningSidecar, startServer } from "./server";
import { describeResponse } from "./service";

/** Options of a {@link Sidecar}. */
export interface SidecarOptions {
  /**
   * The protocol version Describe reports instead of "1.0". Only for testing how a host treats a
   * sidecar of another version; requests are still checked against 1.x.
   */
  reportProtocolVersion?: string;
  /** Where the sidecar's own log lines go (default: stderr, prefixed with `sidecar NAME:`). */
  logger?: Logger;
}

/**
 * A sidecar: a named set of node types served over gRPC to a polyhost host.
 *
 * ```ts
 * const sidecar = new Sidecar("text");
 * sidecar.node({ type: "text.upper" }, async (params) => ({ text: String(params.text).toUpperCase() }));
 * await sidecar.serve();
 * ```
 */
export class Sidecar {
  /** The sidecar's name, reported by Describe and used in its logs. */
  readonly name: string;
  private readonly nodes = new Map<string, RegisteredNodeType>();
  private readonly reportedProtocolVersion: string;
  private readonly log: Logger;
  private frozen = false;

  constructor(name: string, options: SidecarOptions = {}) {
    if (typeof name !== "string" || name.trim() === "") throw new TypeError("a sidecar needs a name");
    this.name = name;
    this.reportedProtocolVersion = options.reportProtocolVersion ?? PROTOCOL_VERSION;
    this.log = options.logger ?? stderrLogger(name);
  }

  /**
   * Registers a node type and its handler. Give type arguments to type the parameters and the
   * output: `sidecar.node<{ text: string }, { slug: string }>(...)`. Returns the sidecar, so calls
   * can be chained. Throws on a duplicate type or after the sidecar has started.
   */
  node<Params = Record<string, any>, Output extends object = Record<string, unknown>>(
    definition: NodeTypeDefinition,
    handler: NodeHandler<Params, Output>,
  ): this {
    if (this.frozen) throw new Error(`${definition?.type}: register node types before start() or serve()`);
    if (typeof handler !== "function") throw new TypeError(`${definition?.type}: the handler must be a function`);
    const spec = buildSpec(definition);
    if (this.nodes.has(spec.type)) throw new Error(`node type ${spec.type} is registered twice`);
    this.nodes.set(spec.type, { spec, handler: handler as NodeHandler<any, object> });
    return this;
  }

  /** The registered node types' names, in registration order. */
  get nodeTypes(): string[] {
    return [...this.nodes.keys()];
  }

  /** What Describe answers. */
  describe(): DescribeResponse {
    return describeResponse({ name: this.name, nodes: this.nodes, reportedProtocolVersion: this.reportedProtocolVersion });
  }

  /**
   * Starts a server with exactly these options (nothing is read from the environment, no signal
   * handlers, nothing printed on stdout). Rejects with a ListenError when it cannot listen. For
   * tests and for embedding; a sidecar program calls {@link serve}.
   */
  start(options: StartOptions = {}): Promise<RunningSidecar> {
    this.frozen = true;
    return startServer(this.setup(), options);
  }

  /**
   * Runs this sidecar as a program: listens on POLYHOST_LISTEN, else `--listen ADDR`, else
   * `options.listen`, else 127.0.0.1:50051; requires POLYHOST_SIDECAR_TOKEN when set; serves TLS
   * with POLYHOST_TLS_CERT/POLYHOST_TLS_KEY; prints `POLYHOST_SIDECAR_READY <address>` on stdout
   * once SERVING; stops gracefully on SIGTERM/SIGINT; exits when stdin closes if
   * POLYHOST_PARENT_WATCH=stdin. When it cannot listen, prints one line on stderr and exits 1.
   * Resolves once it is serving.
   */
  serve(options: ServeOptions = {}): Promise<RunningSidecar> {
    this.frozen = true;
    return serveProcess(this.setup(), options);
  }

  private setup() {
    return { name: this.name, nodes: this.nodes, reportedProtocolVersion: this.reportedProtocolVersion, log: this.log };
  }
}
