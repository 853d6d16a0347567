// A real connect-es client (npm @connectrpc/connect-node, JSON format) calling ctrl: the
// tokenless CtrlService.Liveness, and BuildService.GenerateUploadURL with and without a token.
//
// Usage: node connect_ctrl_client.mjs <baseUrl> <dir of generated *_pb.js> <token> <project> <sha256> <size>
// Prints one line per call:
//   <call> ok <response as proto JSON>
//   <call> error code=<Code name> message=<message>
// and exits 0 when every call completed (an error answer counts as completed); 1 otherwise.
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [baseUrl, generated, token, project, sha256, size] = process.argv.slice(2);
if (!size) {
  console.error("usage: node connect_ctrl_client.mjs <baseUrl> <gen dir> <token> <project> <sha256> <size>");
  process.exit(2);
}
const load = (name) => import(pathToFileURL(join(generated, "slipway/ctrl/v1", name)).href);
const { CtrlService, LivenessResponseSchema } = await load("ctrl_pb.js");
const { BuildService, GenerateUploadURLResponseSchema } = await load("build_pb.js");

const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: false });
const ctrl = createClient(CtrlService, transport);
const builds = createClient(BuildService, transport);

let failed = false;
async function call(name, schema, fn) {
  try {
    const res = await fn();
    console.log(`${name} ok ${toJsonString(schema, res)}`);
  } catch (err) {
    if (!(err instanceof ConnectError)) {
      console.log(`${name} unexpected ${err}`);
      failed = true;
      return;
    }
    console.log(`${name} error code=${Code[err.code]} message=${err.rawMessage}`);
  }
}

await call("liveness", LivenessResponseSchema, () => ctrl.liveness({}, { timeoutMs: 5000 }));
const request = { project, sha256, size: BigInt(size) };
await call("upload", GenerateUploadURLResponseSchema, () =>
  builds.generateUploadURL(request, { headers: { authorization: `Bearer ${token}` } }));
await call("upload-anonymous", GenerateUploadURLResponseSchema, () =>
  builds.generateUploadURL(request));
process.exit(failed ? 1 : 0);
