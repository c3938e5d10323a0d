import { useEffect, useState } from 'react';
import { loadingModels, type ModelLoad } from '../api/server.js';
import { store, useAppState } from '../state/store.js';

/** How often the page asks how far a load has got while a reply waits. */
const POLL_MS = 300;

/**
 * "Loading model…" with its progress while a reply this tab sent waits for its model to be read into memory (the
 * server's library loads a model on disk for the first request that names it). Asks `/health` only while a reply
 * is pending or streaming, and until the load it saw has ended.
 */
export function ModelLoading() {
  const waiting = useAppState((state) => state.pending !== null || state.streaming.size > 0);
  // Once every reply this tab streams has text, its model is loaded: no need to ask (a request and a render
  // every POLL_MS, for the whole of a long reply) until another reply waits.
  const stillWaiting = (): boolean => {
    const state = store.getState();
    return state.pending !== null || [...state.streaming].some((id) => store.live.get(id)?.firstTextAt == null);
  };
  const [loads, setLoads] = useState<readonly ModelLoad[]>([]);
  const polling = waiting || loads.length > 0;

  useEffect(() => {
    if (!polling) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let seen = 0;
    const poll = async (): Promise<void> => {
      if (seen > 0 || stillWaiting()) {
        const now = await loadingModels().catch((): readonly ModelLoad[] => []);
        if (stopped) return;
        seen = now.length;
        setLoads((before) => (before.length === 0 && now.length === 0 ? before : now));
      }
      timer = setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [polling]);

  if (loads.length === 0) return null;
  return (
    <div className="banner model-loading" role="status">
      {loads.map((load) => (
        <span key={load.id} className="banner-text">
          Loading model {load.id}… <progress max={100} value={Math.round(load.progress * 100)} aria-label={`${load.id} loaded`} /> {Math.round(load.progress * 100)}%
        </span>
      ))}
    </div>
  );
}
