// Type declarations for @listend/client (written by hand).

export interface ClientOptions {
  /** Default: $LISTEND_API_URL, then http://localhost:7100. */
  apiUrl?: string;
  /** Default: $LICENSE_KEY. */
  licenseKey?: string;
  /** Bounds each HTTP request as a whole, upload and answer included, in milliseconds (default 300000); APITimeoutError after it. */
  timeoutMs?: number;
  /** Retries on 429, 503 and connection failures (default 3). */
  maxRetries?: number;
  /** Authorization scheme word (default "Token"; "Bearer" also accepted by listend). */
  authScheme?: string;
}

export interface TranscriptionOptions {
  language?: string;
  punctuate?: boolean;
  timestamps?: boolean;
  diarize?: boolean;
  /** Each channel of the file transcribed on its own (results in `channels`). */
  multichannel?: boolean;
  format?: 'json' | 'text' | 'srt' | 'vtt';
  /** Spoken numbers as digits ("ten" -> "10"). */
  numerals?: boolean;
  /** Replace names, phone numbers, SSNs, e-mail addresses ([FIRSTNAME_1], …) / card data ([CREDITCARDNUMBER_1], …). */
  redactPii?: boolean;
  redactPci?: boolean;
  /** Raw PCM uploads: e.g. "linear16" with sampleRate. */
  encoding?: string;
  sampleRate?: number;
  [option: string]: unknown;
}

export interface FileOptions extends TranscriptionOptions {
  filename?: string;
  contentType?: string;
}

export interface Word {
  word: string;
  start: number;
  end: number;
  confidence: number;
  /** With multichannel: true, the channel the word was heard on (0 = first/left). */
  channel?: number;
  /** With diarize: true (files and, final by final, streams), the speaker (0-based). */
  speaker?: number;
  /** Streams with diarize: true: how sure the speaker label is (0..1). */
  speaker_confidence?: number;
  [field: string]: unknown;
}

export interface Utterance {
  text: string;
  start: number;
  end: number;
  channel?: number;
  [field: string]: unknown;
}

/** One channel's own result (multichannel: true). */
export interface ChannelTranscription {
  channel: number;
  text: string;
  confidence: number;
  model?: string;
  words?: Word[];
  utterances: Utterance[];
}

/** The key's daily audio quota from an answer's X-Quota-* headers. */
export class Quota {
  /** Audio seconds per UTC day. */
  limit: number;
  /** Audio seconds left today. */
  remaining: number;
  /** Seconds until the UTC day (and the quota) starts over. */
  reset: number | null;
  /** Share used, 0 to 1. */
  readonly usedRatio: number;
  static fromHeaders(headers: Headers | Record<string, string> | null | undefined): Quota | null;
}

export class Transcription {
  /** X-Quota-* of the answer this came from (null when unknown). */
  readonly quota: Quota | null;
  request_id: string;
  text: string;
  confidence: number;
  duration: number;
  language: string;
  /** Present (non-empty) only with timestamps: true. */
  words: Word[];
  utterances: Utterance[];
  /** Present only with multichannel: true. */
  channels?: ChannelTranscription[];
  /** With redactPii / redactPci: the tokens that replaced what was said, in order. */
  redacted_entities?: string[];
  readonly raw: Record<string, unknown>;
  [field: string]: unknown;
}

export class TextResult {
  /** X-Quota-* of the answer this came from (null when unknown). */
  readonly quota: Quota | null;
  text: string;
  format: string;
  request_id: string | null;
  readonly raw: Record<string, unknown>;
}

export type JobStatus = 'queued' | 'processing' | 'completed' | 'failed' | 'cancelled';

export class Job {
  /** X-Quota-* of the answer this came from (null when unknown). */
  readonly quota: Quota | null;
  job_id: string;
  status: JobStatus;
  progress?: number;
  created_at?: string;
  completed_at?: string | null;
  result?: Transcription;
  error?: unknown;
  readonly id: string;
  readonly done: boolean;
  readonly raw: Record<string, unknown>;
  [field: string]: unknown;
}

export class License {
  /** X-Quota-* of the answer this came from (null when unknown). */
  readonly quota: Quota | null;
  key_id: string;
  name: string;
  expires_at: string | null;
  limits?: Record<string, unknown>;
  usage?: Record<string, unknown>;
  readonly raw: Record<string, unknown>;
  [field: string]: unknown;
}

