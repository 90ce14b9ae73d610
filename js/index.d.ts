// Type declarations of spinquant-wasm (the same for the Node.js and the browser entry).

/** The kinds of failure a SpinquantError reports. */
export type ErrorCodeValue =
  | 'E_FORMAT'
  | 'E_CHECKSUM'
  | 'E_NETWORK'
  | 'E_MEMORY'
  | 'E_ABORTED'
  | 'E_INVALID_ARG'
  | 'E_UNSUPPORTED'
  | 'E_IO';

export declare const ErrorCode: Readonly<{
  FORMAT: 'E_FORMAT';
  CHECKSUM: 'E_CHECKSUM';
  NETWORK: 'E_NETWORK';
  MEMORY: 'E_MEMORY';
  ABORTED: 'E_ABORTED';
  INVALID_ARG: 'E_INVALID_ARG';
  UNSUPPORTED: 'E_UNSUPPORTED';
  IO: 'E_IO';
}>;

/** Every error the package raises. */
export declare class SpinquantError extends Error {
  constructor(code: ErrorCodeValue, message: string, options?: { cause?: unknown; nativeCode?: string });
  readonly name: 'SpinquantError';
  readonly code: ErrorCodeValue;
  /** The C library's status name (such as 'E_NUMERIC') when the engine reported the failure. */
  readonly nativeCode?: string;
}

/**
 * Where model bytes come from. A string is a URL, resolved against the page in browsers. Under
 * Node.js a string without a scheme is a file path or a Hugging Face folder.
 */
export type ModelSource = string | URL | Response | ReadableStream<Uint8Array> | Blob | ArrayBuffer | ArrayBufferView;

export type LoadPhase = 'download' | 'cache' | 'read' | 'prepare' | 'ready';

export interface LoadProgress {
  /** download: from the network; cache: from the browser cache; read: from a file, Blob,
   * stream or bytes; prepare: the engine builds the model; ready: done. */
  phase: LoadPhase;
  loadedBytes: number;
  /** null while the size is unknown (a stream, or a download without Content-Length). */
  totalBytes: number | null;
}

export interface RuntimeOptions {
  /** 'auto' (default) uses relaxed SIMD when the engine validates it and it is known to work. */
  simd?: 'auto' | 'relaxed' | 'simd128';
  /** Threads, default 1. More than 1 selects the pthread build, which needs SharedArrayBuffer
   * (cross-origin isolation in browsers). 'auto' uses up to 8 when threads are available. */
  threads?: number | 'auto';
}

export interface LoadOptions extends RuntimeOptions {
  /** The tokenizer file of a llama2.c .bin model (tokenizer.bin); at most 64 MiB. */
  tokenizer?: ModelSource;
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /** Browser download cache for URL sources (default 'none'); Node.js ignores it. */
  cache?: 'cache-api' | 'opfs' | 'none';
}

export interface RuntimeInfo {
  /** 'fp32' for llama2.c, GGUF and Hugging Face models (dequantized), 'integer' for .spq. */
  engine: 'fp32' | 'integer';
  /** Integer kernels in use ('wasm-simd128', 'wasm-relaxed-simd'), or 'fp32'. */
  kernels: string;
  build: 'simd' | 'relaxed' | 'pthread';
  simd: 'simd128' | 'relaxed';
  threads: number;
  /** The reason for choosing this build. */
  reason: string;
  /** The size WebAssembly memory may grow to, in bytes. */
  memoryLimitBytes: number;
}

export interface ModelInfo {
  /** A path, URL or a short description of the source. */
  source: string;
  format: 'llama2c' | 'gguf' | 'hf' | 'spq';
  parameters: {
    dim: number;
    hiddenDim: number;
    layers: number;
    heads: number;
    kvHeads: number;
    headDim: number;
    vocabSize: number;
  };
  contextLength: number;
  weightBytes: number;
  bosId: number;
  eosId: number;
  /** Whether tokenizing prepends BOS by default. */
  addsBos: boolean;
  hasChatTemplate: boolean;
  /** The recipe of a .spq model, null for other formats. */
  quantization: {
    wBits: number;
    wGroup: number;
    aBits: number;
    kvBits: number;
    embedBits: number;
    rotation: string;
    mode: 'had' | 'nohad';
  } | null;
  runtime: RuntimeInfo;
}

