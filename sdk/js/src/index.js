// @listend/client: JavaScript client for the listend speech-to-text server.
export { ListendClient, SmallestClient, DEFAULT_API_URL } from './client.js';
export {
  ListendError, APIConnectionError, APITimeoutError, InvalidLicenseError, LicenseExpiredError, QuotaExceededError,
  RateLimitError, ServiceUnavailableError, BadRequestError, NotFoundError, ServerError, StreamError,
} from './errors.js';
export { Transcription, TextResult, Job, License, Health, StreamMessage, Quota } from './results.js';
export { ListendClient as default } from './client.js';
