/**
 * An incremental parser for `text/event-stream`, following the WHATWG rules:
 * lines end in CRLF, LF or CR (a CR at the end of a chunk may be half of a
 * CRLF); `data` lines join with newlines; a single leading space after the
 * colon is dropped; comments start with a colon; an `id` containing NUL is
 * ignored; an event is dispatched at a blank line and only if it had data.
 */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
  /** The last event id seen on the stream so far (ids persist across events, as in EventSource). */
  readonly id: string | undefined;
}

export class SseParser {
  private buffer = '';
  private skipLeadingLf = false;
  private eventType = '';
  private data: string[] = [];
  private hasData = false;
  private lastId: string | undefined;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  /** The last id received, for `Last-Event-ID` on a reconnect. */
  get lastEventId(): string | undefined {
    return this.lastId;
  }

  push(chunk: string): void {
    let text = chunk;
    if (this.skipLeadingLf) {
      this.skipLeadingLf = false;
      if (text.startsWith('\n')) text = text.slice(1);
    }
    this.buffer += text;
    let start = 0;
    for (;;) {
      let end = -1;
      for (let i = start; i < this.buffer.length; i++) {
        const code = this.buffer.charCodeAt(i);
        if (code === 10 || code === 13) {
          end = i;
          break;
        }
      }
      if (end < 0) break;
      const line = this.buffer.slice(start, end);
      if (this.buffer.charCodeAt(end) === 13) {
        if (end + 1 < this.buffer.length) start = this.buffer.charCodeAt(end + 1) === 10 ? end + 2 : end + 1;
        else {
          start = end + 1;
          this.skipLeadingLf = true;
        }
      } else start = end + 1;
      this.line(line);
    }
    this.buffer = this.buffer.slice(start);
  }

  private line(line: string): void {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.eventType = value;
        break;
      case 'data':
        this.data.push(value);
        this.hasData = true;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      default:
        break; // `retry` and unknown fields: the reader decides its own back-off
    }
  }

  private dispatch(): void {
    if (this.hasData) this.onEvent({ event: this.eventType || 'message', data: this.data.join('\n'), id: this.lastId });
    this.eventType = '';
    this.data = [];
    this.hasData = false;
  }
}
