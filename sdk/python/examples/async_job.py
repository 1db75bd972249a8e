# Submit a long recording as a job; the server POSTs the result to the callback
# URL, and we also poll for it: python3 async_job.py AUDIO_URL CALLBACK_URL
import sys

from listend import Client

client = Client()
job = client.submit(url=sys.argv[1], callback_url=sys.argv[2])
print("submitted", job.job_id, job.status)
job = client.wait(job.job_id, timeout=600)
if job.status == "completed":
    print(job.result.text)
else:
    sys.exit(f"job {job.status}: {job.error}")
