// Submit a long recording as a job; the server POSTs the result to the callback
// URL, and we also poll for it: node async_job.mjs AUDIO_URL CALLBACK_URL
import { ListendClient } from '@listend/client';

const client = new ListendClient();
let job = await client.submit({ url: process.argv[2], callbackUrl: process.argv[3] });
console.log('submitted', job.job_id, job.status);
job = await client.wait(job.job_id, { timeoutMs: 600000 });
if (job.status === 'completed') console.log(job.result.text);
else {
  console.error(`job ${job.status}: ${JSON.stringify(job.error)}`);
  process.exitCode = 1;
}
