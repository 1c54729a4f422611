// Uploads one file to a ClientVault server with stock tus-js-client, as a Node app would.
//
//   node upload.mjs '{"endpoint": ..., "authorization": ..., "folderId": ..., "path": ...,
//                     "source": "file" | "object-stream", "chunkSize": N}'
//
// "file" hands tus-js-client an fs.ReadStream (it reads the ranges it needs from the file);
// "object-stream" an object-mode Readable yielding 1 MiB Buffers, so every PATCH carries one
// read whatever chunkSize says. Prints "accepted N" after each PATCH the server answered, and
// finally one JSON line with the Document-Id and Document-Version of the final answer. The
// test kills and restarts the server meanwhile: the retries resume from the offset a HEAD
// reports.
import fs from "node:fs";
import { Readable } from "node:stream";
import { Upload } from "tus-js-client";

const options = JSON.parse(process.argv[2]);
const size = fs.statSync(options.path).size;
const MiB = 1024 * 1024;

async function* oneMiBReads(path) {
  const handle = await fs.promises.open(path, "r");
  try {
    for (let position = 0; position < size; position += MiB) {
      const buffer = Buffer.alloc(Math.min(MiB, size - position));
      await handle.read(buffer, 0, buffer.length, position);
      yield buffer;
    }
  } finally {
    await handle.close();
  }
}

const input =
  options.source === "file"
    ? fs.createReadStream(options.path)
    : Readable.from(oneMiBReads(options.path), { objectMode: true });

let documentId = null;
let documentVersion = null;
const upload = new Upload(input, {
  endpoint: options.endpoint,
  headers: { Authorization: options.authorization },
  metadata: { filename: `${options.source}.bin`, folder_id: options.folderId },
  uploadSize: size,
  chunkSize: options.chunkSize,
  storeFingerprintForResuming: false,
  // Enough retries to outlast a server restart.
  retryDelays: [0, 250, 500, 1000, 1000, 2000, 2000, 3000, 3000, 5000, 5000, 5000],
  onChunkComplete(_chunk, accepted) {
    console.log(`accepted ${accepted}`);
  },
  onAfterResponse(_request, response) {
    documentId = response.getHeader("Document-Id") ?? documentId;
    documentVersion = response.getHeader("Document-Version") ?? documentVersion;
  },
  onError(error) {
    console.error(`upload failed: ${error}`);
    process.exit(1);
  },
  onSuccess() {
    console.log(JSON.stringify({ documentId, documentVersion, url: upload.url }));
  },
});
upload.start();
