// Types of poolswitch-wasm/mock-provider: an OpenAI-shaped provider on 127.0.0.1 for demos and tests.

/** One of the mock's canned answers, used once each in order. */
export type MockAnswer =
  | "ok" | "quota" | "invalid" | "server_error" | "overloaded" | "bad_request" | "too_large" | "drop" | "hang" | "empty"
  | `rate_limit${"" | `:${number}`}` | `delay:${number}`;

export interface MockKeySpec {
  /** Name logged for every call made with this key (default: the value's first 8 characters). */
  id?: string;
  /** Successes before `429 insufficient_quota`. */
  quota?: number;
  script?: MockAnswer[];
  latencyMs?: number;
}

export interface MockCall {
  keyId: string | null;
  method: string;
  path: string;
  /** Epoch ms. */
  at: number;
  outcome: string;
}

export interface MockProvider {
  /** The underlying `node:http` server. */
  server: { close(callback?: (err?: Error) => void): unknown; address(): unknown };
  /** Registers keys by value. */
  setKeys(specs: Record<string, MockKeySpec>): void;
  calls(): MockCall[];
  /** Listens on 127.0.0.1; resolves to the base URL. */
  listen(port?: number): Promise<string>;
  close(): Promise<void>;
}

export function createMockProvider(options?: { keys?: Record<string, MockKeySpec>; latencyMs?: number }): MockProvider;
