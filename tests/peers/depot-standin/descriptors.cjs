// Depot's API as the stand-in serves it, declared with the protobuf-es 1.x runtime that
// @depot/sdk-node itself is built on: the same packages, services, methods, streaming kinds,
// message names and field numbers as Depot publishes them (depot.core.v1 in buf.build/depot/api,
// whose generated code @depot/sdk-node ships; depot.cli.v1 in github.com/depot/depot-go's
// proto/depot/cli/v1/build.proto). Fields the stand-in never reads or sets are left out.
"use strict";
const { createRequire } = require("node:module");
// The runtime @depot/sdk-node depends on (1.x), not the 2.x the other peers use.
const sdkRequire = createRequire(require.resolve("@depot/sdk-node"));
const { proto3, MethodKind, Timestamp } = sdkRequire("@bufbuild/protobuf");

const S = 9; // ScalarType.STRING
const I32 = 5; // ScalarType.INT32
const I64 = 3; // ScalarType.INT64
const str = (no, name, extra = {}) => ({ no, name, kind: "scalar", T: S, ...extra });
const msg = (no, name, T, extra = {}) => ({ no, name, kind: "message", T, ...extra });

// ---- depot.core.v1 (ProjectService) ----
const CachePolicy = proto3.makeMessageType("depot.core.v1.CachePolicy", () => [
  { no: 1, name: "keep_bytes", kind: "scalar", T: I64, opt: true },
  { no: 2, name: "keep_days", kind: "scalar", T: I32 },
  { no: 3, name: "keep_gb", kind: "scalar", T: I32 },
]);
const Project = proto3.makeMessageType("depot.core.v1.Project", () => [
  str(1, "project_id"),
  str(2, "organization_id"),
  str(3, "name"),
  str(4, "region_id"),
  msg(5, "created_at", Timestamp),
  msg(6, "cache_policy", CachePolicy),
]);
const ListProjectsRequest = proto3.makeMessageType("depot.core.v1.ListProjectsRequest", () => [
  str(1, "region_id", { opt: true }),
  { no: 2, name: "page_size", kind: "scalar", T: I32, opt: true },
  str(3, "page_token", { opt: true }),
]);
const ListProjectsResponse = proto3.makeMessageType("depot.core.v1.ListProjectsResponse", () => [
  msg(1, "projects", Project, { repeated: true }),
  str(2, "next_page_token", { opt: true }),
]);
const GetProjectRequest = proto3.makeMessageType("depot.core.v1.GetProjectRequest", () => [
  str(1, "project_id"),
]);
const GetProjectResponse = proto3.makeMessageType("depot.core.v1.GetProjectResponse", () => [
  msg(1, "project", Project),
]);
const CreateProjectRequest = proto3.makeMessageType("depot.core.v1.CreateProjectRequest", () => [
  str(1, "name"),
  str(2, "organization_id", { opt: true }),
  str(3, "region_id"),
  msg(4, "cache_policy", CachePolicy, { opt: true }),
]);
const CreateProjectResponse = proto3.makeMessageType("depot.core.v1.CreateProjectResponse", () => [
  msg(1, "project", Project),
]);
const DeleteProjectRequest = proto3.makeMessageType("depot.core.v1.DeleteProjectRequest", () => [
  str(1, "project_id"),
]);
const DeleteProjectResponse = proto3.makeMessageType("depot.core.v1.DeleteProjectResponse", () => []);

const ProjectService = {
  typeName: "depot.core.v1.ProjectService",
  methods: {
    listProjects: { name: "ListProjects", I: ListProjectsRequest, O: ListProjectsResponse, kind: MethodKind.Unary },
    getProject: { name: "GetProject", I: GetProjectRequest, O: GetProjectResponse, kind: MethodKind.Unary },
    createProject: { name: "CreateProject", I: CreateProjectRequest, O: CreateProjectResponse, kind: MethodKind.Unary },
    deleteProject: { name: "DeleteProject", I: DeleteProjectRequest, O: DeleteProjectResponse, kind: MethodKind.Unary },
  },
};

