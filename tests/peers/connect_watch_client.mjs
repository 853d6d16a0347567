// A real connect-es client (npm @connectrpc/connect-node) following ctrl's server-streaming
// DeploymentService.WatchDeployment over HTTP/1.1, in the JSON or the binary format.
//
// Usage: node connect_watch_client.mjs <baseUrl> <dir of generated *_pb.js> <token> <deployment id> <json|binary>
// Prints one line per message, as it arrives:
//   message <the WatchDeploymentResponse as proto JSON>
// and at the end of the stream one of:
//   end ok
//   end error code=<Code name> message=<message>
// Exits 0 when the stream ended either way; 1 on anything that is not a Connect outcome.
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [baseUrl, generated, token, deploymentId, format] = process.argv.slice(2);
if (!format || (format !== "json" && format !== "binary")) {
  console.error("usage: node connect_watch_client.mjs <baseUrl> <gen dir> <token> <deployment id> <json|binary>");
  process.exit(2);
}
const { DeploymentService, WatchDeploymentResponseSchema } = await import(
  pathToFileURL(join(generated, "slipway/ctrl/v1/deployment_pb.js")).href);

const transport = createConnectTransport({
  baseUrl,
  httpVersion: "1.1",
  useBinaryFormat: format === "binary",
});
const deployments = createClient(DeploymentService, transport);

try {
  const stream = deployments.watchDeployment(
    { deploymentId },
    { headers: { authorization: `Bearer ${token}` }, timeoutMs: 120000 });
  for await (const message of stream) {
    console.log(`message ${toJsonString(WatchDeploymentResponseSchema, message)}`);
  }
  console.log("end ok");
} catch (err) {
  if (!(err instanceof ConnectError)) {
    console.log(`end unexpected ${err}`);
    process.exit(1);
  }
  console.log(`end error code=${Code[err.code]} message=${err.rawMessage}`);
}
