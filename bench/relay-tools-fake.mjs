// A burst fake OpenAI-compatible engine for bench/relay-tools.ts: each stream sends TOKENS chunks at once,
// as text deltas, or (when the request has `tools`) as one tool call in vLLM's shape: the id, type and
// name first, then TOKENS argument fragments. Both kinds carry the same words, so the two runs differ
// only in the shape the relay decodes and re-encodes. No dependencies.
//   PORT (9100), TOKENS (256)
import http from 'node:http';

const PORT = Number(process.env.PORT ?? 9100);
const TOKENS = Number(process.env.TOKENS ?? 256);
const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor'.split(' ');
const frame = (choices, extra = {}) => `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: 'fake', choices, ...extra })}\n\n`;
const delta = (d, finish = null) => frame([{ index: 0, delta: d, finish_reason: finish }]);
const piece = (i) => (i ? ' ' : '') + words[i % words.length];
const usage = frame([], { usage: { prompt_tokens: 5, completion_tokens: TOKENS, total_tokens: TOKENS + 5 } });

// Built once: the bench measures the relay, not this process.
const textBody = [delta({ role: 'assistant', content: '' }), ...Array.from({ length: TOKENS }, (_, i) => delta({ content: piece(i) })), delta({}, 'stop'), usage, 'data: [DONE]\n\n'].join('');
const toolBody = [
  delta({ role: 'assistant', content: '' }),
  delta({ tool_calls: [{ index: 0, id: 'call_bench', type: 'function', function: { name: 'write_text', arguments: '' } }] }),
  ...Array.from({ length: TOKENS }, (_, i) => delta({ tool_calls: [{ index: 0, function: { arguments: piece(i) } }] })),
  delta({}, 'tool_calls'),
  usage,
  'data: [DONE]\n\n',
].join('');

http
  .createServer((req, res) => {
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake', object: 'model', created: 0, owned_by: 'bench' }] }));
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      const tools = body.includes('"tools"');
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(tools ? toolBody : textBody);
    });
  })
  .listen(PORT, '127.0.0.1', () => console.error(`burst fake engine on ${PORT}: tokens=${TOKENS}`));
