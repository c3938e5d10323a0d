import type { GbnfJsonSchema, Llama, LlamaGrammar } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { ResponseFormat } from '../contract.js';
import { toGrammarSchema } from './json-schema.js';

const schemaSite = { param: 'response_format', path: 'response_format.json_schema.schema' } as const;

/** node-llama-cpp's number rules allow a 16-digit exponent. */
const exponent = '([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?';

/**
 * node-llama-cpp's JSON grammar lets any number carry an exponent of up to 16 digits: `5E446228` is JSON, but it
 * parses to Infinity, and `3e-2` is no integer, so a random or confused model could break `"type": "integer"`.
 * Integers lose the exponent and other numbers keep two digits of it, so every number parses to a finite value
 * of its type. A grammar written in another shape is left as it is (the replacement finds nothing).
 */
export function finiteNumbers(gbnf: string): string {
  return gbnf
    .split('\n')
    .map((line) => {
      if (line.startsWith('integer-number-rule ::=')) return line.replace(exponent, '');
      if (line.startsWith('fractional-number-rule ::=')) return line.replace(exponent, '([eE] [-+]? [0-9]{1,2})?');
      return line;
    })
    .join('\n');
}

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
    const built = await llama.createGrammarForJsonSchema<GbnfJsonSchema>(schema);
    return await llama.createGrammar({ grammar: finiteNumbers(built.grammar), stopGenerationTriggers: built.stopGenerationTriggers, trimWhitespaceSuffix: built.trimWhitespaceSuffix });
  } catch (error) {
    throw new ParlanceError('unsupported_parameter', `The embedded engine could not build a grammar from response_format.json_schema.schema: ${(error as Error).message}`, {
      param: 'response_format',
      cause: error,
    });
  }
}
