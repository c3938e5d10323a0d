/**
 * Wrong types and values in the agent fields of /v1/chat/completions get 400s whose message and `param`
 * name the field and say what it must be; zod's "Invalid input" never reaches a client. Unknown extra
 * fields stay accepted, as OpenAI's SDKs expect.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noShedding, startTestServer, type TestServer } from '../fixtures/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ embedded: false, scripted: true, ...noShedding });
});
afterAll(async () => server.stop());

const model = 'parlance-scripted';
const tool = { type: 'function', function: { name: 'f', parameters: { type: 'object' } } };

async function post(body: Record<string, unknown>, path = '/v1/chat/completions') {
  const response = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as { error?: { message: string; param: string | null; code: string | null }; choices?: unknown[] } };
}

describe('wrong types and values name the field', () => {
  const cases: [label: string, extra: Record<string, unknown>, param: string, says: RegExp][] = [
    ['tools not an array', { tools: { type: 'function' } }, 'tools', /expected an array, but got an object/],
    ['tools as a string', { tools: 'f' }, 'tools', /'tools'.*expected an array, but got the string "f"/],
    ['a tool of an unknown type', { tools: [{ type: 'retrieval' }] }, 'tools[0].type', /Supported values are: 'function'/],
    ['a tool without a function', { tools: [{ type: 'function' }] }, 'tools[0].function', /Missing required parameter: 'tools\[0\]\.function'/],
    ['a tool name with spaces', { tools: [{ type: 'function', function: { name: 'get weather' } }] }, 'tools[0].function.name', /letters, digits, underscores or dashes/],
    ['parameters not an object', { tools: [{ type: 'function', function: { name: 'f', parameters: 'x' } }] }, 'tools[0].function.parameters', /expected an object/],
    ['tool_choice unknown', { tools: [tool], tool_choice: 'always' }, 'tool_choice', /'auto', 'none' or 'required' or an object/],
    ['tool_choice naming no tool', { tools: [tool], tool_choice: { type: 'function', function: { name: 'g' } } }, 'tool_choice.function.name', /no tool named 'g'/],
    ['tool_choice required without tools', { tool_choice: 'required' }, 'tool_choice', /'tools' lists none/],
    ['parallel_tool_calls not a boolean', { parallel_tool_calls: 'yes' }, 'parallel_tool_calls', /expected a boolean/],
    ['response_format.type unknown', { response_format: { type: 'foo' } }, 'response_format.type', /Supported values are: 'text', 'json_object' or 'json_schema'/],
    ['response_format a string', { response_format: 'json' }, 'response_format', /expected an object/],
    ['json_schema without its object', { response_format: { type: 'json_schema' } }, 'response_format.json_schema', /Missing required parameter/],
    ['json_schema.schema not an object', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: [1] } } }, 'response_format.json_schema.schema', /expected an object, but got an array/],
    ['reasoning_effort unknown', { reasoning_effort: 'extreme' }, 'reasoning_effort', /Supported values are: 'none', 'minimal', 'low', 'medium' or 'high'/],
    ['top_k a fraction', { top_k: 1.5 }, 'top_k', /expected an integer/],
    ['min_p too big', { min_p: 2 }, 'min_p', /at most 1/],
    ['repeat_penalty zero', { repeat_penalty: 0 }, 'repeat_penalty', /greater than 0/],
    ['logit_bias keys not token ids', { logit_bias: { hello: 1 } }, 'logit_bias.hello', /token ids/],
    ['logit_bias out of range', { logit_bias: { '5': 200 } }, 'logit_bias.5', /at most 100/],
    ['top_logprobs without logprobs', { top_logprobs: 2 }, 'top_logprobs', /needs 'logprobs': true/],
    ['top_logprobs too many', { logprobs: true, top_logprobs: 21 }, 'top_logprobs', /at most 20/],
    ['a tool message without tool_call_id', { messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].tool_call_id', /Missing required parameter/],
    ['an unknown role', { messages: [{ role: 'function', content: 'x' }] }, 'messages[0].role', /Supported values are: 'system', 'developer', 'user', 'assistant' or 'tool'/],
    ['an unknown content part', { messages: [{ role: 'user', content: [{ type: 'input_audio' }] }] }, 'messages[0].content[0].type', /'text' or 'image_url'/],
    ['an image that is no URL', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'messages[0].content[0].image_url.url', /data:image/],
    ['content of a number', { messages: [{ role: 'user', content: 5 }] }, 'messages[0].content', /expected a string or an array, but got the number 5/],
    ['a tool call with object arguments', { messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: {} } }] }] }, 'messages[0].tool_calls[0].function.arguments', /expected a string/],
    ['an image on a system message', { messages: [{ role: 'system', content: [{ type: 'image_url', image_url: { url: 'https://x/y.png' } }] }] }, 'messages[0].content[0].type', /Supported values are: 'text'/],
  ];

  it.each(cases)('%s → 400 naming %s', async (_label, extra, param, says) => {
    const { status, body } = await post({ model, messages: [{ role: 'user', content: 'hi' }], ...extra });
    expect(status, JSON.stringify(body)).toBe(400);
    expect(body.error?.param).toBe(param);
    expect(body.error?.message).toMatch(says);
    expect(body.error?.message).toContain(param.split(/[.[]/)[0]);
    expect(body.error?.message).not.toMatch(/Invalid input/);
  });

  it('the legacy completions endpoint names its fields the same way', async () => {
    const { status, body } = await post({ model, prompt: 'hi', logprobs: 9 }, '/v1/completions');
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ param: 'logprobs', code: 'invalid_request' });
    expect(body.error?.message).toMatch(/'logprobs'.*at most 5/);
  });
});

describe('accepted shapes', () => {
  it('accepts unknown extra fields, as OpenAI SDKs send them', async () => {
    const { status } = await post({ model, messages: [{ role: 'user', content: 'hi' }], store: false, metadata: { a: 'b' }, service_tier: 'auto', some_future_field: { x: 1 } });
    expect(status).toBe(200);
  });

  it('accepts an assistant turn of only tool calls (content null) and its tool results', async () => {
    const { status, body } = await post({
      model,
      messages: [
        { role: 'user', content: 'weather?' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: [{ type: 'text', text: 'sunny' }] },
      ],
      tools: [tool],
    });
    expect(status, JSON.stringify(body)).toBe(200);
    expect(JSON.stringify(body.choices)).toContain('f returned sunny');
  });

  it('accepts tool_choice none and response_format text, which need nothing of the model', async () => {
    const { status } = await post({ model, messages: [{ role: 'user', content: 'hi' }], tools: [tool], tool_choice: 'none', response_format: { type: 'text' }, parallel_tool_calls: true });
    expect(status).toBe(200);
  });
});

describe('the OpenAPI documentation', () => {
  it('documents the agent fields and says unknown fields are accepted', async () => {
    const spec = (await (await fetch(`${server.url}/docs/json`)).json()) as { paths: Record<string, { post?: { requestBody?: { content?: Record<string, { schema?: { description?: string; properties?: Record<string, unknown> } }> } } }> };
    const schema = spec.paths['/v1/chat/completions']?.post?.requestBody?.content?.['application/json']?.schema;
    expect(Object.keys(schema?.properties ?? {})).toEqual(expect.arrayContaining(['tools', 'tool_choice', 'response_format', 'reasoning_effort', 'logprobs', 'top_k', 'min_p', 'logit_bias']));
    expect(schema?.description).toContain('Unknown fields are accepted');
  });
});
