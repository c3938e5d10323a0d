import type { TokenLogprob } from '../../../engines/contract.js';
import type { OpenAILegacyLogprobs, OpenAITokenLogprob } from '../../../protocol/openai.js';

const encoder = new TextEncoder();
const bytesOf = (token: string): number[] => [...encoder.encode(token)];

/** Chat's `choices[].logprobs`: one entry per token with its alternatives, and the UTF-8 bytes OpenAI adds. */
export function chatLogprobs(logprobs: readonly TokenLogprob[]): { content: OpenAITokenLogprob[]; refusal: null } {
  return {
    content: logprobs.map((entry) => ({
      token: entry.token,
      logprob: entry.logprob,
      bytes: bytesOf(entry.token),
      top_logprobs: entry.top.map((alt) => ({ token: alt.token, logprob: alt.logprob, bytes: bytesOf(alt.token) })),
    })),
    refusal: null,
  };
}

/** The legacy API's column layout; `offset` is where the first token starts in the whole completion text. */
export function legacyLogprobs(logprobs: readonly TokenLogprob[], offset = 0): OpenAILegacyLogprobs {
  const out: OpenAILegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const entry of logprobs) {
    out.tokens.push(entry.token);
    out.token_logprobs.push(entry.logprob);
    out.top_logprobs.push(Object.fromEntries(entry.top.map((alt) => [alt.token, alt.logprob])));
    out.text_offset.push(at);
    at += entry.token.length;
  }
  return out;
}
