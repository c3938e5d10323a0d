import { useEffect, useRef, useState } from 'react';
import type { MessageAttachment } from '../../../src/protocol/conversations.js';
import type { ModelSummary } from '../../../src/protocol/parlance-models.js';
import { Icon } from '../components/icons.js';
import { readDraftFiles, writeDraftFiles } from './draft-files.js';
import { formatBytes } from './limits.js';
import { RefusedFile, attachmentBytes, readAttachment } from './read-file.js';
import './attachments.css';

export interface ComposerFiles {
  readonly files: readonly MessageAttachment[];
  /** Why files the person just gave were not attached, one sentence each. */
  readonly refused: readonly string[];
  /** How many files are being read (a PDF takes a moment). */
  readonly reading: number;
  add(files: Iterable<File>): void;
  remove(index: number): void;
  /** Takes the files for a send (the composer is then empty of them). */
  take(): readonly MessageAttachment[];
  /** Puts files back (a send that failed). */
  restore(files: readonly MessageAttachment[]): void;
  dismissRefused(): void;
}

/**
 * The files attached to the message being written in one conversation (`owner`): each conversation has its own,
 * kept in this browser through a reload (`draft-files.ts`), and another conversation shows its own, not these.
 */
export function useComposerFiles(owner: string | null): ComposerFiles {
  const [files, setFiles] = useState<readonly MessageAttachment[]>([]);
  const [refused, setRefused] = useState<readonly string[]>([]);
  const [reading, setReading] = useState(0);
  // Whose stored files have been read: until then nothing is stored, so a read still under way is not overwritten.
  // A ref, cleared in the same commit as the owner changes (a state would still hold the last owner's there);
  // the count only makes the store below run again once a read has come back.
  const loadedFor = useRef<{ readonly owner: string | null } | null>(null);
  const [reads, setReads] = useState(0);
  const current = useRef(files);
  current.current = files;
  const shownFor = useRef(owner);
  useEffect(() => {
    if (shownFor.current !== owner) {
      shownFor.current = owner;
      setFiles([]);
      setRefused([]);
    }
    loadedFor.current = null;
    let live = true;
    void readDraftFiles(owner).then((stored) => {
      if (!live) return;
      loadedFor.current = { owner };
      // Files attached while the stored ones were read come after them.
      if (stored.length > 0) setFiles((now) => [...stored, ...now]);
      setReads((count) => count + 1);
    });
    return () => {
      live = false;
    };
  }, [owner]);
  useEffect(() => {
    if (loadedFor.current?.owner !== owner) return;
    void writeDraftFiles(owner, files);
  }, [files, owner, reads]);
  return {
    files,
    refused,
    reading,
    add(given) {
      const list = [...given];
      if (list.length === 0) return;
      setRefused([]);
      setReading((count) => count + list.length);
      for (const file of list) {
        readAttachment(file).then(
          (attachment) => setFiles((now) => [...now, attachment]),
          (error: unknown) => setRefused((now) => [...now, error instanceof RefusedFile ? error.message : `“${file.name}” could not be read.`]),
        ).finally(() => setReading((count) => count - 1));
      }
    },
    remove(index) {
      setFiles((now) => now.filter((_, at) => at !== index));
    },
    take() {
      const taken = current.current;
      setFiles([]);
      setRefused([]);
      return taken;
    },
    restore(back) {
      setFiles((now) => [...back, ...now]);
    },
    dismissRefused() {
      setRefused([]);
    },
  };
}

/** The paperclip: picks files to attach. */
export function AttachButton({ onFiles, disabled }: { readonly onFiles: (files: Iterable<File>) => void; readonly disabled?: boolean }) {
  const input = useRef<HTMLInputElement>(null);
  return (
    <>
      <button type="button" className="attach-button" onClick={() => input.current?.click()} disabled={disabled} aria-label="Attach files" title="Attach files (text, code, PDF, images)">
        <Icon name="paperclip" />
      </button>
      <input
        ref={input}
        type="file"
        multiple
        hidden
        tabIndex={-1}
        aria-label="Files to attach"
        onChange={(event) => {
          if (event.target.files) onFiles([...event.target.files]);
          event.target.value = '';
        }}
      />
    </>
  );
}

