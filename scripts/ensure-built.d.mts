/** The parts `scripts/ensure-built.mjs` builds: the server (dist/src) and the chat page (dist/web). */
export type Part = 'server' | 'web';

export declare const targets: Readonly<Record<Part, { readonly label: string; readonly sources: readonly string[]; readonly output: string; readonly command: readonly string[] }>>;

/** True when the part's output exists and nothing it is built from changed since. */
export declare function isCurrent(name: Part): Promise<boolean>;

/** Runs the part's build; rejects with its output when it fails. */
export declare function build(name: Part): Promise<void>;

/** Builds the part when it is missing or stale. */
export declare function ensureBuilt(name: Part): Promise<'built' | 'current'>;
