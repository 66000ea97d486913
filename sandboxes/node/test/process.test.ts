/** The example and testkit sidecars run as programs, as a host runs them. */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SDK_NAME, SDK_VERSION } from "../src/index";
import { errorOf, example, outputOf, PACKAGE_DIR, rpcError, SidecarProcess, TestClient, tempDir } from "./helpers";

const tmp = tempDir();
after(() => tmp.remove());
let sockets = 0;
const socketAddress = (): string => `unix:${path.join(tmp.dir, `s${++sockets}.sock`)}`;

describe("testkit", () => {
  let proc: SidecarProcess;
  let client: TestClient;

  before(async () => {
    proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: socketAddress() });
    client = new TestClient(await proc.ready());
  });
  after(() => {
    client.close();
    proc.kill();
  });

  test("describes the ts.* node types", async () => {
    const response = await client.describe();
    assert.equal(response.name, "testkit");
    assert.equal(response.protocol_version, "1.1");
    assert.deepEqual(
      response.node_types.map((t) => t.type).sort(),
      ["ts.big", "ts.crash", "ts.echo", "ts.fail", "ts.hang", "ts.pid", "ts.sleep", "ts.stream"],
    );
  });

  test("ts.echo returns params and context", async () => {
    const output = outputOf(await client.execute("ts.echo", { a: [1, "b"] }, { context: { attempt: 3 } }));
    assert.deepEqual(output, {
      params: { a: [1, "b"] },
      context: { run_id: "run-1", workflow_id: "wf-1", node_id: "node-1", attempt: 3, idempotency_key: "key-1" },
    });
  });

  test("ts.stream, ts.big, ts.pid, ts.sleep", async () => {
    const stream = await client.execute("ts.stream", { n: 2 });
    assert.deepEqual(
      stream.events.map((e) => e.event),
      ["log", "chunk", "progress", "log", "chunk", "progress", "result"],
    );
    assert.equal(stream.events[3]!.log!.message, "line 2");
    assert.deepEqual(outputOf(stream), { n: 2 });
    assert.equal(outputOf(await client.execute("ts.big", { bytes: 100_000 })).data, "x".repeat(100_000));
    assert.equal(outputOf(await client.execute("ts.pid")).pid, proc.child.pid);
    assert.deepEqual(outputOf(await client.execute("ts.sleep", { ms: 50 })), { slept_ms: 50 });
  });

  test("ts.fail returns the typed error asked for", async () => {
    const error = errorOf(await client.execute("ts.fail", { code: "quota_exceeded", message: "too many", field: "n", retryable: true }));
    assert.deepEqual(error, { code: "quota_exceeded", message: "too many", field: "n", retryable: true });
    assert.equal(errorOf(await client.execute("ts.big", { bytes: -1 })).field, "bytes");
  });

  test("ts.hang is ended by the caller's deadline", async () => {
    const outcome = await client.execute("ts.hang", {}, { deadlineMs: 300 });
    assert.equal(outcome.status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal((await client.check()).status, "SERVING");
  });
});

