/**
 * The embedded engine's pure pieces: JSON Schema → node-llama-cpp's grammar schema (what it keeps, what it
 * refuses by name), the number rules that keep JSON finite, and tool-call events from node-llama-cpp's callbacks.
 */
import { ChatMLChatWrapper, HarmonyChatWrapper } from 'node-llama-cpp';
import { describe, expect, it } from 'vitest';
import type { ChatEvent } from '../../src/engines/contract.js';
import { toChatHistory } from '../../src/engines/llama-cpp/chat-history.js';
import { finiteNumbers } from '../../src/engines/llama-cpp/grammar.js';
import { toGrammarSchema } from '../../src/engines/llama-cpp/json-schema.js';
import { thoughtBudget, wrapperForEffort } from '../../src/engines/llama-cpp/reasoning.js';
import { planFunctions, ToolCallEvents } from '../../src/engines/llama-cpp/tool-calls.js';
import { ParlanceError } from '../../src/errors.js';

const site = { param: 'response_format', path: 'schema' };

function refusal(schema: Record<string, unknown>, options: { toolArguments?: boolean } = {}): ParlanceError {
  try {
    toGrammarSchema(schema, { ...site, ...options });
  } catch (error) {
    expect(error).toBeInstanceOf(ParlanceError);
    return error as ParlanceError;
  }
  throw new Error(`accepted ${JSON.stringify(schema)}`);
}

describe('JSON Schema to grammar schema', () => {
  it('keeps what the grammar enforces and drops annotations', () => {
    expect(
      toGrammarSchema(
        {
          $schema: 'https://json-schema.org/draft/2020-12/schema',
          title: 'T',
          type: 'object',
          properties: { a: { type: 'string', minLength: 1, maxLength: 5, description: 'd' }, b: { type: ['integer', 'null'] }, c: { const: 3 } },
          required: ['a'],
        },
        site,
      ),
    ).toEqual({
      type: 'object',
      properties: { a: { type: 'string', minLength: 1, maxLength: 5, description: 'd' }, b: { type: ['integer', 'null'] }, c: { const: 3 } },
      required: ['a', 'b', 'c'],
      additionalProperties: false,
    });
  });

  it('gives a bare object any properties, and a declared one none beyond its own', () => {
    expect(toGrammarSchema({ type: 'object' }, site)).toMatchObject({ additionalProperties: true });
    expect(toGrammarSchema({ type: 'object', properties: {} }, site)).toMatchObject({ additionalProperties: false });
  });

  it('turns anyOf into alternatives, a type list with constraints into one alternative per type, tuples into prefixItems', () => {
    expect(toGrammarSchema({ anyOf: [{ type: 'string' }, { type: 'null' }] }, site)).toEqual({ oneOf: [{ type: 'string' }, { type: 'null' }] });
    expect(toGrammarSchema({ type: ['string', 'null'], maxLength: 3 }, site)).toEqual({ oneOf: [{ type: 'string', maxLength: 3 }, { type: 'null' }] });
    expect(toGrammarSchema({ type: 'array', items: [{ type: 'string' }, { type: 'boolean' }] }, site)).toEqual({ type: 'array', prefixItems: [{ type: 'string' }, { type: 'boolean' }] });
  });

  it('reads $defs and draft-07 definitions at the root, and checks every $ref lands', () => {
    const schema = toGrammarSchema({ type: 'object', properties: { p: { $ref: '#/definitions/P' } }, definitions: { P: { type: 'integer' } } }, site);
    expect(schema).toEqual({ oneOf: [{ type: 'object', properties: { p: { $ref: '#/$defs/P' } }, required: ['p'], additionalProperties: false }], $defs: { P: { type: 'integer' } } });
    expect(refusal({ $ref: '#/$defs/Nope' }).message).toContain('"Nope"');
    expect(refusal({ $ref: 'https://example.com/s.json' }).message).toContain('https://example.com/s.json');
  });

  it.each([
    [{ type: 'string', pattern: 'a' }, "'pattern'"],
    [{ type: 'number', exclusiveMinimum: 0 }, "'exclusiveMinimum'"],
    [{ type: 'integer', maximum: 10 }, "'maximum'"],
    [{ type: 'array', uniqueItems: true }, "'uniqueItems'"],
    [{ allOf: [{ type: 'string' }, { maxLength: 2 }] }, "'allOf'"],
    [{ type: 'object', properties: { a: { type: 'string' } }, required: ['b'] }, '"b"'],
    [{ type: 'string', format: 'uri' }, '"uri"'],
    [{ enum: [{ a: 1 }] }, "'enum'"],
    [{ type: 'object', properties: { a: { type: 'string', $defs: {} } } }, "'$defs' below the root"],
    [{ type: 'tuple' }, '"tuple"'],
  ])('refuses %j naming %s', (schema, named) => {
    const error = refusal(schema);
    expect(error).toMatchObject({ code: 'unsupported_parameter', param: 'response_format' });
    expect(error.message).toContain(named);
  });

  it("accepts zod's safe-integer bounds, and refuses maxLength in tool parameters", () => {
    expect(toGrammarSchema({ type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 }, site)).toEqual({ type: 'integer' });
    expect(refusal({ type: 'string', maxLength: 3 }, { toolArguments: true }).message).toContain('maxLength');
  });
});

