import type { ChatHistoryItem, ChatWrapper } from 'node-llama-cpp';
import type { ReasoningOptions } from '../contract.js';

/** Whether the chat template marks thinking off from the answer (node-llama-cpp's thought segments). */
export function templateThinks(wrapper: ChatWrapper): boolean {
  return wrapper.settings.segments?.thought !== undefined;
}

/**
 * Effort as a budget of thinking tokens, after which node-llama-cpp closes the thought and the answer begins.
 * `high` keeps node-llama-cpp's default (half the context, or three quarters past 8k).
 */
const effortBudgets = { minimal: 128, low: 512, medium: 2048, high: undefined } as const;

/** The thought-token budget the request asks for; undefined: the model's default. `enabled: false` is none. */
export function thoughtBudget(reasoning: ReasoningOptions | undefined): number | undefined {
  if (reasoning === undefined) return undefined;
  if (reasoning.enabled === false) return 0;
  const budgets = [reasoning.budgetTokens, reasoning.effort === undefined ? undefined : effortBudgets[reasoning.effort]].filter((n): n is number => n !== undefined);
  return budgets.length === 0 ? undefined : Math.min(...budgets);
}

/**
 * `enabled: false` for a template that thinks: the reply starts after an empty, closed thought, as Qwen3's
 * `enable_thinking: false` renders it, so the model answers at once. (A zero budget alone lets a token or two
 * of thinking through before node-llama-cpp closes the segment.)
 */
export function skipThinking(history: ChatHistoryItem[]): void {
  const last = history.at(-1);
  if (last?.type === 'model' && last.response.length === 0) last.response.push({ type: 'segment', segmentType: 'thought', text: '', ended: true });
}
