import type { FastifyInstance } from 'fastify';

/** A lone surrogate (half of a UTF-16 pair) anywhere in a string. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** A `\uD800`–`\uDFFF` escape in JSON text: the only way a lone surrogate gets into a parsed body. */
const surrogateEscape = /\\u[dD][89a-fA-F]/;

/**
 * Bodies from this size on are decoded and parsed one at a time, each in a turn of the event loop of its own.
 * A 1 MB body costs ~5–10 ms of main thread; when several finish arriving in the same poll, Node would parse
 * them all back to back, and a `/health` or a token of someone's stream waits for the whole batch.
 */
const largeBodyBytes = 64 * 1024;

/** Runs tasks one per event-loop turn, in arrival order: between two tasks, Node polls for I/O again. */
class OneTaskPerTurn {
  private readonly queue: (() => void)[] = [];
  private scheduled = false;

  run(task: () => void): void {
    this.queue.push(task);
    if (!this.scheduled) this.scheduleNext();
  }

  private scheduleNext(): void {
    const task = this.queue.shift();
    this.scheduled = task !== undefined;
    if (task === undefined) return;
    // An immediate queued from inside an immediate runs in the next loop iteration, after its poll phase.
    setImmediate(() => {
      try {
        task();
      } finally {
        this.scheduleNext();
      }
    });
  }
}

/** Replaces lone surrogates in every string (keys included) of a parsed JSON value; iterative, so any depth is safe. */
function wellFormedStrings(root: unknown): unknown {
  const fix = (text: string): string => text.replace(loneSurrogate, '\uFFFD');
  if (typeof root === 'string') return fix(root);
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const value = record[key];
      const fixedKey = fix(key);
      const fixedValue = typeof value === 'string' ? fix(value) : value;
      if (fixedKey !== key) {
        delete record[key];
        Object.defineProperty(record, fixedKey, { value: fixedValue, enumerable: true, writable: true, configurable: true });
      } else if (fixedValue !== value) {
        record[key] = fixedValue;
      }
      if (typeof fixedValue === 'object' && fixedValue !== null) stack.push(fixedValue);
    }
  }
  return root;
}

/**
 * Fastify's JSON parser (which refuses `__proto__` and `constructor.prototype` keys), plus two rules.
 * Text that is not valid Unicode: invalid UTF-8 bytes are decoded as U+FFFD, and a lone surrogate escape
 * (`"\ud800"`) becomes U+FFFD too, so the text the engine sees, the text stored and the text streamed back are
 * the same well-formed string. And large bodies take their turn (see {@link largeBodyBytes}).
 */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  const largeBodies = new OneTaskPerTurn();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const decodeAndParse = (): void => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      parse(request, text, (error, value) => {
        if (error) done(error, undefined);
        else done(null, surrogateEscape.test(text) ? wellFormedStrings(value) : value);
      });
    };
    if (body.length < largeBodyBytes) decodeAndParse();
    else
      largeBodies.run(() => {
        // A client that left while its body waited gets no answer: its parse would be wasted work.
        if (request.raw.socket.destroyed) done(Object.assign(new Error('the client closed the connection'), { statusCode: 400 }), undefined);
        else decodeAndParse();
      });
  });
}
