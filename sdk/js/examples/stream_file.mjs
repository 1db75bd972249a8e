// Live transcription of a 16 kHz mono WAV (or raw linear16) file over WebSocket,
// printing interim and final results: node stream_file.mjs speech.wav
import { ListendClient } from '@listend/client';

const client = new ListendClient();
for await (const msg of client.stream(process.argv[2], { sampleRate: 16000, interimResults: true })) {
  if (msg.type === 'transcription') console.log(msg.is_final ? 'final  ' : 'interim', msg.transcript);
}
