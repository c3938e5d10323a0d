import type { ChatMessage, ContentPart } from '../engines/contract.js';
import type { MessageAttachment } from '../store/contract.js';

/**
 * How a model is shown the files sent with a message: each text file is a text part of the message, headed by
 * its name, its text in a fence longer than any run of backticks inside it (so no file can close the fence and
 * pass as the user's own words); then each image, as an image part; then what the person typed. Files come
 * first, so that the question is the last thing the model reads.
 */
export function attachmentText(file: { readonly name: string; readonly text: string }): string {
  const longestRun = Math.max(0, ...Array.from(file.text.matchAll(/`+/g), (match) => match[0].length));
  const fence = '`'.repeat(Math.max(3, longestRun + 1));
  return `File: ${file.name}\n${fence}\n${file.text}\n${fence}`;
}

/** A user's message with its files, as the engine sees it: `parts` only when there is an image (see ChatMessage). */
export function userMessage(content: string, attachments: readonly MessageAttachment[]): ChatMessage {
  if (attachments.length === 0) return { role: 'user', content };
  const texts = attachments.flatMap((file) => (file.type === 'text' ? [attachmentText(file)] : []));
  if (content.trim() !== '') texts.push(content);
  const joined = texts.join('\n\n');
  const images = attachments.flatMap((file): ContentPart[] => (file.type === 'image' ? [{ type: 'image', url: file.url }] : []));
  if (images.length === 0) return { role: 'user', content: joined };
  const textParts = texts.map((text): ContentPart => ({ type: 'text', text }));
  const typed = content.trim() === '' ? [] : [textParts.pop() as ContentPart];
  return { role: 'user', content: joined, parts: [...textParts, ...images, ...typed] };
}

/** Whether any file is an image (a model without the `images` capability cannot take the message). */
export function hasImages(attachments: readonly MessageAttachment[] | undefined): boolean {
  return attachments?.some((file) => file.type === 'image') ?? false;
}
