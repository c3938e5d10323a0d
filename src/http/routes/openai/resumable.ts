import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../../../config/schema.js';
import { StreamLogs, type StreamLog } from '../../../core/stream-log.js';
import { ParlanceError } from '../../../errors.js';
import { openAIErrorBody } from '../../errors.js';
import { openSse, type HttpDeps } from '../../deps.js';
import type { FrameSink } from './relay.js';
import type { SseStream } from '../../sse.js';

/** The request header that opts a stream in (or out, against `--resumable-streams`). */
export const RESUMABLE_HEADER = 'x-parlance-resumable';
/** The response header that names the id to resume with (also the `id` of every chunk). */
export const STREAM_ID_HEADER = 'x-parlance-stream-id';

/** `Last-Event-ID` as this server writes ids: a canonical decimal (no sign, no leading zeros), at most 15 digits. */
const canonicalId = /^(0|[1-9][0-9]{0,14})$/;

/**
 * Whether this request's stream is resumable: the header decides, else the configured default (streams
 * only). A header value other than true/false, or `true` on a request that does not stream, is refused
 * rather than ignored.
 */
export function wantsResumable(request: FastifyRequest, config: Config, stream: boolean): boolean {
  const header = request.headers[RESUMABLE_HEADER];
  if (header === undefined) return stream && config.resumableStreams;
  const value = Array.isArray(header) ? header.join(',') : header.trim().toLowerCase();
  if (value !== 'true' && value !== 'false') throw new ParlanceError('invalid_request', `The ${RESUMABLE_HEADER} header must be true or false, not '${value}'.`, { param: RESUMABLE_HEADER });
  if (value === 'true' && !stream) throw new ParlanceError('invalid_request', `${RESUMABLE_HEADER}: true needs "stream": true (only streams are resumable).`, { param: RESUMABLE_HEADER });
  return value === 'true';
}

/**
 * A stream's writer that records every event in the log before it goes to the client: the relay goes on
 * writing after the client left (the log is what counts), and the client gets each event with its `id:`.
 */
class LoggedSink implements FrameSink {
  constructor(
    private readonly log: StreamLog,
    private readonly sse: SseStream,
    /** Stops the generation when the log is full: nobody could resume past that point. */
    private readonly stop: AbortController,
    private readonly maxBytes: number,
  ) {}

  get closed(): boolean {
    return this.log.ended;
  }

  write(frame: string): boolean {
    const framed = this.log.append(frame);
    if (framed === undefined) {
      this.overflow();
      return true;
    }
    return this.sse.write(framed);
  }

  drained(): Promise<void> {
    return this.sse.drained();
  }

  end(finalFrame?: string): void {
    if (this.log.ended) return;
    if (finalFrame !== undefined) {
      const framed = this.log.append(finalFrame);
      if (framed === undefined) return this.overflow();
      this.sse.write(framed);
    }
    this.log.end();
    this.sse.end();
  }

  private overflow(): void {
    const error = new ParlanceError('stream_too_large', `The stream outgrew the resumable log's bound of ${this.maxBytes} bytes (--resumable-stream-max-bytes).`);
    const framed = this.log.append(`data: ${JSON.stringify(openAIErrorBody(error))}\n\n`, true);
    if (framed !== undefined) this.sse.write(framed);
    this.log.end();
    this.sse.end();
    this.stop.abort(error);
  }
}

/** The resumable streams of `/v1/chat/completions` in this process, and the route that resumes them. */
export class ResumableStreams {
  private readonly logs: StreamLogs;

  constructor(private readonly deps: HttpDeps) {
    const abandoned = new ParlanceError('server_stopped', 'The replica generating this stream stopped before it ended.');
    this.logs = new StreamLogs({
      retentionMs: deps.config.resumableStreamRetentionSeconds * 1000,
      maxBytes: deps.config.resumableStreamMaxBytes,
      store: deps.store.streamLogs,
      // No generation outlives the deadline; a minute more covers the last flush and clocks that differ a little.
      abandonAfterMs: deps.config.deadlineSeconds * 1000 + 60_000,
      abandonedEvent: `data: ${JSON.stringify(openAIErrorBody(abandoned))}\n\n`,
    });
  }

  /** Opens the stream's SSE response with its log; `stop` is the generation's signal (not the client's). */
  async open(id: string, request: FastifyRequest, reply: FastifyReply, openStream: () => SseStream, stop: AbortController): Promise<FrameSink> {
    const log = await this.logs.create(id, request.apiKeyName);
    reply.header(STREAM_ID_HEADER, id);
    return new LoggedSink(log, openStream(), stop, this.deps.config.resumableStreamMaxBytes);
  }

  /** `GET /v1/chat/completions/{id}/events`: the events after `Last-Event-ID` (none: all), then the rest live. */
  register(app: FastifyInstance): void {
    const schema = {
      description:
        `Replays the events of a stream started with \`${RESUMABLE_HEADER}: true\` after the one named by \`Last-Event-ID\` (absent: from the first), ` +
        'byte for byte as first sent, then follows it live to its end. Only the API key that started it may resume it; a finished stream is kept for `--resumable-stream-retention`.',
      params: z.object({ id: z.string().min(1).max(256).describe('The stream id: the `id` of its chunks, also sent as `X-Parlance-Stream-Id`.') }),
      headers: z.looseObject({ 'last-event-id': z.string().max(64).optional().describe('The id of the last event received, a canonical decimal; absent means from the start.') }),
    };
    app.withTypeProvider<ZodTypeProvider>().get('/v1/chat/completions/:id/events', { schema }, async (request, reply) => {
      const log = await this.logs.find(request.params.id, request.apiKeyName);
      if (log === undefined) {
        throw new ParlanceError('not_found', `No resumable stream '${request.params.id}': unknown, started without ${RESUMABLE_HEADER}, or expired.`, { param: 'id' });
      }
      const lastId = request.headers['last-event-id'];
      let after = 0;
      if (lastId !== undefined) {
        if (!canonicalId.test(lastId)) throw new ParlanceError('invalid_request', `Last-Event-ID must be a canonical decimal event id, not '${lastId}'.`, { param: 'Last-Event-ID' });
        after = Number(lastId);
        if (!(await log.reaches(after))) throw new ParlanceError('invalid_request', `Last-Event-ID ${after} is past the stream's last event.`, { param: 'Last-Event-ID' });
      }
      const sse = openSse(this.deps, reply);
      try {
        for await (const event of log.follow(after, sse.signal)) {
          if (!sse.write(event)) await sse.drained();
        }
      } catch (error) {
        // After the first byte a failure (the store unreachable) can only end the stream, without [DONE].
        request.log.warn({ err: error }, 'resuming a stream failed');
      }
      sse.end();
      return reply;
    });
  }
}
