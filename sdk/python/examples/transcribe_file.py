# Upload a local file (streamed from disk) and print words with times:
#   python3 transcribe_file.py speech.wav
import sys

from listend import Client, ListendError

client = Client()  # LISTEND_API_URL, LICENSE_KEY
try:
    result = client.transcribe_file(sys.argv[1], timestamps=True, language="en")
except ListendError as e:
    sys.exit(f"transcription failed: {e.code}: {e.message}")
print(f"{result.text}  (confidence {result.confidence:.2f}, {result.duration:.1f} s)")
for w in result.words:
    print(f"{w.start:6.2f} {w.end:6.2f}  {w.word}")
