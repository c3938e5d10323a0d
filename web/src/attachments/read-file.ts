import type { MessageAttachment } from '../../../src/protocol/conversations.js';
import { IMAGE_FILE_MAX_BYTES, PDF_FILE_MAX_BYTES, TEXT_FILE_MAX_BYTES, TEXT_MAX_CHARS, formatBytes } from './limits.js';

/** A file the page would not attach, and why, in a sentence for the person. */
export class RefusedFile extends Error {}

const imageTypes = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp']);

function isPdf(file: File, head: Uint8Array): boolean {
  return file.type === 'application/pdf' || /\.pdf$/i.test(file.name) || new TextDecoder().decode(head.subarray(0, 5)) === '%PDF-';
}

function tooLarge(file: File, kind: string, max: number): RefusedFile {
  return new RefusedFile(`“${file.name}” is ${formatBytes(file.size)}; ${kind} of up to ${formatBytes(max)} can be attached.`);
}

/** The text of a file that is text: valid UTF-8 without NUL bytes, whatever its name says (code, logs, CSV…). */
function decodeText(file: File, bytes: Uint8Array): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new RefusedFile(`“${file.name}” is not a text file, a PDF or an image, so it cannot be attached.`);
  }
  if (text.includes('\u0000')) throw new RefusedFile(`“${file.name}” is not a text file, a PDF or an image, so it cannot be attached.`);
  return text.replace(/^\uFEFF/, '');
}

function dataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result));
    reader.onerror = () => reject(new RefusedFile(`“${file.name}” could not be read.`));
    reader.readAsDataURL(file);
  });
}

/**
 * Reads a file the person attached into what the message carries: text files and PDFs as their text, images
 * as a data: URL. Throws {@link RefusedFile} with the reason (too large, not a kind the page takes, no text).
 */
export async function readAttachment(file: File): Promise<MessageAttachment> {
  const name = file.name.slice(0, 255) || 'file';
  if (imageTypes.has(file.type)) {
    if (file.size > IMAGE_FILE_MAX_BYTES) throw tooLarge(file, 'images', IMAGE_FILE_MAX_BYTES);
    return { type: 'image', name, mediaType: file.type, url: await dataUrl(file) };
  }
  if (file.type.startsWith('image/')) throw new RefusedFile(`“${file.name}” is a ${file.type.slice(6).toUpperCase()} image; PNG, JPEG, GIF and WebP images can be attached.`);
  const head = new Uint8Array(await file.slice(0, 5).arrayBuffer());
  if (isPdf(file, head)) {
    if (file.size > PDF_FILE_MAX_BYTES) throw tooLarge(file, 'PDFs', PDF_FILE_MAX_BYTES);
    const { pdfText } = await import('./pdf-text.js');
    let text: string;
    try {
      text = await pdfText(await file.arrayBuffer());
    } catch (error) {
      throw new RefusedFile(`“${file.name}” could not be read as a PDF: ${error instanceof Error ? error.message : String(error)}.`);
    }
    if (text.trim() === '') throw new RefusedFile(`“${file.name}” has no text to read (a scanned PDF has only pictures of text).`);
    if (text.length > TEXT_MAX_CHARS) throw new RefusedFile(`“${file.name}” has ${text.length.toLocaleString()} characters of text; up to ${TEXT_MAX_CHARS.toLocaleString()} can be attached.`);
    return { type: 'text', name, mediaType: 'application/pdf', text };
  }
  if (file.size > TEXT_FILE_MAX_BYTES) throw tooLarge(file, 'text files', TEXT_FILE_MAX_BYTES);
  const text = decodeText(file, new Uint8Array(await file.arrayBuffer()));
  if (text.length > TEXT_MAX_CHARS) throw new RefusedFile(`“${file.name}” has ${text.length.toLocaleString()} characters; up to ${TEXT_MAX_CHARS.toLocaleString()} can be attached.`);
  // The server takes a plain `type/subtype`; a browser's guess with parameters, or none, is sent as text/plain.
  return { type: 'text', name, mediaType: /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : 'text/plain', text };
}

/** The size a file adds to the message's request body, near enough (JSON escapes aside). */
export function attachmentBytes(file: MessageAttachment): number {
  const body = file.type === 'text' ? new TextEncoder().encode(file.text).length : file.url.length;
  return body + file.name.length + 64;
}
