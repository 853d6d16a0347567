// Drives an S3-compatible endpoint with the real AWS SDK for JavaScript v3 and prints one JSON
// object describing what happened, for tests/integration/storage/s3_server_sdk_test.cc.
//
// Env: S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_BUCKET.
// Recent SDK versions upload with aws-chunked bodies carrying a CRC32 trailer by default; the
// headers each PutObject was sent with are recorded so the test can assert that path was taken.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  DeleteObjectCommand,
} from "@aws-sdk/client-s3";
import { getSignedUrl } from "@aws-sdk/s3-request-presigner";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; the test harness must pass it`);
  return v;
};

const client = new S3Client({
  endpoint: env("S3_ENDPOINT"),
  region: env("S3_REGION"),
  forcePathStyle: true,
  credentials: { accessKeyId: env("S3_ACCESS_KEY_ID"), secretAccessKey: env("S3_SECRET_ACCESS_KEY") },
});
const Bucket = env("S3_BUCKET");

// The headers of the last request that left the client, after signing.
let lastHeaders = {};
client.middlewareStack.add(
  (next) => async (args) => {
    lastHeaders = { ...args.request.headers };
    return next(args);
  },
  { step: "deserialize", name: "recordSentHeaders" },
);

const md5 = (b) => createHash("md5").update(b).digest("hex");
const sha256 = (b) => createHash("sha256").update(b).digest("hex");
const pick = (h, names) => Object.fromEntries(names.map((n) => [n, h[n] ?? null]));
const sentNames = ["x-amz-content-sha256", "content-encoding", "x-amz-trailer", "x-amz-decoded-content-length"];

async function bodyBytes(stream) {
  return Buffer.from(await stream.transformToByteArray());
}

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { name: e.name, status: e.$metadata?.httpStatusCode ?? null };
  }
}

const out = {};
await client.send(new CreateBucketCommand({ Bucket }));

// A string body.
const text = "hello from the AWS SDK v3 \u00fc";
const putText = await client.send(
  new PutObjectCommand({ Bucket, Key: "sdk/text.txt", Body: text, ContentType: "text/plain", Metadata: { origin: "sdk" } }),
);
out.putText = { etag: putText.ETag, expectedEtag: `"${md5(Buffer.from(text))}"`, sent: pick(lastHeaders, sentNames) };

// A few MiB of bytes: deterministic, so the test can reason about them.
const big = Buffer.alloc(3 * 1024 * 1024 + 17);
for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 10)) & 0xff;
const putBig = await client.send(new PutObjectCommand({ Bucket, Key: "sdk/big.bin", Body: big }));
out.putBig = {
  etag: putBig.ETag,
  expectedEtag: `"${md5(big)}"`,
  checksumCRC32: putBig.ChecksumCRC32 ?? null,
  sent: pick(lastHeaders, sentNames),
};

// A stream of known length: the SDK cannot hash it up front, so it sends it aws-chunked with
// a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
const chunks = [];
for (let off = 0; off < big.length; off += 256 * 1024) chunks.push(big.subarray(off, off + 256 * 1024));
const putStream = await client.send(
  new PutObjectCommand({ Bucket, Key: "sdk/stream.bin", Body: Readable.from(chunks), ContentLength: big.length }),
);
out.putStream = {
  etag: putStream.ETag,
  expectedEtag: `"${md5(big)}"`,
  checksumCRC32: putStream.ChecksumCRC32 ?? null,
  sent: pick(lastHeaders, sentNames),
};
const getStream = await client.send(new GetObjectCommand({ Bucket, Key: "sdk/stream.bin" }));
out.getStream = { sha256: sha256(await bodyBytes(getStream.Body)), expectedSha256: sha256(big) };

const getText = await client.send(new GetObjectCommand({ Bucket, Key: "sdk/text.txt" }));
out.getText = {
  body: (await bodyBytes(getText.Body)).toString("utf8"),
  contentType: getText.ContentType,
  metadata: getText.Metadata,
};
const getBig = await client.send(new GetObjectCommand({ Bucket, Key: "sdk/big.bin" }));
const bigBack = await bodyBytes(getBig.Body);
out.getBig = { length: bigBack.length, sha256: sha256(bigBack), expectedSha256: sha256(big) };

const range = await client.send(new GetObjectCommand({ Bucket, Key: "sdk/big.bin", Range: "bytes=10-19" }));
const rangeBytes = await bodyBytes(range.Body);
out.range = { contentRange: range.ContentRange, equal: rangeBytes.equals(big.subarray(10, 20)) };

const head = await client.send(new HeadObjectCommand({ Bucket, Key: "sdk/big.bin" }));
out.head = { contentLength: head.ContentLength, etag: head.ETag, lastModified: head.LastModified?.toISOString() ?? null };

const list = await client.send(new ListObjectsV2Command({ Bucket, Prefix: "sdk/" }));
out.list = { keys: (list.Contents ?? []).map((o) => o.Key), keyCount: list.KeyCount, isTruncated: list.IsTruncated };

// Presigned PUT and GET made by the SDK's presigner, used with plain fetch.
const putUrl = await getSignedUrl(client, new PutObjectCommand({ Bucket, Key: "sdk/presigned.txt" }), { expiresIn: 300 });
const putResp = await fetch(putUrl, { method: "PUT", body: "via presigned url" });
const getUrl = await getSignedUrl(client, new GetObjectCommand({ Bucket, Key: "sdk/presigned.txt" }), { expiresIn: 300 });
const getResp = await fetch(getUrl);
out.presigned = { putStatus: putResp.status, getStatus: getResp.status, body: await getResp.text() };

await client.send(new DeleteObjectCommand({ Bucket, Key: "sdk/text.txt" }));
out.afterDelete = {
  headError: await errorOf(client.send(new HeadObjectCommand({ Bucket, Key: "sdk/text.txt" }))),
  getError: await errorOf(client.send(new GetObjectCommand({ Bucket, Key: "sdk/text.txt" }))),
};

process.stdout.write(JSON.stringify(out) + "\n");