export interface GenerateOptions {
  /** New tokens at most (default 256). */
  maxTokens?: number;
  /** 0 is greedy (default 0.8). */
  temperature?: number;
  /** 0 keeps all tokens (default 40). */
  topK?: number;
  /** Nucleus probability mass (default 0.95). */
  topP?: number;
  /** 1 is off (default 1). */
  repetitionPenalty?: number;
  /** Sampling seed, an integer (default 42). */
  seed?: number;
  /** Generation ends before the first occurrence of any of these strings. */
  stop?: string | string[];
  /** Aborting stops generation before the next token; the run rejects with E_ABORTED. */
  signal?: AbortSignal;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string;
}

export interface ChatOptions extends GenerateOptions {
  /** A Jinja chat template to use instead of the model's. */
  chatTemplate?: string;
  /** Extra template variables (such as tools). */
  templateVariables?: Record<string, unknown>;
}

export type StopReason = 'length' | 'eos' | 'stop' | 'context' | 'cancelled';

export interface GenerationResult {
  /** The generated text (without the prompt and without a matched stop string). */
  text: string;
  /** Ids of the generated tokens. */
  tokenIds: number[];
  promptTokens: number;
  generatedTokens: number;
  /** Generated tokens per second of the token loop, without the prompt's prefill. */
  tokensPerSecond: number;
  /** length: maxTokens reached; eos: the model ended its turn; stop: a stop string matched;
   * context: the context is full; cancelled: the consumer stopped iterating. */
  stopReason: StopReason;
  seconds: number;
}

/**
 * A running generation. Iterate it (once) for text pieces, which never split a UTF-8
 * character; await `result` for the summary. The generation runs whether or not it is
 * iterated; breaking out of the loop stops it (stopReason 'cancelled').
 */
export interface GenerationRun extends AsyncIterable<string> {
  readonly result: Promise<GenerationResult>;
}

export interface PerplexityOptions {
  /** Tokens per window (default: the smaller of the context and 2048). */
  window?: number;
  /** Evaluate only the first windows (default 0: all). */
  maxWindows?: number;
  signal?: AbortSignal;
  onProgress?: (progress: { windowsDone: number; windowsTotal: number }) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Mean negative log-likelihood in nats per predicted token. */
  meanNll: number;
  /** Tokens in the whole text. */
  tokens: number;
  windows: number;
  predictedTokens: number;
  window: number;
  seconds: number;
}