function fileSize(file: MessageAttachment): string {
  return file.type === 'text' ? `${file.text.length.toLocaleString()} characters` : formatBytes(Math.round((file.url.length - file.url.indexOf(',') - 1) * 0.75));
}

/** The files attached to the draft, each removable. */
export function DraftFileChips({ files, reading, onRemove }: { readonly files: readonly MessageAttachment[]; readonly reading: number; readonly onRemove: (index: number) => void }) {
  if (files.length === 0 && reading === 0) return null;
  return (
    <ul className="file-chips" aria-label="Attached files">
      {files.map((file, index) => (
        <li key={`${index}-${file.name}`} className="file-chip" data-kind={file.type}>
          {file.type === 'image' ? <img src={file.url} alt="" className="file-thumb" /> : <Icon name="file" />}
          <span className="file-name">{file.name}</span>
          <span className="file-size">{fileSize(file)}</span>
          <button type="button" className="icon-button small" onClick={() => onRemove(index)} aria-label={`Remove ${file.name}`}>
            <Icon name="close" />
          </button>
        </li>
      ))}
      {reading > 0 ? (
        <li className="file-chip reading" role="status">
          Reading {reading === 1 ? 'a file' : `${reading} files`}…
        </li>
      ) : null}
    </ul>
  );
}

/** The files of a sent message: a chip each, opened to show the text (or the image). */
export function MessageFiles({ files }: { readonly files: readonly MessageAttachment[] }) {
  if (files.length === 0) return null;
  return (
    <ul className="message-files" aria-label="Attached files">
      {files.map((file, index) => (
        <li key={`${index}-${file.name}`}>
          <details className="file-chip" data-kind={file.type}>
            <summary>
              {file.type === 'image' ? <img src={file.url} alt="" className="file-thumb" /> : <Icon name="file" />}
              <span className="file-name">{file.name}</span>
              <span className="file-size">{fileSize(file)}</span>
            </summary>
            {file.type === 'text' ? <pre className="file-text">{file.text}</pre> : <img src={file.url} alt={file.name} className="file-image" />}
          </details>
        </li>
      ))}
    </ul>
  );
}

/** What stops the message from being sent as it is, in a sentence; null when nothing does. */
export function sendBlocker(files: readonly MessageAttachment[], content: string, model: ModelSummary | undefined, requestBodyBytes: number | undefined): string | null {
  if (model !== undefined && !model.capabilities.includes('images') && files.some((file) => file.type === 'image')) {
    return `This model (${model.id}) does not accept images. Remove the image, or pick a model that takes images.`;
  }
  if (requestBodyBytes !== undefined && files.length > 0) {
    const bytes = files.reduce((sum, file) => sum + attachmentBytes(file), new TextEncoder().encode(content).length + 256);
    if (bytes > requestBodyBytes) {
      return `This message and its files come to ${formatBytes(bytes)}; this server takes up to ${formatBytes(requestBodyBytes)} per message. Remove a file, or ask its operator to raise --body-limit.`;
    }
  }
  return null;
}

/** Files refused, and what stops a send, above the message box. */
export function FileNotices({ refused, blocker, onDismiss }: { readonly refused: readonly string[]; readonly blocker: string | null; readonly onDismiss: () => void }) {
  if (refused.length === 0 && blocker === null) return null;
  return (
    <div className="composer-notices">
      {refused.length > 0 ? (
        <div className="error-box small" role="alert">
          {refused.map((reason) => (
            <p key={reason}>{reason}</p>
          ))}
          <button type="button" className="button small" onClick={onDismiss}>
            Dismiss
          </button>
        </div>
      ) : null}
      {blocker !== null ? (
        <div className="error-box small" role="alert" data-blocker>
          <p>{blocker}</p>
        </div>
      ) : null}
    </div>
  );
}