describe('finite numbers', () => {
  it('drops the exponent of integers and bounds that of other numbers', () => {
    const gbnf = [
      'root ::= integer-number-rule fractional-number-rule',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? ("0" | [1-9] [0-9]{0,15}))?',
    ].join('\n');
    expect(finiteNumbers(gbnf).split('\n')).toEqual([
      'root ::= integer-number-rule fractional-number-rule',
      'integer-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ',
      'fractional-number-rule ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,2})?',
    ]);
  });
});

describe('tool calls', () => {
  it('streams a call as start then fragments, holding back the grammar’s closing newlines', () => {
    const events: ChatEvent[] = [];
    const calls = new ToolCallEvents((event) => events.push(event));
    calls.onParamsChunk({ callIndex: 0, functionName: 'f', paramsChunk: '{"a":' });
    calls.onParamsChunk({ callIndex: 0, functionName: 'f', paramsChunk: ' 1\n' });
    calls.onParamsChunk({ callIndex: 0, functionName: 'f', paramsChunk: '}\n\n\n\n' });
    calls.onCall('f');
    calls.onCall('g');
    expect(events).toEqual([
      { type: 'tool-call-start', index: 0, id: expect.stringMatching(/^call_[a-z0-9]{24}$/), name: 'f' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '{"a":' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: ' 1' },
      { type: 'tool-call-delta', index: 0, argumentsDelta: '\n}' },
      { type: 'tool-call-start', index: 1, id: expect.stringMatching(/^call_/), name: 'g' },
      { type: 'tool-call-delta', index: 1, argumentsDelta: '{}' },
    ]);
  });

  it('maps tool choices: required forces, a name narrows, none and no tools call nothing', () => {
    const tools = [{ name: 'a' }, { name: 'b', parameters: { type: 'object', properties: {} } }];
    expect(planFunctions(tools, 'required', false)).toMatchObject({ forced: true, maxCalls: 1 });
    expect(Object.keys(planFunctions(tools, { name: 'b' }, undefined)?.functions ?? {})).toEqual(['b']);
    expect(planFunctions(tools, 'auto', undefined)).toMatchObject({ forced: false });
    expect(planFunctions(tools, 'none', undefined)).toBeUndefined();
    expect(planFunctions([], 'required', undefined)).toBeUndefined();
    expect(() => planFunctions([{ name: 'has space' }], 'auto', undefined)).toThrow(/tools\[0\]\.function\.name/);
  });

  it('puts tool results into their calls and continues the reply after them', () => {
    const history = toChatHistory([
      { role: 'user', content: 'q' },
      { role: 'assistant', content: 'let me look', toolCalls: [{ id: 'c1', name: 'a', arguments: '{"x":1}' }, { id: 'c2', name: 'b', arguments: '{}' }] },
      { role: 'tool', toolCallId: 'c2', content: 'plain text' },
      { role: 'tool', toolCallId: 'c1', content: '{"ok":true}' },
      { role: 'assistant', content: 'done', reasoning: 'thought' },
    ]);
    expect(history).toEqual([
      { type: 'user', text: 'q' },
      {
        type: 'model',
        response: [
          'let me look',
          { type: 'functionCall', name: 'a', params: { x: 1 }, result: { ok: true } },
          { type: 'functionCall', name: 'b', params: {}, result: 'plain text' },
          { type: 'segment', segmentType: 'thought', text: 'thought', ended: true },
          'done',
        ],
      },
    ]);
  });
});

describe('reasoning budgets', () => {
  it('takes the smaller of a budget and an effort, none when thinking is off', () => {
    expect(thoughtBudget(undefined)).toBeUndefined();
    expect(thoughtBudget({ enabled: false })).toBe(0);
    expect(thoughtBudget({ effort: 'low' })).toBe(512);
    expect(thoughtBudget({ effort: 'high' })).toBeUndefined();
    expect(thoughtBudget({ effort: 'medium', budgetTokens: 100 })).toBe(100);
    expect(thoughtBudget({ effort: 'low' }, true)).toBeUndefined();
  });

  it("gives gpt-oss's Harmony template the effort in its own words, and leaves other templates to the budget", () => {
    const history = [{ type: 'user' as const, text: 'hi' }, { type: 'model' as const, response: [] }];
    const harmony = new HarmonyChatWrapper({ todayDate: null });
    const low = wrapperForEffort(harmony, { effort: 'minimal' });
    expect(low?.generateContextState({ chatHistory: history }).contextText.toString()).toContain('Reasoning: low');
    expect(wrapperForEffort(harmony, { effort: 'high' })?.generateContextState({ chatHistory: history }).contextText.toString()).toContain('Reasoning: high');
    expect(wrapperForEffort(harmony, { budgetTokens: 10 })).toBeUndefined();
    expect(wrapperForEffort(new ChatMLChatWrapper(), { effort: 'low' })).toBeUndefined();
  });
});
