/** Checks of what callers hand the store, and the errors the store throws. */
import { z } from 'zod';
import { ParlanceError } from '../../errors.js';
import type { ConversationSettings, ExchangeChoice } from '../contract.js';

export const nonNegativeInt = z.number().int().nonnegative();
export const millis = z.number().int().nonnegative();

/** The API's bounds (src/protocol/conversations.ts), checked again here: the store takes nothing the API would refuse. */
export const settingsSchema = z.strictObject({
  maxTokens: z.number().int().min(1).max(1_048_576).optional(),
  temperature: z.number().min(0).max(2).optional(),
  topP: z.number().gt(0).max(1).optional(),
  topK: z.number().int().min(0).max(1_000_000).optional(),
  minP: z.number().min(0).max(1).optional(),
  presencePenalty: z.number().min(-2).max(2).optional(),
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  repeatPenalty: z.number().gt(0).max(2).optional(),
  seed: z.number().int().min(-(2 ** 53)).max(2 ** 53).optional(),
  stop: z.array(z.string().min(1).max(256)).max(4).optional(),
});

export const usageSchema = z.strictObject({ promptTokens: nonNegativeInt, completionTokens: nonNegativeInt });
export const timingsSchema = z.strictObject({ firstTokenMs: nonNegativeInt.nullable(), totalMs: nonNegativeInt });
export const toolCallsSchema = z.array(z.strictObject({ id: z.string().min(1).max(200), name: z.string().min(1).max(200), arguments: z.string(), result: z.string().nullable() })).max(128);
export const attachmentsSchema = z
  .array(
    z.discriminatedUnion('type', [
      z.strictObject({ type: z.literal('text'), name: z.string().min(1).max(255), mediaType: z.string().min(1).max(255), text: z.string() }),
      z.strictObject({ type: z.literal('image'), name: z.string().min(1).max(255), mediaType: z.string().min(1).max(255), url: z.string().startsWith('data:') }),
    ]),
  )
  .max(64);
export const errorSchema = z.strictObject({ code: z.string().min(1), message: z.string() });
export const roleSchema = z.enum(['system', 'user', 'assistant']);
export const statusSchema = z.enum(['streaming', 'complete', 'stopped', 'failed']);
export const finalStatusSchema = z.enum(['complete', 'stopped', 'failed']);
export const idSchema = z.string().min(1).max(200);

export function invalid(param: string, message: string): ParlanceError {
  return new ParlanceError('invalid_request', message, { param });
}

/** Validates settings and drops absent fields (zod's output has `undefined`s that exact optional types refuse). */
export function checkSettings(value: unknown, param = 'settings'): ConversationSettings {
  const parsed = settingsSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(issue === undefined || issue.path.length === 0 ? param : `${param}.${issue.path.join('.')}`, `Invalid settings: ${issue?.message ?? 'malformed'}.`);
  }
  return Object.fromEntries(Object.entries(parsed.data).filter(([, field]) => field !== undefined)) as ConversationSettings;
}

export function checkWith<T>(schema: z.ZodType<T>, value: unknown, param: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(param, `Invalid ${param}: ${parsed.error.issues[0]?.message ?? 'malformed'}.`);
  return parsed.data;
}

/** Checks the parent, model and title of an exchange; drops an absent title. */
export function checkChoice(choice: ExchangeChoice): ExchangeChoice {
  const { parentId } = choice;
  if (parentId !== null) checkString(parentId, 'parentId');
  const model = checkString(choice.model, 'model');
  return choice.title === undefined ? { parentId, model } : { parentId, model, title: checkString(choice.title, 'title') };
}

export function checkString(value: unknown, param: string): string {
  if (typeof value !== 'string') throw invalid(param, `${param} must be a string.`);
  return value;
}

export function notFound(what: 'conversation' | 'message' | 'preset', id: string, param?: string, where = ''): ParlanceError {
  return new ParlanceError('not_found', `No ${what} ${id}${where}.`, param === undefined ? {} : { param });
}
