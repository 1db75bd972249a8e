// Upload a local file (streamed from disk) and print words with times:
//   node transcribe_file.mjs speech.wav
import { ListendClient, ListendError } from '@listend/client';

const client = new ListendClient(); // LISTEND_API_URL, LICENSE_KEY
try {
  const result = await client.transcribeFile(process.argv[2], { timestamps: true, language: 'en' });
  console.log(`${result.text}  (confidence ${result.confidence.toFixed(2)}, ${result.duration.toFixed(1)} s)`);
  for (const w of result.words) console.log(`${w.start.toFixed(2)} ${w.end.toFixed(2)}  ${w.word}`);
} catch (e) {
  if (!(e instanceof ListendError)) throw e;
  console.error(`transcription failed: ${e.code}: ${e.message}`);
  process.exitCode = 1;
}
