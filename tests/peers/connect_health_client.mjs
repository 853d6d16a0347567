// A real connect-es client (npm @connectrpc/connect-node) calling slipway's HealthService, so
// the tests prove that slipway speaks Connect as others implement it, not only as we read it.
//
// Usage: node connect_health_client.mjs <baseUrl> <path to generated health_pb.js>
// Prints one line per call:
//   binary=<true|false> ok <CheckResponse as proto JSON>
//   binary=<true|false> error code=<Code name> message=<message>
// and exits 0 when every call completed (an error answer counts as completed); 1 otherwise.
import { pathToFileURL } from "node:url";
import { toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";

const [baseUrl, generated] = process.argv.slice(2);
if (!baseUrl || !generated) {
  console.error("usage: node connect_health_client.mjs <baseUrl> <health_pb.js>");
  process.exit(2);
}
const { HealthService, CheckResponseSchema } = await import(pathToFileURL(generated).href);

let failed = false;
for (const useBinaryFormat of [true, false]) {
  const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat });
  const client = createClient(HealthService, transport);
  // A plain call, with a deadline the server sees as Connect-Timeout-Ms.
  try {
    const res = await client.check({ service: "" }, { timeoutMs: 5000 });
    console.log(`binary=${useBinaryFormat} ok ${toJsonString(CheckResponseSchema, res)}`);
  } catch (err) {
    console.log(`binary=${useBinaryFormat} unexpected ${err}`);
    failed = true;
  }
  // A call the server refuses, to see a Connect error body decoded by connect-es.
  try {
    await client.check({ service: "refuse-me" }, { headers: { authorization: "Bearer wrong" } });
    console.log(`binary=${useBinaryFormat} unexpected success for a refused call`);
    failed = true;
  } catch (err) {
    const e = ConnectError.from(err);
    console.log(`binary=${useBinaryFormat} error code=${Code[e.code]} message=${e.rawMessage}`);
  }
}
process.exit(failed ? 1 : 0);
