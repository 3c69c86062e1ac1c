// Type declarations of chunkwise's client helper (js/client/): streamChat and fetchRequest.
// The same for the mini-program, browser and Node builds.

import type { Format, PaceOptions, StreamErrorInfo } from './index.js';
import type { MarkdownRenderer } from './markdown.js';

/** The HTTP methods every mini-program request API accepts (wx, uni, Taro, tt). */
export type RequestMethod = 'OPTIONS' | 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'TRACE' | 'CONNECT';

/**
 * What chunkwise calls the request function with. Every member is narrower than the same
 * option of wx.request (miniprogram-api-typings), uni.request (@dcloudio/types) and
 * Taro.request, so each of them is a RequestFunction as declared, with no cast.
 */
export interface ChunkedRequestOptions {
  url: string;
  method?: RequestMethod;
  header?: Record<string, string>;
  /** The request body (JSON text), absent for GET. */
  data?: string;
  enableChunked?: boolean;
  responseType?: 'text' | 'arraybuffer';
  dataType?: string;
  timeout?: number;
  success?: (res: { statusCode: number; data?: unknown; header?: unknown; errMsg?: string }) => void;
  fail?: (res: { errMsg: string }) => void;
  complete?: (res: unknown) => void;
}

/** The task a wx.request-shaped function returns (every member is optional but abort). */
export interface ChunkedRequestTask {
  abort(): void;
  onHeadersReceived?(cb: (res: { statusCode?: number; header: Record<string, string> }) => void): void;
  onChunkReceived?(cb: (res: { data: ArrayBuffer }) => void): void;
  offHeadersReceived?(cb?: (...args: any[]) => void): void;
  offChunkReceived?(cb?: (...args: any[]) => void): void;
}

/** wx.request, uni.request, Taro.request, tt.request, or what fetchRequest() returns. */
export type RequestFunction = (options: ChunkedRequestOptions) => ChunkedRequestTask | any;

export interface ResumeOptions {
  /** Resumes in a row without any new text before giving up with a network_error. Default 5. */
  maxAttempts?: number;
  /** Delay before the 2nd, 3rd... attempt: delayMs × attempt, at most 5 s (the first is at once). Default 500. */
  delayMs?: number;
  /**
   * The URL that continues generation `id` after SSE event `lastEventId` ('0' when none).
   * Default: the request URL with `/chat/completions` replaced by
   * `/chat/stream/{id}?after={lastEventId}` (the chunkwise relay), its query string kept.
   */
  url?: (id: string, lastEventId: string) => string;
}

export interface ChatError {
  /**
   * 'http_error' (or the body's own `error.type`) for a non-2xx status; 'resume_failed' when the
   * relay no longer has the generation; 'network_error' for a cut that could not be resumed;
   * 'request_error' when the request function threw; else the `type` of an error event in the
   * stream (e.g. 'upstream_error').
   */
  type: string;
  /** The body's `error.message` (or its text), or the platform's errMsg. */
  message: string;
  code: StreamErrorInfo['code'];
  /** The HTTP status (200 for an error event inside a stream; 0 when there was no response). */
  status: number;
}

export type ChatStatus = 'connecting' | 'streaming' | 'resuming' | 'paused' | 'done' | 'stopped' | 'error';

/** What onUpdate, onDone and onError receive: a fresh object each time. */
export interface ChatView {
  /** The relay's generation id (null until known). */
  id: string | null;
  /** The answer text shown so far (typewriter-paced unless pace: false). */
  text: string;
  /** The reasoning text so far (not paced). */
  reasoning: string;
  /** `text` added since the previous update (for renderers that append). */
  delta: string;
  /** `reasoning` added since the previous update. */
  reasoningDelta: string;
  /** True in the last update only: no update follows. */
  done: boolean;
  status: ChatStatus;
  error: ChatError | null;
  finishReason: string | null;
  usage: Record<string, unknown> | null;
  /** How many times the stream was resumed after a cut. */
  resumes: number;
  /** Non-fatal decoder reports (an event that did not parse and was skipped: 'bad_event', 'buffer_limit'). */
  warnings: StreamErrorInfo[];
  /**
   * The setData object of this update for a message stored at `prefix` (e.g. 'msgs[3]'; ''
   * for top-level keys): only what changed since the previous update. `textParts[k]`: the
   * answer as parts of about `partLength` characters, of which a tick sends only the last
   * (absent with `markdown`); `blocks[...]`: the `markdown` renderer's patches (a block past
   * the end after blocks merged is set to []); `reasoningParts[k]` likewise; `status` when it
   * changed. Apply every update's: `onUpdate: (v) => this.setData(v.setData('msgs[3]'))`.
   * A view from `task.view()` gives the text and reasoning parts so far and the status.
   */
  setData(prefix: string): Record<string, unknown>;
  /** The answer's parts so far (their concatenation is `text`; [] with `markdown`): for frameworks that diff data themselves (uni-app, Taro). */
  textParts: string[];
  /** The reasoning's parts so far. */
  reasoningParts: string[];
}

