import { attachmentText } from '../../../core/attachments.js';
import type { ConversationExport, MessageRecord } from '../../../store/contract.js';

const speaker: Record<MessageRecord['role'], string> = { system: 'System', user: 'User', assistant: 'Assistant' };

/** The active branch as a readable Markdown document (the JSON export keeps every branch). */
export function toMarkdown(data: ConversationExport): string {
  const byId = new Map(data.messages.map((message) => [message.id, message]));
  const path: MessageRecord[] = [];
  for (let id = data.conversation.activeLeafId; id !== null; ) {
    const message = byId.get(id);
    if (!message) break;
    path.unshift(message);
    id = message.parentId;
  }
  const parts = [`# ${data.conversation.title}`, ''];
  if (data.conversation.systemPrompt) parts.push(`**System:** ${data.conversation.systemPrompt}`, '');
  for (const message of path) {
    const note = message.status === 'complete' ? '' : ` _(${message.status})_`;
    // Text files as the model read them; images by name only (a data: URL is no reading matter).
    const files = message.attachments.map((file) => (file.type === 'text' ? attachmentText(file) : `_(image: ${file.name})_`));
    parts.push(`**${speaker[message.role]}:**${note}`, '', ...files.flatMap((file) => [file, '']), message.content, '');
  }
  return parts.join('\n');
}
