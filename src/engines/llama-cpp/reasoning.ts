import { HarmonyChatWrapper, type ChatHistoryItem, type ChatWrapper } from 'node-llama-cpp';
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

/**
 * The thought-token budget the request asks for; undefined: the model's default. `enabled: false` is none.
 * `native`: the template takes the effort itself (see {@link wrapperForEffort}), so only an explicit budget counts.
 */
export function thoughtBudget(reasoning: ReasoningOptions | undefined, native = false): number | undefined {
  if (reasoning === undefined) return undefined;
  if (reasoning.enabled === false) return 0;
  const effort = reasoning.effort === undefined || native ? undefined : effortBudgets[reasoning.effort];
  const budgets = [reasoning.budgetTokens, effort].filter((n): n is number => n !== undefined);
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

/**
 * gpt-oss's Harmony template has effort levels of its own (`Reasoning: low|medium|high` in its system message):
 * the request's effort gets a wrapper that writes it, `minimal` as `low`. Other templates: undefined (the effort
 * becomes a thought budget instead).
 */
export function wrapperForEffort(wrapper: ChatWrapper, reasoning: ReasoningOptions | undefined): ChatWrapper | undefined {
  const effort = reasoning?.effort;
  if (effort === undefined || !(wrapper instanceof HarmonyChatWrapper)) return undefined;
  return new HarmonyChatWrapper({
    modelIdentity: wrapper.modelIdentity,
    ...(wrapper.cuttingKnowledgeDate === undefined ? {} : { cuttingKnowledgeDate: wrapper.cuttingKnowledgeDate }),
    todayDate: wrapper.todayDate,
    requiredChannels: wrapper.requiredChannels,
    keepOnlyLastThought: wrapper.keepOnlyLastThought,
    reasoningEffort: effort === 'minimal' ? 'low' : effort,
  });
}