export interface StreamChatOptions {
  /**
   * wx.request, uni.request, Taro.request, tt.request; in a browser fetchRequest(fetch). It is
   * called as a plain function (`request(opts)`): bind one that needs its `this`.
   */
  request: RequestFunction;
  /** The chat completions URL, e.g. 'https://relay.example.com/v1/chat/completions'. */
  url: string;
  /** Default 'POST'. */
  method?: RequestMethod;
  /** The request body: an object is sent as JSON with `stream: true` added (unless set); a string as it is. */
  body?: object | string;
  /** Extra headers (e.g. Authorization). content-type: application/json and accept: text/event-stream are set. */
  headers?: Record<string, string>;
  /** The stream's format for StreamDecoder. Default 'openai'. */
  format?: Format;
  /** Typewriter pacing (StreamDecoder's `pace`); false shows text as it arrives. */
  pace?: PaceOptions | false;
  cumulative?: boolean;
  maxBufferBytes?: number;
  /** Period of the timer that ticks the typewriter and calls onUpdate (at most once per period). Default 50. */
  intervalMs?: number;
  /** Alias of intervalMs. */
  setDataIntervalMs?: number;
  /** The request's timeout, passed to the request function (mini programs cap it at about 60 s; a cut is resumed). */
  timeout?: number;
  /** A connection silent this long (the relay sends a heartbeat every 15 s) is replaced by a resume; 0 turns it off. Default 30000. */
  stallMs?: number;
  /** Resume cut streams from the relay (default true); false: a cut is an error. */
  resume?: boolean | ResumeOptions;
  /** The URL cancel() POSTs to; default `<base>/chat/stream/{id}/cancel`; false: do not tell the server. */
  cancelUrl?: ((id: string) => string) | false;
  /**
   * Render the answer as Markdown: the view's setData then carries this renderer's patches
   * under `<prefix>.blocks` instead of `textParts`. Handed over: finished and freed when the
   * answer ends.
   */
  markdown?: MarkdownRenderer;
  /**
   * false: leave the answer out of view.setData and view.textParts (a page that renders it
   * elsewhere, e.g. appends view.delta to the chunkwise-markdown component). Default true.
   */
  textParts?: boolean;
  /** The length (UTF-16 units) at which a text or reasoning part closes and the next begins (a part is shorter than twice it). Default 32. */
  partLength?: number;
  /** Something changed: at most once per intervalMs, and once more at the end with done: true. */
  onUpdate?: (view: ChatView) => void;
  /** The answer ended normally or was stopped by cancel() (status 'done' or 'stopped'). */
  onDone?: (view: ChatView) => void;
  /** The answer ended with an error (the text so far stays in view.text). */
  onError?: (error: ChatError, view: ChatView) => void;
}

export interface ChatTask {
  /** The stop button: abort the request, POST the relay's cancel URL, show what arrived, end as 'stopped'. */
  cancel(): void;
  /** Stop at once with no further callback, without telling the server (page unload). */
  abort(): void;
  /** The app went to the background (onHide): a cut from now on waits for resume(). */
  pause(): void;
  /** The app is back (onShow): reconnect now if the stream was cut or has been silent for more than 3 s. */
  resume(): void;
  /** Show everything decoded so far at once. */
  skip(): void;
  /** The current view. */
  view(): ChatView;
}

/**
 * Streams one chat answer: starts the request with enableChunked, decodes onChunkReceived with
 * StreamDecoder, ticks the typewriter, batches onUpdate, resumes after cuts, cancels on stop.
 * Await init() first.
 */
export function streamChat(options: StreamChatOptions): ChatTask;

/** A wx.request-shaped function over the Fetch API and a ReadableStream body (browsers, Node 18+). */
export function fetchRequest(fetchImpl: (input: string, init?: any) => Promise<any>): RequestFunction;