export declare class Model {
  private constructor();
  readonly info: ModelInfo;
  /** Token ids of text; addBos defaults to the tokenizer's setting. */
  tokenize(text: string, options?: { addBos?: boolean; parseSpecial?: boolean }): number[];
  detokenize(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** The chat prompt's token ids, or its text with tokenize: false. */
  applyChatTemplate(messages: ChatMessage[], options?: { addGenerationPrompt?: boolean; tokenize?: true; chatTemplate?: string; templateVariables?: Record<string, unknown> }): number[];
  applyChatTemplate(messages: ChatMessage[], options: { addGenerationPrompt?: boolean; tokenize: false; chatTemplate?: string; templateVariables?: Record<string, unknown> }): string;
  /** A string prompt is tokenized with the tokenizer's BOS setting and special tokens parsed. */
  generate(prompt: string | ArrayLike<number>, options?: GenerateOptions): GenerationRun;
  chat(messages: ChatMessage[], options?: ChatOptions): GenerationRun;
  perplexity(text: string, options?: PerplexityOptions): Promise<PerplexityResult>;
  memoryUsage(): { webAssemblyBytes: number; limitBytes: number };
  /** Frees the WebAssembly instance once queued work has finished. */
  dispose(): Promise<void>;
}

/** Loads a model: llama2.c .bin (with options.tokenizer), GGUF, .spq, or (Node.js) a Hugging Face folder. */
export declare function loadModel(source: ModelSource, options?: LoadOptions): Promise<Model>;

export type CalibrationProgress =
  | LoadProgress
  | {
      phase: 'calibrate';
      /** Iterations completed. */
      iteration: number;
      iterations: number;
      /** Mean loss of the step; NaN for a step that was rolled back. */
      loss: number;
      lr: number;
      gradNorm: number;
      orthogonalityError: number;
      seconds: number;
      /** Estimate from the mean time per step so far. */
      secondsLeft: number;
      recovered: boolean;
    }
  | { phase: 'export' };

export interface SpqExportOptions {
  /** Weight bits, 2 to 4 (default 4). */
  wBits?: number;
  /** Columns per weight scale, 0 for one scale per row (default 0). */
  wGroup?: number;
  /** Activation bits, 2 to 8 (default 8). */
  aBits?: number;
  /** KV cache bits, 2 to 8, or 16 for an fp32 cache (default 8). */
  kvBits?: number;
  /** 8 or 16 (default 8). */
  embedBits?: 8 | 16;
}

export interface CalibrateOptions extends RuntimeOptions {
  tokenizer?: ModelSource;
  onProgress?: (progress: CalibrationProgress) => void;
  /** Aborting terminates the worker; the promise rejects with E_ABORTED. */
  signal?: AbortSignal;
  cache?: 'cache-api' | 'opfs' | 'none';
  /** Optimizer steps (default 100). */
  iterations?: number;
  /** Initial learning rate, decayed by a cosine (default 1.5). */
  lr?: number;
  /** Tokens per calibration window (default 256). */
  window?: number;
  /** Windows cut from the start of the text (default 64). */
  samples?: number;
  windowsPerStep?: number;
  /** Bit widths simulated while learning (default 16, 4, 4). */
  wBits?: number;
  aBits?: number;
  kvBits?: number;
  /** 'had' learns R1 and R2 with online R3 and R4 (default); 'nohad' only R1 and R2. */
  mode?: 'had' | 'nohad';
  /** Seed of the initial random Hadamard rotations (default 0). */
  seed?: number;
  /** Export a .spq model with the learned rotations (default true, with the defaults of SpqExportOptions). */
  spq?: boolean | SpqExportOptions;
}

export interface CalibrationResult {
  /** The rotation file (the native CLI's format). */
  rotation: Uint8Array;
  /** The .spq model, or null with spq: false. */
  spq: Uint8Array | null;
  summary: {
    iterations: number;
    firstLoss: number;
    finalLoss: number;
    seconds: number;
    calibrationTokens: number;
    orthogonalityError: number;
    runtime: { build: string; simd: string; threads: number };
    spq: { fileBytes: number; parameters: number; wBits: number; wGroup: number; aBits: number; kvBits: number; embedBits: number; mode: string } | null;
  };
}

/** Learns SpinQuant rotations in a worker (Web Worker or worker_threads). */
export declare function calibrate(modelSource: ModelSource, calibrationText: string, options?: CalibrateOptions): Promise<CalibrationResult>;

/** Returns the build loadModel would choose, and the features behind the choice. */
export declare function selectRuntime(options?: RuntimeOptions): {
  build: 'simd' | 'relaxed' | 'pthread';
  simd: 'simd128' | 'relaxed';
  threads: number;
  reason: string;
  features: { simd128: boolean; relaxedSimd: boolean };
  threadsAvailable: boolean;
};

/** Deletes the models the browser caches hold ('cache-api' and 'opfs'); does nothing under Node.js. */
export declare function clearCache(): Promise<void>;
