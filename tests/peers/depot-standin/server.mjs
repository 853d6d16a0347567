// depot-standin: a STAND-IN for Depot's API (https://api.depot.dev), for slipway's tests only.
// Depot's hosted API cannot be reached from the test machines; this serves the part of it a
// build client calls, over Connect (binary and JSON), with Depot's services, methods, streaming
// kinds, tokens and error codes (see descriptors.cjs and README.md). Every answer carries
// "X-Stand-In: depot". Its "machines" are a real buildkitd reached over mutual TLS, each build
// given its own client certificate signed by that daemon's CA.
//
// Test-only routes (not Depot's): GET /stand-in/state (everything it was asked and what it did),
// POST /stand-in/settings (JSON: token, machine_pending_ms, health_timeout_ms).
//
// Settings (environment): DEPOT_STANDIN_PORT (7500), DEPOT_STANDIN_TOKEN (the organization
// token it accepts), DEPOT_STANDIN_ORG, DEPOT_STANDIN_BUILDKIT (tcp://127.0.0.1:1234),
// DEPOT_STANDIN_BUILDKIT_TLS (a folder with the daemon's ca.pem and ca.key),
// DEPOT_STANDIN_SERVER_NAME (127.0.0.1), DEPOT_STANDIN_MACHINE_PENDING_MS (0),
// DEPOT_STANDIN_HEALTH_TIMEOUT_MS (300000: Depot's "5 minutes of inactivity").
import http from "node:http";
import { createRequire } from "node:module";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

const require = createRequire(import.meta.url);
const { ProjectService, BuildService, BuilderPlatform, Timestamp, sdkRequire } =
  require("./descriptors.cjs");
const { ConnectError, Code } = sdkRequire("@connectrpc/connect");
const { connectNodeAdapter } = sdkRequire("@connectrpc/connect-node");

const env = (k, d) => (process.env[k] ? process.env[k] : d);
const port = Number(env("DEPOT_STANDIN_PORT", "7500"));
const orgId = env("DEPOT_STANDIN_ORG", "org-standin");
const buildkit = env("DEPOT_STANDIN_BUILDKIT", "tcp://127.0.0.1:1234");
const tlsDir = env("DEPOT_STANDIN_BUILDKIT_TLS", "/var/lib/slipway-buildkit/tls");
const serverName = env("DEPOT_STANDIN_SERVER_NAME", "127.0.0.1");
const settings = {
  token: env("DEPOT_STANDIN_TOKEN", "depot-standin-org-token"),  // the organization token
  machine_pending_ms: Number(env("DEPOT_STANDIN_MACHINE_PENDING_MS", "0")),
  health_timeout_ms: Number(env("DEPOT_STANDIN_HEALTH_TIMEOUT_MS", "300000")),
};

// What the tests read back.
// calls: the RPCs it accepted, with what they said; requests: every HTTP request and its status.
const state = { projects: [], builds: [], calls: [], requests: [] };
const caPem = readFileSync(join(tlsDir, "ca.pem"), "utf8");

const shortId = () => {
  const a = "0123456789abcdefghijklmnopqrstuvwxyz";
  let s = "";
  for (const b of randomBytes(10)) s += a[b % a.length];
  return s;
};

function record(ctx, method, detail = {}) {
  state.calls.push({ method, at: Date.now(), ...detail });
}

function bearer(ctx) {
  const h = ctx.requestHeader.get("authorization") || "";
  return h.startsWith("Bearer ") ? h.slice(7) : "";
}

// Organization token: projects and build registration.
function requireOrg(ctx) {
  const t = bearer(ctx);
  if (t === settings.token) return;
  if (state.builds.some((b) => b.token === t)) {
    throw new ConnectError("Not authorized", Code.PermissionDenied);
  }
  throw new ConnectError("invalid token", Code.Unauthenticated);
}

