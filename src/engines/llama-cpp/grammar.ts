import type { GbnfJsonSchema, Llama, LlamaGrammar } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { ResponseFormat } from '../contract.js';
import { toGrammarSchema } from './json-schema.js';

const schemaSite = { param: 'response_format', path: 'response_format.json_schema.schema' } as const;

/** Checks a response format before admission: a schema the grammar cannot express is a 400 here, not later. */
export function checkResponseFormat(format: ResponseFormat | undefined): void {
  if (format?.type === 'json_schema') toGrammarSchema(format.schema, schemaSite);
}

/**
 * The grammar that holds the reply to its response format: any JSON object (llama.cpp's `json` grammar, an
 * object at the root) or the client's schema, translated by {@link toGrammarSchema}. None for free text.
 */
export async function grammarFor(llama: Llama, format: ResponseFormat | undefined): Promise<LlamaGrammar | undefined> {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return llama.getGrammarFor('json');
  const schema = toGrammarSchema(format.schema, schemaSite);
  try {
    return await llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema);
  } catch (error) {
    throw new ParlanceError('unsupported_parameter', `The embedded engine could not build a grammar from response_format.json_schema.schema: ${(error as Error).message}`, {
      param: 'response_format',
      cause: error,
    });
  }
}