// ---- depot.cli.v1 (BuildService) ----
const BuilderPlatform = proto3.makeEnum("depot.cli.v1.BuilderPlatform", [
  { no: 0, name: "BUILDER_PLATFORM_UNSPECIFIED" },
  { no: 1, name: "BUILDER_PLATFORM_AMD64" },
  { no: 2, name: "BUILDER_PLATFORM_ARM64" },
]);
const CreateBuildRequest = proto3.makeMessageType("depot.cli.v1.CreateBuildRequest", () => [
  str(1, "project_id"),
]);
const CreateBuildResponse = proto3.makeMessageType("depot.cli.v1.CreateBuildResponse", () => [
  str(1, "build_id"),
  str(2, "build_token"),
  str(5, "build_url"),
  str(6, "project_id"),
]);
const BuildSuccess = proto3.makeMessageType("depot.cli.v1.FinishBuildRequest.BuildSuccess", () => []);
const BuildError = proto3.makeMessageType("depot.cli.v1.FinishBuildRequest.BuildError", () => [
  str(1, "error"),
]);
const BuildCanceled = proto3.makeMessageType("depot.cli.v1.FinishBuildRequest.BuildCanceled", () => []);
const FinishBuildRequest = proto3.makeMessageType("depot.cli.v1.FinishBuildRequest", () => [
  str(1, "build_id"),
  msg(2, "success", BuildSuccess, { oneof: "result" }),
  msg(3, "error", BuildError, { oneof: "result" }),
  msg(4, "canceled", BuildCanceled, { oneof: "result" }),
]);
const FinishBuildResponse = proto3.makeMessageType("depot.cli.v1.FinishBuildResponse", () => []);
const platform = { no: 2, name: "platform", kind: "enum", T: proto3.getEnumType(BuilderPlatform) };
const GetBuildKitConnectionRequest = proto3.makeMessageType(
  "depot.cli.v1.GetBuildKitConnectionRequest", () => [str(1, "build_id"), platform]);
const PendingConnection = proto3.makeMessageType("depot.cli.v1.PendingConnection", () => [
  { no: 1, name: "wait_ms", kind: "scalar", T: I32 },
]);
const Cert = proto3.makeMessageType("depot.cli.v1.Cert", () => [str(1, "cert"), str(2, "key")]);
const ActiveConnection = proto3.makeMessageType("depot.cli.v1.ActiveConnection", () => [
  str(1, "endpoint"),
  str(2, "server_name"),
  msg(3, "cert", Cert),
  msg(4, "ca_cert", Cert),
]);
const GetBuildKitConnectionResponse = proto3.makeMessageType(
  "depot.cli.v1.GetBuildKitConnectionResponse", () => [
    msg(1, "pending", PendingConnection, { oneof: "connection" }),
    msg(2, "active", ActiveConnection, { oneof: "connection" }),
  ]);
const ReportBuildHealthRequest = proto3.makeMessageType(
  "depot.cli.v1.ReportBuildHealthRequest", () => [str(1, "build_id"), platform]);
const ReportBuildHealthResponse = proto3.makeMessageType(
  "depot.cli.v1.ReportBuildHealthResponse", () => [msg(1, "cancels_at", Timestamp)]);

const BuildService = {
  typeName: "depot.cli.v1.BuildService",
  methods: {
    createBuild: { name: "CreateBuild", I: CreateBuildRequest, O: CreateBuildResponse, kind: MethodKind.Unary },
    finishBuild: { name: "FinishBuild", I: FinishBuildRequest, O: FinishBuildResponse, kind: MethodKind.Unary },
    getBuildKitConnection: { name: "GetBuildKitConnection", I: GetBuildKitConnectionRequest, O: GetBuildKitConnectionResponse, kind: MethodKind.Unary },
    reportBuildHealth: { name: "ReportBuildHealth", I: ReportBuildHealthRequest, O: ReportBuildHealthResponse, kind: MethodKind.Unary },
  },
};

module.exports = { ProjectService, BuildService, BuilderPlatform, Timestamp, sdkRequire };