describe("process behaviour", () => {
  test("POLYHOST_PARENT_WATCH=stdin: prints READY, exits 0 when stdin closes", async () => {
    const address = socketAddress();
    const proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: address, POLYHOST_PARENT_WATCH: "stdin" }, [], "pipe");
    try {
      assert.equal(await proc.ready(), address);
      assert.equal(proc.stdout, `POLYHOST_SIDECAR_READY ${address}\n`);
      const client = new TestClient(address);
      assert.equal((await client.check()).status, "SERVING");
      client.close();
      proc.child.stdin!.end();
      const exit = await proc.exit(3000);
      assert.equal(exit.code, 0);
      assert.ok(exit.ms < 1500, `exited after ${exit.ms} ms`);
    } finally {
      proc.kill();
    }
  });

  test("SIGTERM lets a running call finish, then exits 0", async () => {
    const proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: "127.0.0.1:0" });
    try {
      const address = await proc.ready();
      assert.match(address, /^127\.0\.0\.1:\d+$/);
      const client = new TestClient(address);
      const call = client.start("ts.sleep", { ms: 500 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      proc.child.kill("SIGTERM");
      assert.deepEqual(outputOf(await call.outcome), { slept_ms: 500 });
      const exit = await proc.exit(6000);
      assert.equal(exit.code, 0);
      client.close();
    } finally {
      proc.kill();
    }
  });

  test("SIGTERM with a stuck call: exits 0 after the 5 s grace period", async () => {
    const proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: socketAddress() });
    try {
      const client = new TestClient(await proc.ready());
      const call = client.start("ts.hang", {}, { deadlineMs: 30_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      proc.child.kill("SIGTERM");
      const exit = await proc.exit(9000);
      assert.equal(exit.code, 0);
      const took = Date.now() - started;
      assert.ok(took >= 4900 && took < 8000, `exited after ${took} ms`);
      assert.notEqual((await call.outcome).status.code, grpc.status.OK);
      assert.match(proc.stderr, /SIGTERM: stopping/);
      client.close();
    } finally {
      proc.kill();
    }
  });

  test("ts.crash kills the process with status 3 mid-call", async () => {
    const proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: socketAddress() });
    try {
      const client = new TestClient(await proc.ready());
      const outcome = await client.execute("ts.crash", { after_ms: 50 });
      assert.notEqual(outcome.status.code, grpc.status.OK);
      assert.equal((await proc.exit(3000)).code, 3);
      client.close();
    } finally {
      proc.kill();
    }
  });

  test("a port in use: one line on stderr, exit 1", async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const proc = new SidecarProcess(example("text"), {}, ["--listen", `127.0.0.1:${port}`]);
      const exit = await proc.exit(5000);
      assert.equal(exit.code, 1);
      assert.equal(proc.stdout, "");
      const lines = proc.stderr.trimEnd().split("\n");
      assert.equal(lines.length, 1, proc.stderr);
      assert.match(lines[0]!, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
    } finally {
      blocker.close();
    }
  });

  test("a bad listen address: one line on stderr, exit 1", async () => {
    const proc = new SidecarProcess(example("text"), { POLYHOST_LISTEN: ":50051" });
    const exit = await proc.exit(5000);
    assert.equal(exit.code, 1);
    assert.equal(proc.stderr.trimEnd().split("\n").length, 1);
    assert.match(proc.stderr, /give a host/);
  });

  test("POLYHOST_LISTEN wins over --listen", async () => {
    const address = socketAddress();
    const proc = new SidecarProcess(example("text"), { POLYHOST_LISTEN: address }, ["--listen", "127.0.0.1:1"]);
    try {
      assert.equal(await proc.ready(), address);
    } finally {
      proc.kill();
    }
  });

  test("POLYHOST_SIDECAR_TOKEN is required, never printed", async () => {
    const token = "tok-" + Math.random().toString(36).slice(2);
    const proc = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: socketAddress(), POLYHOST_SIDECAR_TOKEN: token });
    try {
      const client = new TestClient(await proc.ready());
      assert.equal((await rpcError(client.describe())).code, grpc.status.UNAUTHENTICATED);
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${token}`);
      assert.equal((await client.describe("1.1", metadata)).name, "testkit");
      assert.equal((await client.check()).status, "SERVING");
      client.close();
      assert.ok(!proc.stderr.includes(token) && !proc.stdout.includes(token));
    } finally {
      proc.kill();
    }
  });

  test("testkit switches: exit at start, start delay, reported protocol", async () => {
    const exiting = new SidecarProcess(example("testkit"), { POLYHOST_LISTEN: socketAddress(), POLYHOST_TESTKIT_EXIT_AT_START: "7" });
    assert.equal((await exiting.exit(5000)).code, 7);
    assert.equal(exiting.stdout, "");

    const started = Date.now();
    const proc = new SidecarProcess(example("testkit"), {
      POLYHOST_LISTEN: socketAddress(),
      POLYHOST_TESTKIT_START_DELAY_MS: "400",
      POLYHOST_TESTKIT_PROTOCOL: "2.0",
    });
    try {
      const client = new TestClient(await proc.ready());
      assert.ok(Date.now() - started >= 400);
      assert.equal((await client.describe()).protocol_version, "2.0");
      client.close();
    } finally {
      proc.kill();
    }
  });

  test("an exception a handler cannot catch is handler_panic; the sidecar survives", async () => {
    const fixture = path.join(PACKAGE_DIR, "dist", "test", "fixtures", "panic-sidecar.js");
    const proc = new SidecarProcess(fixture, { POLYHOST_LISTEN: socketAddress() });
    try {
      const client = new TestClient(await proc.ready());
      const thrown = errorOf(await client.execute("p.timer-throw"));
      assert.equal(thrown.code, "handler_panic");
      assert.match(thrown.message, /boom in a timer/);
      assert.equal(thrown.retryable, false);
      const lost = errorOf(await client.execute("p.lost-rejection"));
      assert.equal(lost.code, "handler_panic");
      assert.match(lost.message, /nobody awaited me/);
      assert.deepEqual(outputOf(await client.execute("p.ok")), { ok: true, pid: proc.child.pid });
      assert.equal(proc.child.exitCode, null);
      assert.match(proc.stderr, /handler panic/);
      client.close();
    } finally {
      proc.kill();
    }
  });

  test("TLS with POLYHOST_TLS_CERT and POLYHOST_TLS_KEY", async (t) => {
    const cert = path.join(tmp.dir, "cert.pem");
    const key = path.join(tmp.dir, "key.pem");
    const made = await new Promise<boolean>((resolve) =>
      execFile(
        "openssl",
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
          "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert],
        (error) => resolve(error === null),
      ),
    );
    if (!made) {
      t.skip("openssl is not available to make a certificate");
      return;
    }
    const proc = new SidecarProcess(example("text"), { POLYHOST_LISTEN: "127.0.0.1:0", POLYHOST_TLS_CERT: cert, POLYHOST_TLS_KEY: key });
    try {
      const address = await proc.ready();
      const client = new TestClient(address, grpc.credentials.createSsl(readFileSync(cert)), {
        "grpc.ssl_target_name_override": "localhost",
      });
      assert.equal((await client.describe()).name, "text");
      client.close();
      const plain = new TestClient(address);
      await assert.rejects(plain.describe());
      plain.close();
    } finally {
      proc.kill();
    }
  });
});

describe("text example", () => {
  let proc: SidecarProcess;
  let client: TestClient;

  before(async () => {
    proc = new SidecarProcess(example("text"), { POLYHOST_LISTEN: socketAddress() });
    client = new TestClient(await proc.ready());
  });
  after(() => {
    client.close();
    proc.kill();
  });

  test("describes text.slugify and text.wordfreq with schemas", async () => {
    const response = await client.describe();
    assert.equal(response.name, "text");
    assert.deepEqual(response.node_types.map((t) => t.type), ["text.slugify", "text.wordfreq"]);
    for (const type of response.node_types) {
      assert.equal(JSON.parse(type.input_schema_json).type, "object");
      assert.equal(JSON.parse(type.output_schema_json).type, "object");
    }
  });

  test("text.slugify, streamed or unary", async () => {
    const unary = (await client.describe()).node_types.map((t) => [t.type, t.unary]);
    assert.deepEqual(unary, [["text.slugify", true], ["text.wordfreq", false]]);
    assert.deepEqual(outputOf(await client.execute("text.slugify", { text: "  Héllo, Wörld! 2024 " })), { slug: "hello-world-2024" });
    assert.deepEqual(outputOf(await client.run("text.slugify", { text: "Ça va?" })), { slug: "ca-va" });
  });

  test("text.wordfreq streams progress and counts words", async () => {
    const outcome = await client.execute("text.wordfreq", { text: "the cat and the hat and the bat", top: 2 });
    assert.ok(outcome.events.some((e) => e.event === "progress"));
    assert.deepEqual(outputOf(outcome), {
      words: [
        { word: "the", count: 3 },
        { word: "and", count: 2 },
      ],
      total: 8,
    });
  });

  test("text.wordfreq with top < 1 is a typed error on field top", async () => {
    const error = errorOf(await client.execute("text.wordfreq", { text: "a b", top: 0 }));
    assert.equal(error.code, "invalid_input");
    assert.equal(error.field, "top");
    assert.equal(error.retryable, false);
  });
});

describe("package", () => {
  test("the proto copy matches the repository's (npm run check-proto)", async () => {
    const repoProto = path.resolve(PACKAGE_DIR, "..", "..", "proto", "polyhost", "runtime", "v1", "runtime.proto");
    const result = await new Promise<{ code: number; output: string }>((resolve) =>
      execFile(process.execPath, [path.join(PACKAGE_DIR, "scripts", "check-proto.js")], { cwd: PACKAGE_DIR }, (error, stdout, stderr) =>
        resolve({ code: error === null ? 0 : Number(error.code ?? 1), output: stdout + stderr }),
      ),
    );
    assert.equal(result.code, 0, result.output);
    if (existsSync(repoProto)) assert.match(result.output, /matches/);
  });

  test("the SDK version is the package's", () => {
    const pkg = JSON.parse(readFileSync(path.join(PACKAGE_DIR, "package.json"), "utf8"));
    assert.equal(SDK_VERSION, pkg.version);
    assert.equal(SDK_NAME, `polyhost-node/${pkg.version}`);
  });
});
