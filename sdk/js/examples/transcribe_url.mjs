// Transcribe audio the server downloads: node transcribe_url.mjs URL
// The server and key come from LISTEND_API_URL and LICENSE_KEY.
import { SmallestClient } from '@listend/client';

const client = new SmallestClient({
  apiUrl: process.env.LISTEND_API_URL ?? 'http://localhost:7100',
  licenseKey: process.env.LICENSE_KEY,
});
const result = await client.transcribeUrl(process.argv[2]);
console.log(result.text);
