// Drives copies, conditional requests, multipart listing and completion, and refused headers
// through the AWS SDK for JavaScript v3, and prints one JSON object of what happened, for
// tests/integration/storage/s3_server_sdk_test.cc.
//
// Env: S3_ENDPOINT, S3_REGION, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_BUCKET.
import { createHash } from "node:crypto";
import {
  S3Client,
  CreateBucketCommand,
  PutObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  ListPartsCommand,
  ListMultipartUploadsCommand,
  CompleteMultipartUploadCommand,
  ListObjectVersionsCommand,
  DeleteObjectCommand,
} from "@aws-sdk/client-s3";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set; the test harness must pass it`);
  return v;
};

const client = new S3Client({
  endpoint: env("S3_ENDPOINT"),
  region: env("S3_REGION"),
  forcePathStyle: true,
  maxAttempts: 1,
  credentials: { accessKeyId: env("S3_ACCESS_KEY_ID"), secretAccessKey: env("S3_SECRET_ACCESS_KEY") },
});
const Bucket = env("S3_BUCKET");
const send = (cmd) => client.send(cmd);
const md5 = (b) => `"${createHash("md5").update(b).digest("hex")}"`;
const bytes = async (body) => Buffer.from(await body.transformToByteArray());

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return { name: e.name, status: e.$metadata?.httpStatusCode ?? null };
  }
}

const out = {};
await send(new CreateBucketCommand({ Bucket }));

// Copy: metadata COPY and REPLACE, conditions.
const src = Buffer.from("copied by the JavaScript SDK");
const put = await send(new PutObjectCommand({
  Bucket, Key: "src.txt", Body: src, ContentType: "text/x-js", Metadata: { who: "sdk" },
}));
const copy = await send(new CopyObjectCommand({ Bucket, Key: "copy.txt", CopySource: `${Bucket}/src.txt` }));
const copied = await send(new GetObjectCommand({ Bucket, Key: "copy.txt" }));
out.copy = {
  etag: copy.CopyObjectResult?.ETag,
  expectedEtag: md5(src),
  body: (await bytes(copied.Body)).toString(),
  contentType: copied.ContentType,
  metadata: copied.Metadata,
};
await send(new CopyObjectCommand({
  Bucket, Key: "replaced.txt", CopySource: `${Bucket}/src.txt`, MetadataDirective: "REPLACE",
  ContentType: "application/x-new", Metadata: { who: "replaced" },
}));
const replaced = await send(new HeadObjectCommand({ Bucket, Key: "replaced.txt" }));
out.replace = { contentType: replaced.ContentType, metadata: replaced.Metadata };
out.copyIfMatchWrong = await errorOf(send(new CopyObjectCommand({
  Bucket, Key: "never.txt", CopySource: `${Bucket}/src.txt`, CopySourceIfMatch: '"ffff"',
})));
out.copyOntoItself = await errorOf(send(new CopyObjectCommand({
  Bucket, Key: "src.txt", CopySource: `${Bucket}/src.txt`,
})));

// Conditional reads and writes.
out.getIfNoneMatch = await errorOf(send(new GetObjectCommand({ Bucket, Key: "src.txt", IfNoneMatch: put.ETag })));
out.getIfMatchWrong = await errorOf(send(new GetObjectCommand({ Bucket, Key: "src.txt", IfMatch: '"ffff"' })));
out.headIfModifiedSinceFuture = await errorOf(send(new HeadObjectCommand({
  Bucket, Key: "src.txt", IfModifiedSince: new Date(Date.now() + 86400e3),
})));
out.putIfNoneMatchExisting = await errorOf(send(new PutObjectCommand({
  Bucket, Key: "src.txt", Body: "overwrite?", IfNoneMatch: "*",
})));
out.putIfNoneMatchNew = await errorOf(send(new PutObjectCommand({
  Bucket, Key: "new.txt", Body: "fresh", IfNoneMatch: "*",
})));
out.afterConditionalPut = (await bytes((await send(new GetObjectCommand({ Bucket, Key: "src.txt" }))).Body)).toString();

// Multipart: a copied part and an uploaded one, listed, completed twice, read by part.
const Key = "mp.bin";
const part1 = Buffer.alloc(5 * 1024 * 1024, 7);
await send(new PutObjectCommand({ Bucket, Key: "part1.bin", Body: part1 }));
const { UploadId } = await send(new CreateMultipartUploadCommand({ Bucket, Key }));
const p1 = await send(new UploadPartCopyCommand({
  Bucket, Key, UploadId, PartNumber: 1, CopySource: `${Bucket}/part1.bin`,
}));
const p2 = await send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: 2, Body: "the end" }));
const parts = await send(new ListPartsCommand({ Bucket, Key, UploadId }));
out.listParts = parts.Parts.map((p) => ({ n: p.PartNumber, size: p.Size, etag: p.ETag }));
const uploads = await send(new ListMultipartUploadsCommand({ Bucket }));
out.listUploads = (uploads.Uploads ?? []).map((u) => ({ key: u.Key, id: u.UploadId === UploadId }));
const MultipartUpload = {
  Parts: [
    { PartNumber: 1, ETag: p1.CopyPartResult.ETag },
    { PartNumber: 2, ETag: p2.ETag },
  ],
};
const done = await send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload }));
const again = await send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload }));
out.complete = { etag: done.ETag, againEtag: again.ETag };
const second = await send(new GetObjectCommand({ Bucket, Key, PartNumber: 2 }));
out.partNumber = { body: (await bytes(second.Body)).toString(), partsCount: second.PartsCount };

// A SHA256 multipart upload: the SDK computes each part's checksum, the completion lists them,
// and the object's checksum is the composite one.
{
  const Key = "sums.bin";
  const bodies = [Buffer.alloc(5 * 1024 * 1024, 3), Buffer.from("last part")];
  const { UploadId } = await send(new CreateMultipartUploadCommand({
    Bucket, Key, ChecksumAlgorithm: "SHA256",
  }));
  const Parts = [];
  for (const [i, Body] of bodies.entries()) {
    const p = await send(new UploadPartCommand({
      Bucket, Key, UploadId, PartNumber: i + 1, Body, ChecksumAlgorithm: "SHA256",
    }));
    Parts.push({ PartNumber: i + 1, ETag: p.ETag, ChecksumSHA256: p.ChecksumSHA256 });
  }
  const sums = bodies.map((b) => createHash("sha256").update(b).digest());
  const expected = createHash("sha256").update(Buffer.concat(sums)).digest("base64") + "-2";
  const done = await send(new CompleteMultipartUploadCommand({
    Bucket, Key, UploadId, MultipartUpload: { Parts },
  }));
  const head = await send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: "ENABLED" }));
  const part = await send(new HeadObjectCommand({ Bucket, Key, PartNumber: 2, ChecksumMode: "ENABLED" }));
  out.sha256Multipart = {
    partSums: Parts.map((p) => p.ChecksumSHA256),
    expectedPartSums: sums.map((s) => s.toString("base64")),
    complete: done.ChecksumSHA256, head: head.ChecksumSHA256, expected,
    part2: part.ChecksumSHA256,
  };
}

// Refused, never ignored: nothing is stored.
out.sse = await errorOf(send(new PutObjectCommand({
  Bucket, Key: "secret.txt", Body: "x", ServerSideEncryption: "AES256",
})));
out.sseStored = (await errorOf(send(new HeadObjectCommand({ Bucket, Key: "secret.txt" })))) === null;

const versions = await send(new ListObjectVersionsCommand({ Bucket }));
out.versions = (versions.Versions ?? []).map((v) => v.VersionId);
await send(new DeleteObjectCommand({ Bucket, Key: "new.txt" }));

console.log(JSON.stringify(out));
