"""Python client for listend, the self-hosted speech-to-text server speaking the
Smallest Self-Host API.

    from listend import Client
    client = Client(api_url="http://localhost:7100", license_key="...")
    print(client.transcribe_url("https://example.com/audio.wav").text)
"""

from .client import Client, SmallestClient
from .errors import (APIConnectionError, APITimeoutError, BadRequestError, InvalidLicenseError, LicenseExpiredError,
                     ListendError, NotFoundError, QuotaExceededError, RateLimitError, ServerError,
                     ServiceUnavailableError, StreamError)
from .results import Health, Job, License, Quota, StreamMessage, TextResult, Transcription, Utterance, Word

__version__ = "0.1.0"

__all__ = [
    "Client", "SmallestClient",
    "ListendError", "APIConnectionError", "APITimeoutError", "InvalidLicenseError", "LicenseExpiredError",
    "QuotaExceededError", "RateLimitError", "ServiceUnavailableError", "BadRequestError",
    "NotFoundError", "ServerError", "StreamError",
    "Transcription", "TextResult", "Word", "Utterance", "Job", "License", "Health", "StreamMessage", "Quota",
]