export class Health {
  status: string;
  reason?: string;
  readonly healthy: boolean;
  readonly raw: Record<string, unknown>;
  [field: string]: unknown;
}

export class StreamMessage {
  /** X-Quota-* of the answer this came from (null when unknown). */
  readonly quota: Quota | null;
  type: 'transcription' | 'speech_started' | 'speech_ended' | string;
  session_id?: string;
  transcript?: string;
  is_final?: boolean;
  is_last?: boolean;
  words?: Word[];
  start?: number;
  duration?: number;
  /** Finals of a stream with redactPii / redactPci: the tokens this final gave out. */
  redacted_entities?: string[];
  readonly text: string;
  readonly isFinal: boolean;
  readonly isLast: boolean;
  readonly raw: Record<string, unknown>;
  [field: string]: unknown;
}

export interface SubmitOptions extends FileOptions {
  url?: string;
  file?: AudioInput;
  callbackUrl?: string;
  callback_url?: string;
}

export interface StreamOptions {
  encoding?: string;
  sampleRate?: number;
  language?: string;
  interimResults?: boolean;
  /** Bytes per binary frame (default 4096). */
  chunkSize?: number;
  /** Pace audio at real-time speed (linear16 only). */
  realtime?: boolean;
  /** Label speakers on final words, final by final; numSpeakers caps the count. */
  diarize?: boolean;
  numSpeakers?: number;
  /** Hide personal / card data in interims and finals (finals list their tokens in redacted_entities). */
  redactPii?: boolean;
  redactPci?: boolean;
  [param: string]: unknown;
}

export type AudioInput =
  | string
  | URL
  | Uint8Array
  | ArrayBuffer
  | Blob
  | ReadableStream<Uint8Array>
  | AsyncIterable<Uint8Array | string>
  | NodeJS.ReadableStream;

export type StreamInput =
  | string
  | URL
  | Uint8Array
  | ArrayBuffer
  | Iterable<Uint8Array | { type: string }>
  | AsyncIterable<Uint8Array | { type: string }>;

export class ListendClient {
  constructor(options?: ClientOptions);
  readonly apiUrl: string;
  readonly licenseKey: string | null;
  health(): Promise<Health>;
  license(): Promise<License>;
  transcribeUrl(url: string, options?: TranscriptionOptions): Promise<Transcription | TextResult>;
  transcribeFile(file: AudioInput, options?: FileOptions): Promise<Transcription | TextResult>;
  transcribe(source: AudioInput, options?: FileOptions): Promise<Transcription | TextResult>;
  submit(options: SubmitOptions): Promise<Job>;
  job(jobId: string | Job): Promise<Job>;
  jobs(filters?: Record<string, unknown>): Promise<Job[]>;
  cancel(jobId: string | Job): Promise<Job>;
  wait(jobId: string | Job, options?: { timeoutMs?: number | null; pollIntervalMs?: number; maxPollIntervalMs?: number }): Promise<Job>;
  stream(audio: StreamInput, options?: StreamOptions): AsyncGenerator<StreamMessage, void, undefined>;
}

/** The name the Smallest Self-Host docs use. */
export { ListendClient as SmallestClient };
export default ListendClient;
export const DEFAULT_API_URL: string;

export interface ErrorOptions {
  status?: number | null;
  code?: string | null;
  requestId?: string | null;
  body?: Record<string, unknown>;
  cause?: unknown;
}

export class ListendError extends Error {
  constructor(message: string, options?: ErrorOptions);
  status: number | null;
  code: string | null;
  requestId: string | null;
  body: Record<string, unknown>;
  /** X-Quota-* of the refusal (null when not authenticated). */
  quota: Quota | null;
}
export class APIConnectionError extends ListendError {}
/** The request took longer than timeoutMs; never retried. */
export class APITimeoutError extends APIConnectionError {}
export class InvalidLicenseError extends ListendError {}
export class LicenseExpiredError extends ListendError {
  expiresAt: string | null;
}
export class QuotaExceededError extends ListendError {}
export class RateLimitError extends ListendError {
  retryAfter: number | null;
}
export class ServiceUnavailableError extends ListendError {
  retryAfter: number | null;
}
export class BadRequestError extends ListendError {}
export class NotFoundError extends BadRequestError {}
export class ServerError extends ListendError {}
export class StreamError extends ListendError {}
