// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The control messages between a thread's parent and its worker, as types
 * only. Values themselves travel through shared memory; these messages only
 * start a worker and report its end.
 *
 * @module
 */

/** How the worker finds the function to run. */
export type TargetSpec =
  /** Import `module` and call its export `exportName`. */
  | { kind: "module"; module: string; exportName: string }
  /** Rebuild a self-contained function from its source text. */
  | { kind: "source"; source: string; name: string }
  /** Import `module`, rebuild an instance of its export `className` from `fields`, call `run()`. */
  | { kind: "subclass"; module: string; className: string; fields: unknown; hasHandles: boolean };

/**
 * Parent → worker: run this. The first and only message a worker needs.
 * `_runtime.ts`'s `spawn()` adds the worker's mailbox (its link to the post
 * office, `_post.ts`) to it under the key `mpjsMailbox`.
 */
export interface StartMessage {
  type: "start";
  /** The program-wide registry (`_registry.ts`). */
  registry: SharedArrayBuffer;
  /** The thread's status cells (`thread.ts` documents the layout). */
  status: SharedArrayBuffer;
  ident: number;
  name: string;
  daemon: boolean;
  target: TargetSpec;
  /** The arguments, packed by `_handles.ts`. */
  args: unknown;
  hasHandles: boolean;
  /** Modules of the classes registered in the parent (`registerClass`), imported before the target runs. */
  classes?: string[];
  [key: string]: unknown;
}

/** Worker → parent: the target finished and the status cells are final. */
export interface ExitMessage {
  type: "exit";
  code: number;
  [key: string]: unknown;
}
