// A paced fake OpenAI-compatible engine for bench/relay's many-stream test, speaking
// what ../shared/baseline/fake-engine.mjs speaks (POST /v1/chat/completions with
// stream: true, GET /v1/models) at a fraction of its CPU: one timer ticks every
// ITL_MS for all open streams, and every chunk's bytes are built once. A batching
// engine (vLLM, llama.cpp's server) works the same way: one decode step yields the
// next token of every running sequence at once. No dependencies.
//   PORT (9100), TOKENS (64, or the request's max_tokens), ITL_MS (20)
import http from 'node:http';

const PORT = Number(process.env.PORT ?? 9100);
const TOKENS = Number(process.env.TOKENS ?? 64);
const ITL = Number(process.env.ITL_MS ?? 20);
const words = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor'.split(' ');
const id = 'chatcmpl-fake';
const created = Math.floor(Date.now() / 1000);
const frame = (choices, extra = {}) => `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: 'fake', choices, ...extra })}\n\n`;
const roleFrame = frame([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
const finishFrame = frame([{ index: 0, delta: {}, finish_reason: 'length' }]);
const tokenFrames = [];
const tokenFrame = (i) => (tokenFrames[i] ??= frame([{ index: 0, delta: { content: (i ? ' ' : '') + words[i % words.length] }, finish_reason: null }]));

/** Open streams: the response, the next token's index, how many to send, whether usage was asked for. */
const streams = new Set();

setInterval(() => {
  for (const stream of streams) {
    if (stream.res.destroyed) {
      streams.delete(stream);
      continue;
    }
    if (stream.next < stream.count) {
      stream.res.write(tokenFrame(stream.next++));
      continue;
    }
    streams.delete(stream);
    const usage = stream.usage ? frame([], { usage: { prompt_tokens: 5, completion_tokens: stream.count, total_tokens: stream.count + 5 } }) : '';
    stream.res.end(`${finishFrame}${usage}data: [DONE]\n\n`);
  }
}, ITL);

http
  .createServer((req, res) => {
    if (req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'fake', object: 'model', created: 0, owned_by: 'steering' }] }));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(404);
      res.end();
      return;
    }
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => (body += chunk));
    req.on('end', () => {
      let request = {};
      try {
        request = JSON.parse(body);
      } catch {}
      if (!request.stream) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'this fake only streams' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write(roleFrame);
      streams.add({ res, next: 0, count: request.max_tokens ?? request.max_completion_tokens ?? TOKENS, usage: request.stream_options?.include_usage === true });
    });
  })
  .listen(PORT, '127.0.0.1', () => console.error(`ticked fake engine on ${PORT}: tokens=${TOKENS} itl=${ITL}ms`));
