// Lists every model of a Hub endpoint with the official JS client and
// snapshot-downloads each into a Hugging Face cache directory, as a user of
// the client would: node snapshot.mjs ENDPOINT CACHE_DIR [TOKEN]
import { listModels, snapshotDownload } from "@huggingface/hub";

const [hubUrl, cacheDir, accessToken] = process.argv.slice(2);
const auth = accessToken ? { accessToken } : {};
let n = 0;
for await (const m of listModels({ hubUrl, ...auth })) {
  const dir = await snapshotDownload({ repo: { type: "model", name: m.name }, hubUrl, cacheDir, ...auth });
  console.log(`${m.name}\t${dir}`);
  n++;
}
console.log(`models\t${n}`);
