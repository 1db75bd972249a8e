# Live transcription of a 16 kHz mono WAV (or raw linear16) file over WebSocket,
# printing interim and final results: python3 stream_file.py speech.wav
import asyncio
import sys

from listend import Client


async def main(path):
    client = Client()
    async for msg in client.stream(path, sample_rate=16000, interim_results=True):
        if msg.type == "transcription":
            print("final  " if msg.is_final else "interim", msg.transcript)


asyncio.run(main(sys.argv[1]))
