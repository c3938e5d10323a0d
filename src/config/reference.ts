import { optionTable } from './schema.js';

/** Renders the option table as the Markdown reference in docs/configuration.md. */
export function configurationReference(): string {
  const rows = Object.entries(optionTable).map(([key, option]) => {
    const fallback = option.schema.safeParse(undefined);
    let shown = '';
    if (fallback.success && fallback.data !== undefined) {
      const value: unknown = fallback.data;
      // Defaults derived from the home directory differ per machine: show the rule, not this machine's path.
      if (key === 'modelsDir') shown = '`$XDG_CACHE_HOME/parlance/models` (`~/.cache/…`)';
      else if (key === 'dataDir') shown = '`$XDG_DATA_HOME/parlance` (`~/.local/share/…`)';
      else shown = `\`${JSON.stringify(value)}\``;
    }
    return `| \`${key}\` | \`${option.flag}\` | \`${option.env}\` | ${shown} | ${option.description.replaceAll('|', '\\|')} |`;
  });
  return [
    '# Configuration',
    '',
    'Every option can be set in a config file (`--config parlance.json` or `.yaml`, by the key below),',
    'in the environment, or as a flag; a flag beats the environment, which beats the file. The server',
    'validates the whole configuration at start and names the option, its flag and its variable when a',
    'value is wrong. `parlance --help` prints the same list.',
    '',
    'This page is generated from `src/config/schema.ts` by `npm run docs:config`; a test fails when it is stale.',
    '',
    '| key | flag | environment | default | meaning |',
    '| --- | --- | --- | --- | --- |',
    ...rows,
    '',
    '## API keys with limits of their own',
    '',
    'In a config file a key may be an object, with its own limits per minute (0: none) overriding',
    '`rateLimitRequests` and `rateLimitTokens` for that key. Only generating requests count (chat and text',
    'completions, conversation messages and regenerations); a key past a limit gets 429',
    '`rate_limit_exceeded` with `Retry-After`, and answers carry OpenAI\'s `x-ratelimit-limit-*` and',
    '`x-ratelimit-remaining-*` headers. Tokens are charged when a generation ends.',
    '',
    '```yaml',
    'rateLimitRequests: 60',
    'apiKeys:',
    '  - name: web',
    '    key: a-long-random-secret-for-the-page',
    '  - name: batch-job',
    '    key: another-long-random-secret',
    '    requestsPerMinute: 600',
    '    tokensPerMinute: 200000',
    '```',
    '',
  ].join('\n');
}
