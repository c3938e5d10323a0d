import { useEffect, useRef, useState } from 'react';
import type { MessageAttachment } from '../../../src/protocol/conversations.js';
import type { TokenCount, TokenizeBody } from '../../../src/protocol/parlance-models.js';
import { countTokens } from '../api/models.js';
import { useAppState } from '../state/store.js';
import '../attachments/attachments.css';

/** How long typing must pause before the draft is counted again. */
const DEBOUNCE_MS = 300;

export interface CountedDraft {
  readonly text: string;
  readonly files: readonly MessageAttachment[];
}

/** The request that counts the draft after its conversation's history (the server reads that itself). */
function tokenizeBody(conversationId: string | null, model: string | null, systemPrompt: string, draft: CountedDraft): TokenizeBody | null {
  // Images are not counted (no engine here can say what one costs); text files are, as the model reads them.
  const texts = draft.files.filter((file): file is Extract<MessageAttachment, { type: 'text' }> => file.type === 'text');
  const message = { role: 'user' as const, content: draft.text, ...(texts.length === 0 ? {} : { attachments: texts }) };
  if (conversationId !== null) return { conversationId, ...(model === null ? {} : { model }), messages: [message] };
  if (draft.text.trim() === '' && draft.files.length === 0) return null;
  const system = systemPrompt.trim() === '' ? [] : [{ role: 'system' as const, content: systemPrompt }];
  return { ...(model === null ? {} : { model }), messages: [...system, message] };
}

/**
 * The tokens the conversation would take with the draft sent: its history, its system prompt, the draft and the
 * draft's files, counted by the server with the model's tokenizer. Counted once typing pauses for
 * {@link DEBOUNCE_MS}, and never more than one request at a time: a change while one is out is counted when it
 * comes back. Null while nothing is counted (or the count failed: the meter then hides, a send still works).
 */
export function useTokenCount(model: string | null, draft: CountedDraft): TokenCount | null {
  const conversationId = useAppState((state) => (state.tree !== null && state.tree.conversation.id === state.currentId ? state.currentId : null));
  const newChat = useAppState((state) => state.currentId === null);
  const systemPrompt = useAppState((state) => state.draft.systemPrompt);
  // The history changes when a message is added or a reply ends: count again then.
  const history = useAppState((state) => (state.tree === null ? '' : `${state.tree.conversation.activeLeafId ?? ''}:${state.tree.conversation.updatedAt}:${state.tree.conversation.systemPrompt ?? ''}`));
  const [count, setCount] = useState<TokenCount | null>(null);
  const latest = useRef<TokenizeBody | null>(null);
  latest.current = newChat || conversationId !== null ? tokenizeBody(conversationId, model, systemPrompt, draft) : null;
  const inFlight = useRef(false);
  const again = useRef(false);
  const alive = useRef(true);
  useEffect(
    () => () => {
      alive.current = false;
    },
    [],
  );

  useEffect(() => {
    if (latest.current === null) {
      setCount(null);
      return;
    }
    const run = async (): Promise<void> => {
      if (inFlight.current) {
        again.current = true;
        return;
      }
      inFlight.current = true;
      try {
        do {
          again.current = false;
          const body = latest.current;
          if (body === null) break;
          try {
            const result = await countTokens(body);
            if (alive.current && !again.current) setCount(result);
          } catch {
            if (alive.current && !again.current) setCount(null);
          }
        } while (again.current && alive.current);
      } finally {
        inFlight.current = false;
      }
    };
    const timer = setTimeout(() => void run(), DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [draft.text, draft.files, model, conversationId, systemPrompt, history]);

  // The draft's images are not sent to be counted (megabytes each, for a count that leaves them out): the server
  // says how many of the history's it left out, and the draft's are added here.
  const draftImages = draft.files.filter((file) => file.type === 'image').length;
  if (count === null || draftImages === 0) return count;
  return { ...count, imagesNotCounted: count.imagesNotCounted + draftImages };
}

/** Whether a count leaves no room for the reply: the server would refuse it (`context_length_exceeded`). */
export function overflows(count: TokenCount | null, reserve: number): boolean {
  return count !== null && count.contextLength !== null && count.tokens + reserve > count.contextLength;
}

/** The count against the model's context, beside the composer. */
export function ContextMeter({ count, reserve }: { readonly count: TokenCount | null; readonly reserve: number }) {
  if (count === null) return null;
  const tokens = count.tokens.toLocaleString('en');
  const approx = count.exact ? '' : '≈ ';
  const limit = count.contextLength;
  const over = overflows(count, reserve);
  const near = limit !== null && !over && count.tokens > limit * 0.9;
  const text = limit === null ? `${approx}${tokens} tokens` : `${approx}${tokens} / ${limit.toLocaleString('en')} tokens`;
  // Never a silent under-count: images take room in the model's context that no engine here can measure.
  const images = count.imagesNotCounted;
  const imagesNote = images === 0 ? '' : ` + ${images === 1 ? 'an image' : `${images} images`} not counted`;
  const how = count.exact ? `Counted with ${count.model}'s tokenizer` : `Estimated: ${count.model}'s engine cannot count tokens`;
  const title = images === 0 ? how : `${how}. Images are not counted: what one takes depends on the model, often hundreds to thousands of tokens.`;
  return (
    <div className="context-meter" data-state={over ? 'over' : near ? 'near' : 'ok'} title={title}>
      {limit === null ? null : <meter min={0} max={limit} low={limit * 0.75} high={limit * 0.9} optimum={0} value={Math.min(count.tokens, limit)} aria-label="Context used" />}
      <span className="context-count" data-tokens={count.tokens}>
        {text}
        {count.exact ? '' : ' (estimate)'}
        {imagesNote}
      </span>
    </div>
  );
}

/** Asked before a send that would not fit: send it anyway (the server may refuse it), or keep editing. */
export function OverflowWarning({ count, onSend, onCancel }: { readonly count: TokenCount; readonly onSend: () => void; readonly onCancel: () => void }) {
  const focus = useRef<HTMLButtonElement>(null);
  useEffect(() => focus.current?.focus(), []);
  return (
    <div className="note-box composer-notices overflow-warning" role="alert">
      <p>
        <strong>This may not fit.</strong> The conversation with your message comes to {count.exact ? '' : 'about '}
        {count.tokens.toLocaleString('en')} tokens{count.imagesNotCounted > 0 ? ' and images, which are not counted' : ''}; {count.model} reads at most {(count.contextLength ?? 0).toLocaleString('en')}, with room for its reply. Shorten the
        message or remove a file, or send it anyway.
      </p>
      <span className="overflow-actions">
        <button type="button" className="button small" onClick={onCancel}>
          Keep editing
        </button>
        <button type="button" ref={focus} className="button small primary" onClick={onSend}>
          Send anyway
        </button>
      </span>
    </div>
  );
}
