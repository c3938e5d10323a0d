import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { AttachButton, DraftFileChips, FileNotices, sendBlocker, useComposerFiles } from '../attachments/ComposerFiles.js';
import { currentModelId, useCurrentModel } from '../attachments/current-model.js';
import { readDraft, writeDraft } from '../state/drafts.js';
import { store, useAppState } from '../state/store.js';
import { ContextMeter, OverflowWarning, overflows, useTokenCount } from './ContextMeter.js';
import { Icon } from './icons.js';
import { useLargeInsert } from './large-insert.js';

const fieldSizing = typeof CSS !== 'undefined' && CSS.supports('field-sizing', 'content');
/** Characters past which the message box stops spell-checking. */
const LONG_TEXT = 4000;

/** The message box: Enter sends, Shift+Enter starts a new line; while a reply streams, Stop (or Esc) ends it. */
export function Composer() {
  const currentId = useAppState((state) => state.currentId);
  const [text, setText] = useState(() => readDraft(currentId));
  const area = useRef<HTMLTextAreaElement>(null);
  useLargeInsert(area);
  const busy = useAppState((state) => store.busy(state));
  const restore = useAppState((state) => state.composerRestore);
  const down = useAppState((state) => state.connection === 'down');
  const files = useComposerFiles(currentId);
  const modelId = useAppState(currentModelId);
  const model = useCurrentModel();
  const bodyLimit = useAppState((state) => state.modelList?.requestBodyBytes);
  // Room the reply needs: the max tokens asked for, else one token (as the engine checks).
  const reserve = useAppState((state) => (state.currentId === null ? state.draft.settings.maxTokens : state.tree?.conversation.settings.maxTokens) ?? 1);
  const count = useTokenCount(modelId, { text, files: files.files });
  const blocker = sendBlocker(files.files, text, model, bodyLimit);
  const [confirming, setConfirming] = useState(false);
  const empty = !text.trim() && files.files.length === 0;
  /** Changes the text and the shown conversation's draft with it. */
  const edit = (value: string): void => {
    setText(value);
    writeDraft(currentId, value);
  };

  useEffect(() => {
    if (restore === null) return;
    const value = store.takeComposerRestore();
    if (value !== null) edit(value);
    area.current?.focus();
  }, [restore]);

  // Each conversation has its own draft: switching shows that one's.
  useEffect(() => {
    setText(readDraft(currentId));
    if (window.matchMedia('(pointer: fine)').matches) area.current?.focus();
  }, [currentId]);

  useEffect(() => {
    // Grow with the text, up to a third of the screen: CSS does it where it can (field-sizing, no layout
    // forced from script); elsewhere it is set through the CSSOM, which the CSP allows.
    const element = area.current;
    if (!element || fieldSizing) return;
    element.style.height = 'auto';
    element.style.height = `${Math.min(element.scrollHeight + 2, Math.max(120, window.innerHeight / 3))}px`;
  }, [text]);

  const send = (anyway = false): void => {
    if (empty || busy || files.reading > 0 || blocker !== null) return;
    if (!anyway && overflows(count, reserve)) {
      setConfirming(true);
      return;
    }
    setConfirming(false);
    const content = text;
    const attached = files.take();
    edit('');
    void store.send(content, attached).then(() => {
      // Not sent (the server refused it, or could not be reached): the files go back with the text.
      if (attached.length > 0 && store.getState().failure?.restore === content) files.restore(attached);
    });
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>): void => {
    if (event.key === 'Enter' && !event.shiftKey && !event.altKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      send();
    }
  };

  return (
    <form
      className="composer"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
      onDragOver={(event) => {
        if (event.dataTransfer.types.includes('Files')) event.preventDefault();
      }}
      onDrop={(event) => {
        if (event.dataTransfer.files.length === 0) return;
        event.preventDefault();
        files.add(event.dataTransfer.files);
      }}
    >
      <DraftFileChips files={files.files} reading={files.reading} onRemove={files.remove} />
      <FileNotices refused={files.refused} blocker={blocker} onDismiss={files.dismissRefused} />
      {confirming && count !== null && overflows(count, reserve) ? <OverflowWarning count={count} onSend={() => send(true)} onCancel={() => { setConfirming(false); area.current?.focus(); }} /> : null}
      <AttachButton onFiles={files.add} />
      <label htmlFor="composer-input" className="visually-hidden">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={area}
        rows={1}
        value={text}
        placeholder="Message Parlance"
        aria-describedby="composer-hint"
        // Spell-checking a long paste (a document, a log) costs seconds of main thread for little use.
        spellCheck={text.length < LONG_TEXT}
        onChange={(event) => edit(event.target.value)}
        onKeyDown={onKeyDown}
        onPaste={(event) => {
          // Files (a copied document, a screenshot) are attached; text pastes as text.
          if (event.clipboardData.files.length === 0) return;
          event.preventDefault();
          files.add(event.clipboardData.files);
        }}
      />
      <span id="composer-hint" className="visually-hidden">
        Enter sends, Shift+Enter starts a new line, Escape stops a reply.
      </span>
      {busy && down ? (
        <button type="button" className="send-button" disabled aria-label="Waiting for the server" title="Waiting for the server">
          <Icon name="stop" />
        </button>
      ) : busy ? (
        <button type="button" className="send-button stop" onClick={() => void store.stop()} aria-label="Stop the reply (Esc)" title="Stop (Esc)">
          <Icon name="stop" />
        </button>
      ) : (
        <button type="submit" className="send-button" disabled={empty || files.reading > 0 || blocker !== null} aria-label="Send (Enter)" title="Send (Enter)">
          <Icon name="send" />
        </button>
      )}
      <ContextMeter count={count} reserve={reserve} />
    </form>
  );
}