// The build's own one-time token: machine, health and finish calls of that build.
function requireBuild(ctx, buildId) {
  const b = state.builds.find((x) => x.build_id === buildId);
  if (!b) throw new ConnectError(`build ${buildId} not found`, Code.NotFound);
  const t = bearer(ctx);
  if (t === b.token) return b;
  if (t === settings.token || state.builds.some((x) => x.token === t)) {
    throw new ConnectError("Not authorized", Code.PermissionDenied);
  }
  throw new ConnectError("invalid token", Code.Unauthenticated);
}

// A client certificate for one build, signed by the daemon's CA (the daemon trusts only that CA).
function clientCertificate(buildId) {
  const d = mkdtempSync(join(tmpdir(), "depot-standin-"));
  try {
    const run = (args) => execFileSync("openssl", args, { cwd: d, stdio: ["ignore", "ignore", "pipe"] });
    run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", `/CN=depot-build-${buildId}`, "-keyout", "c.key", "-out", "c.csr"]);
    run(["x509", "-req", "-in", "c.csr", "-CA", join(tlsDir, "ca.pem"), "-CAkey", join(tlsDir, "ca.key"),
         "-CAcreateserial", "-CAserial", join(d, "ca.srl"), "-days", "1", "-out", "c.pem"]);
    return { cert: readFileSync(join(d, "c.pem"), "utf8"), key: readFileSync(join(d, "c.key"), "utf8") };
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
}

const platformName = (p) => BuilderPlatform[p] || String(p);

function routes(router) {
  router.service(ProjectService, {
    listProjects(req, ctx) {
      requireOrg(ctx);
      record(ctx, "ListProjects");
      // Pages of two, so clients must follow next_page_token.
      const start = req.pageToken ? Number(req.pageToken) : 0;
      const page = state.projects.slice(start, start + 2);
      const next = start + 2 < state.projects.length ? String(start + 2) : undefined;
      return { projects: page.map(toProject), nextPageToken: next };
    },
    getProject(req, ctx) {
      requireOrg(ctx);
      record(ctx, "GetProject", { project_id: req.projectId });
      const p = state.projects.find((x) => x.project_id === req.projectId);
      if (!p) throw new ConnectError(`project ${req.projectId} not found`, Code.NotFound);
      return { project: toProject(p) };
    },
    createProject(req, ctx) {
      requireOrg(ctx);
      record(ctx, "CreateProject", { name: req.name });
      if (!req.name) throw new ConnectError("name is required", Code.InvalidArgument);
      const cp = req.cachePolicy || {};
      const p = {
        project_id: shortId(),
        organization_id: orgId,
        name: req.name,
        region_id: req.regionId || "us-east-1",
        created_at: Date.now(),
        keep_gb: cp.keepGb || (cp.keepBytes ? Number(cp.keepBytes / 1073741824n) : 50),
        keep_days: cp.keepDays ?? 14,
      };
      state.projects.push(p);
      return { project: toProject(p) };
    },
    deleteProject(req, ctx) {
      requireOrg(ctx);
      record(ctx, "DeleteProject", { project_id: req.projectId });
      state.projects = state.projects.filter((x) => x.project_id !== req.projectId);
      return {};
    },
  });

  router.service(BuildService, {
    createBuild(req, ctx) {
      requireOrg(ctx);
      record(ctx, "CreateBuild", { project_id: req.projectId });
      if (!req.projectId || !state.projects.some((p) => p.project_id === req.projectId)) {
        throw new ConnectError("project not found", Code.NotFound);
      }
      const b = {
        build_id: shortId(),
        project_id: req.projectId,
        token: "bt_" + randomBytes(16).toString("hex"),
        created_at: Date.now(),
        machine: null,
        health: [],
        finishes: [],
        outcome: null,
      };
      state.builds.push(b);
      return { buildId: b.build_id, buildToken: b.token, projectId: b.project_id,
               buildUrl: `http://127.0.0.1:${port}/builds/${b.build_id}` };
    },
    getBuildKitConnection(req, ctx) {
      const b = requireBuild(ctx, req.buildId);
      record(ctx, "GetBuildKitConnection", { build_id: b.build_id, platform: platformName(req.platform) });
      if (b.outcome) throw new ConnectError("the build is finished", Code.FailedPrecondition);
      if (!b.machine) {
        b.machine = { platform: platformName(req.platform), requested_at: Date.now(),
                      state: "pending", pending_answers: 0 };
      }
      if (b.machine.state === "dropped") {
        throw new ConnectError("the build's machine was removed after its health reports stopped",
                               Code.FailedPrecondition);
      }
      const left = b.machine.requested_at + settings.machine_pending_ms - Date.now();
      if (left > 0) {
        b.machine.pending_answers++;
        return { connection: { case: "pending", value: { waitMs: Math.min(500, Math.ceil(left)) } } };
      }
      if (b.machine.state === "pending") {
        b.machine.state = "active";
        b.machine.active_at = Date.now();
        b.machine.client = clientCertificate(b.build_id);
      }
      return {
        connection: {
          case: "active",
          value: { endpoint: buildkit, serverName, cert: b.machine.client, caCert: { cert: caPem } },
        },
      };
    },
    reportBuildHealth(req, ctx) {
      const b = requireBuild(ctx, req.buildId);
      record(ctx, "ReportBuildHealth", { build_id: b.build_id, platform: platformName(req.platform) });
      b.health.push({ at: Date.now(), platform: platformName(req.platform) });
      return { cancelsAt: Timestamp.fromDate(new Date(Date.now() + settings.health_timeout_ms)) };
    },
    finishBuild(req, ctx) {
      const b = requireBuild(ctx, req.buildId);
      const r = req.result;
      const outcome = r.case === "error" ? { result: "error", error: r.value.error }
                    : r.case === "canceled" ? { result: "canceled" }
                    : r.case === "success" ? { result: "success" } : { result: "none" };
      record(ctx, "FinishBuild", { build_id: b.build_id, ...outcome });
      b.finishes.push({ at: Date.now(), ...outcome });
      if (!b.outcome) b.outcome = outcome;
      if (b.machine && b.machine.state === "active") b.machine.state = "released";
      return {};
    },
  });
}

function toProject(p) {
  return {
    projectId: p.project_id, organizationId: p.organization_id, name: p.name, regionId: p.region_id,
    createdAt: Timestamp.fromDate(new Date(p.created_at)),
    cachePolicy: { keepGb: p.keep_gb, keepDays: p.keep_days },
  };
}

// A machine nobody reports health for is removed, as Depot does after its inactivity limit.
setInterval(() => {
  const now = Date.now();
  for (const b of state.builds) {
    if (!b.machine || b.machine.state !== "active") continue;
    const last = b.health.length ? b.health[b.health.length - 1].at : b.machine.active_at;
    if (now - last > settings.health_timeout_ms) {
      b.machine.state = "dropped";
      b.machine.dropped_at = now;
    }
  }
}, 250).unref();

const connect = connectNodeAdapter({ routes });
const server = http.createServer((req, res) => {
  res.setHeader("X-Stand-In", "depot");
  if (!req.url.startsWith("/stand-in/")) {
    const entry = { path: req.url, at: Date.now(), auth: (req.headers.authorization || "").slice(0, 10) };
    state.requests.push(entry);
    res.on("finish", () => (entry.status = res.statusCode));
  }
  if (req.url === "/stand-in/state" && req.method === "GET") {
    const body = JSON.stringify({ pid: process.pid, settings, ...state, builds: state.builds.map(({ machine, ...b }) =>
      ({ ...b, machine: machine && { ...machine, client: undefined } })) });
    res.writeHead(200, { "Content-Type": "application/json" });
    return res.end(body);
  }
  if (req.url === "/stand-in/settings" && req.method === "POST") {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      Object.assign(settings, JSON.parse(body || "{}"));
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify(settings));
    });
    return;
  }
  connect(req, res);
});
server.listen(port, "127.0.0.1", () => {
  console.log(`depot-standin (a stand-in for Depot's API, tests only) on http://127.0.0.1:${port}`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
