# Transcribe audio the server downloads: python3 transcribe_url.py URL
# The server and key come from LISTEND_API_URL and LICENSE_KEY.
import os
import sys

from listend import Client

client = Client(api_url=os.environ.get("LISTEND_API_URL", "http://localhost:7100"),
                license_key=os.environ["LICENSE_KEY"])
print(client.transcribe_url(sys.argv[1]).text)
