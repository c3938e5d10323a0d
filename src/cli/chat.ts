/**
 * `parlance run MODEL`: a chat in the terminal over a running server's OpenAI API, as `ollama run` is.
 * Replies stream as they are generated; the conversation so far goes with each turn; the arrow keys
 * recall earlier lines. Ctrl+C stops a reply (what came so far stays in the conversation); at the
 * prompt a second Ctrl+C, Ctrl+D or /bye quits. Piped input is read a line a turn, to its end.
 */
import { createInterface } from 'node:readline';
import OpenAI, { APIError, APIUserAbortError } from 'openai';

export interface ChatOptions {
  /** The server, e.g. http://127.0.0.1:8000. */
  readonly url: string;
  readonly model: string;
  readonly apiKey?: string;
  readonly system?: string;
  readonly input?: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly output?: NodeJS.WritableStream;
}

type Message = { role: 'system' | 'user' | 'assistant'; content: string };

const help = 'Type a message and press Enter. Ctrl+C stops a reply; Ctrl+D, /bye or Ctrl+C twice quits; /clear forgets the conversation.';

/** One line for what went wrong talking to the server. */
export function describeApiError(error: unknown, url: string): string {
  if (error instanceof APIError && error.status !== undefined) {
    const body = error.error as { message?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : error.message;
    return `the server answered ${error.status}: ${message}`;
  }
  return `no Parlance server answers at ${url} (${error instanceof Error ? error.message : String(error)}); start one with 'parlance serve', or pass --url`;
}

/** Runs the chat until the user quits; resolves with the exit code. */
export async function runChat(options: ChatOptions): Promise<number> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const interactive = input.isTTY === true;
  const client = new OpenAI({ baseURL: `${options.url.replace(/\/+$/, '')}/v1`, apiKey: options.apiKey ?? 'none', maxRetries: 0 });

  // The model must be served before the first line is typed, or the user learns it only after typing.
  try {
    const served = (await client.models.list()).data.map((model) => model.id);
    if (!served.includes(options.model)) {
      process.stderr.write(`parlance: model '${options.model}' is not served at ${options.url}; served: ${served.join(', ') || 'none'}\n`);
      return 1;
    }
  } catch (error) {
    process.stderr.write(`parlance: ${describeApiError(error, options.url)}\n`);
    return 1;
  }

  const history: Message[] = options.system ? [{ role: 'system', content: options.system }] : [];
  const rl = createInterface({ input, output, terminal: interactive, historySize: 200, prompt: '>>> ' });
  const pending: string[] = [];
  let reply: AbortController | undefined;
  let busy = false;
  let interruptedAtPrompt = false;
  let inputEnded = false;
  let finish: (code: number) => void = () => undefined;
  const done = new Promise<number>((resolve) => (finish = resolve));

  const quit = (code = 0): void => {
    reply?.abort();
    rl.close();
    finish(code);
  };

  const generate = async (text: string): Promise<void> => {
    history.push({ role: 'user', content: text });
    const controller = new AbortController();
    reply = controller;
    let answer = '';
    try {
      const stream = await client.chat.completions.create({ model: options.model, messages: history, stream: true }, { signal: controller.signal });
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta.content ?? '';
        answer += delta;
        output.write(delta);
      }
      // An aborted stream may end quietly rather than throw.
      output.write(controller.signal.aborted ? '\n(stopped)\n' : '\n');
    } catch (error) {
      if (error instanceof APIUserAbortError || controller.signal.aborted) output.write('\n(stopped)\n');
      else output.write(`\nparlance: ${describeApiError(error, options.url)}\n`);
    } finally {
      reply = undefined;
    }
    // What the user saw is what the model said: a stopped reply stays in the conversation as far as it got.
    if (answer !== '') history.push({ role: 'assistant', content: answer });
    else history.pop();
  };

  const prompt = (): void => {
    if (interactive) rl.prompt();
  };

  /** Takes the lines typed (or piped) so far, one turn at a time. */
  const next = async (): Promise<void> => {
    busy = true;
    for (let line = pending.shift(); line !== undefined; line = pending.shift()) {
      const text = line.trim();
      if (text === '/bye') return quit(0);
      if (text === '/clear') {
        history.splice(options.system ? 1 : 0);
        output.write('(the conversation is forgotten)\n');
      } else if (text === '/?' || text === '/help') {
        output.write(`${help}\n`);
      } else if (text !== '') {
        await generate(text);
      }
    }
    busy = false;
    if (inputEnded) return quit(0);
    prompt();
  };

  rl.on('line', (line) => {
    interruptedAtPrompt = false;
    pending.push(line);
    if (!busy) void next();
  });
  rl.on('SIGINT', () => {
    if (reply) return reply.abort();
    if (interruptedAtPrompt) return quit(0);
    interruptedAtPrompt = true;
    output.write('\n(Ctrl+C again or Ctrl+D to quit)\n');
    prompt();
  });
  rl.on('close', () => {
    // Ctrl+D on a terminal quits now; the end of piped input waits for the turns it carried.
    inputEnded = true;
    if (interactive) quit(0);
    else if (!busy) quit(0);
  });

  if (interactive) output.write(`Chatting with ${options.model} at ${options.url}. ${help}\n`);
  prompt();
  return done;
}
