import { useRef, useState, useSyncExternalStore } from 'react';
import type { MessageRecord, MessageToolCall } from '../../../src/protocol/conversations.js';
import { store } from '../state/store.js';
import { Icon } from './icons.js';

interface Parts {
  readonly reasoning: string;
  readonly toolCalls: readonly MessageToolCall[];
  /** The answer has begun: the thinking block folds away. */
  readonly answering: boolean;
}

/** The reasoning and tool calls of a reply: live while it streams (from the live reply), else as stored. */
function useParts(record: MessageRecord, streaming: boolean): Parts {
  const cache = useRef<Parts | null>(null);
  return useSyncExternalStore(
    (listener) => (streaming ? store.live.subscribe(record.id, listener) : () => undefined),
    () => {
      const live = streaming ? store.live.get(record.id) : undefined;
      const next: Parts = live
        ? { reasoning: live.reasoning, toolCalls: live.toolCalls, answering: live.text.length > 0 }
        : { reasoning: record.reasoning, toolCalls: record.toolCalls, answering: record.content.length > 0 || !streaming };
      const previous = cache.current;
      if (previous && previous.reasoning === next.reasoning && previous.toolCalls === next.toolCalls && previous.answering === next.answering) return previous;
      return (cache.current = next);
    },
  );
}

function wordCount(text: string): number {
  return text.trim() === '' ? 0 : text.trim().split(/\s+/).length;
}

/** The model's reasoning: open while it thinks, folded once the answer starts; the reader's own toggle wins. */
function Thinking({ reasoning, thinking }: { readonly reasoning: string; readonly thinking: boolean }) {
  const [choice, setChoice] = useState<boolean | null>(null);
  const open = choice ?? thinking;
  const words = wordCount(reasoning);
  return (
    <details
      className="thinking"
      open={open}
      onToggle={(event) => {
        if (event.currentTarget.open !== open) setChoice(event.currentTarget.open);
      }}
    >
      <summary>
        <span className="thinking-label">{thinking ? 'Thinking…' : 'Thinking'}</span>
        <span className="muted"> · {words} {words === 1 ? 'word' : 'words'}</span>
      </summary>
      <div className="thinking-text">{reasoning}</div>
    </details>
  );
}

/** Arguments as indented JSON when they parse, else as the model wrote them. */
function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

function ToolCard({ call }: { readonly call: MessageToolCall }) {
  const preview = call.arguments.replace(/\s+/g, ' ');
  return (
    <details className="tool-card" data-tool-call-id={call.id}>
      <summary>
        <Icon name="tool" />
        <code className="tool-name">{call.name}</code>
        <span className="tool-preview">{preview.length > 60 ? `${preview.slice(0, 60)}…` : preview}</span>
        <span className="tool-state">{call.result === null ? 'called' : 'returned'}</span>
      </summary>
      <div className="tool-body">
        <div className="tool-label">Arguments</div>
        <pre>{pretty(call.arguments)}</pre>
        {call.result !== null ? (
          <>
            <div className="tool-label">Result</div>
            <pre>{call.result}</pre>
          </>
        ) : null}
      </div>
    </details>
  );
}

/** What a reply holds besides its answer: a collapsible "Thinking" block, and a compact card per tool call. */
export function ReplyParts({ record, streaming }: { readonly record: MessageRecord; readonly streaming: boolean }) {
  const parts = useParts(record, streaming);
  if (parts.reasoning === '' && parts.toolCalls.length === 0) return null;
  return (
    <>
      {parts.reasoning !== '' ? <Thinking reasoning={parts.reasoning} thinking={streaming && !parts.answering} /> : null}
      {parts.toolCalls.length > 0 ? (
        <div className="tool-cards" aria-label="Tool calls" role="group">
          {parts.toolCalls.map((call) => (
            <ToolCard key={call.id} call={call} />
          ))}
        </div>
      ) : null}
    </>
  );
}
