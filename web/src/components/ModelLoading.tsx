import { useEffect, useState } from 'react';
import { loadingModels, type ModelLoad } from '../api/server.js';
import { useAppState } from '../state/store.js';

/** How often the page asks how far a load has got while a reply waits. */
const POLL_MS = 300;

/**
 * "Loading model…" with its progress while a reply this tab sent waits for its model to be read into memory (the
 * server's library loads a model on disk for the first request that names it). Asks `/health` only while a reply
 * is pending or streaming, and until the load it saw has ended.
 */
export function ModelLoading() {
  const waiting = useAppState((state) => state.pending !== null || state.streaming.size > 0);
  const [loads, setLoads] = useState<readonly ModelLoad[]>([]);
  const polling = waiting || loads.length > 0;

  useEffect(() => {
    if (!polling) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async (): Promise<void> => {
      const now = await loadingModels().catch((): readonly ModelLoad[] => []);
      if (stopped) return;
      setLoads(now);
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
