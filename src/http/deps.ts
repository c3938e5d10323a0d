import type { Config } from '../config/schema.js';
import type { ChatService } from '../core/chat-service.js';
import type { ConversationService } from '../core/conversation-service.js';
import type { ConversationStore } from '../store/contract.js';
import type { EngineRegistry } from '../engines/registry.js';

/** A notice shown in the log, `/health` and the page, e.g. when the demo model serves random text. */
export interface ServiceNotice {
  readonly level: 'warning';
  readonly message: string;
}

/** Everything the HTTP layer is given by `main.ts`; routes never build their own dependencies. */
export interface HttpDeps {
  readonly config: Config;
  readonly chat: ChatService;
  readonly engines: EngineRegistry;
  readonly store: ConversationStore;
  readonly conversations: ConversationService;
  readonly notices: readonly ServiceNotice[];
  /** True when the embedded engine serves the tiny random-weight model. */
  readonly demo: boolean;
}
