// Type declarations of chunkwise's public API (the same for the mini-program, browser and Node builds).

/** The stream formats `StreamDecoder` reads. */
export type Format =
  | 'text'
  | 'sse'
  | 'ndjson'
  | 'hex-records'
  | 'openai'
  | 'openai-responses'
  | 'anthropic'
  | 'gemini'
  | 'ollama'
  | 'dashscope'
  | 'dify';

export const FORMATS: Format[];

/**
 * A URL object where the environment has one (the DOM lib, Node's types); without them (a
 * mini-program project compiled with lib ES20xx only) this is `never`, so no DOM lib is needed.
 */
export type URLObject = typeof globalThis extends { URL: { prototype: infer U } } ? U : never;

export interface InitOptions {
  /** Mini program: the wasm file's path inside the code package. Default '/miniprogram_npm/chunkwise/chunkwise.wasm.br'. */
  wasmPath?: string;
  /** Browser: where to fetch the wasm from. Default: next to index.js. */
  wasmUrl?: string | URLObject;
}

/** Loads the wasm module once (idempotent). Await it before creating a decoder. */
export function init(options?: InitOptions): Promise<void>;

export interface PaceOptions {
  /** Base rate in grapheme clusters per second. Default 40. */
  cps?: number;
  /** The backlog is never more than this many ms behind: the rate rises to catch up. Default 1500. */
  maxLagMs?: number;
  /** After the end of the stream, everything is shown within this many ms. Default 1000. */
  drainMs?: number;
}

export interface StreamDecoderOptions {
  /** Default 'text'. */
  format?: Format;
  /** Every message carries the whole text so far: return only the new suffix. Default false. */
  cumulative?: boolean;
  /** Typewriter pacing for tick(); false turns it off. */
  pace?: PaceOptions | false;
  /**
   * false: while pacing, an update's `text` is always '' and its `queued` counts the UTF-8
   * bytes of text the call queued for tick(), so paced text crosses into JS once (from tick)
   * instead of twice. Default true (updates carry the text as well).
   */
  pacedUpdateText?: boolean;
  /** The bound of one line, event, record or JSON value. Default 1048576 (1 MiB). */
  maxBufferBytes?: number;
  /**
   * Let the JS engine's builtins (`decodeURIComponent`) turn UTF-8 into text: the complete
   * middle of each plain-text chunk without pacing of at least 8 bytes (or at least this
   * many, given a number; the core still decides where the middle starts and ends from the
   * chunk's first and last bytes, and replaces any ill-formed byte, so the text is the same
   * either way), and the typewriter's text from tick() and skip() of at least 128 bytes (or
   * this many). A whole plain-text chunk that ends in ASCII, when the core holds no byte
   * from earlier chunks, goes to the builtins without a call into the module at all (at
   * any length with `true`; ill-formed, it goes to the core). It
   * pays where wasm is interpreted and builtins are not (JavaScriptCore without JIT), and
   * costs where wasm is compiled. Default: true in a mini program on iOS (WeChat's logic
   * layer there runs without JIT), false elsewhere.
   * Ignored (the core decodes) where the engine lacks these builtins or they fail the check
   * `init()` makes once (ill-formed UTF-8 must throw).
   */
  builtinUtf8?: boolean | number;
}

export interface StreamErrorInfo {
  /** 'buffer_limit' | 'bad_event' from the decoder, or the provider's error type. */
  type: string;
  message: string;
  /** The provider's error code, if any. */
  code: string | number | null;
}

export interface SseEvent {
  event: string;
  data: string;
  id: string;
}

export interface Update {
  /** Answer text decoded by this call ('' when none, and always with pacedUpdateText: false). */
  text: string;
  /** With pacing and pacedUpdateText: false only: UTF-8 bytes of text this call queued for tick(). */
  queued?: number;
  /** Reasoning text decoded by this call. */
  reasoning: string;
  /** True once the stream delivered its end marker, and always after finish(). */
  done: boolean;
  finishReason: string | null;
  /** The provider's own usage object. */
  usage: Record<string, unknown> | null;
  /** The first error of this call, or null. */
  error: StreamErrorInfo | null;
  /** Every error of this call, in stream order (shared and frozen when empty). */
  errors: readonly StreamErrorInfo[];
  /** Raw events ('sse' and 'ndjson' formats; shared and frozen when empty). */
  events: readonly SseEvent[];
}

export class StreamDecoder {
  constructor(options?: StreamDecoderOptions);
  readonly format: Format;
  /** Decode the next chunk (onChunkReceived's res.data). Never throws for stream content. */
  push(chunk: ArrayBuffer | ArrayBufferView): Update;
  /** End of input. */
  finish(): Update;
  /** Start a new stream with the same options. */
  reset(): void;
  /** Release the wasm memory; the decoder cannot be used afterwards. */
  free(): void;
  /** The next characters to show at nowMs (default Date.now()); never splits a grapheme cluster. */
  tick(nowMs?: number): string;
  /** Grapheme clusters decoded but not yet shown. */
  readonly pending: number;
  /** Everything not yet shown, at once. */
  skip(): string;
  /** The last SSE event ID seen ('' when none): resume a cut stream with ?after= or Last-Event-ID. */
  readonly lastEventId: string;
  /** The answer's id as the provider's first message gives it (OpenAI's chunk `id`, Anthropic's `message.id`, Gemini's `responseId`, ...); null until known. */
  readonly responseId: string | null;
}

export * from './client.js';
