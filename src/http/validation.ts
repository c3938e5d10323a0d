import type { FastifySchemaCompiler } from 'fastify';
import type { FastifySchemaValidationError } from 'fastify/types/schema.js';
import { z } from 'zod';
import { en } from 'zod/locales';

/**
 * Request validation with messages that name the field and say what it must be, in the style of OpenAI's
 * own ("Invalid type for 'tools': expected an array, but got a string instead."). zod's defaults say
 * "Invalid input" for every union, which tells a client nothing; here a union is resolved to the branch
 * the value was meant for (its type matched), so the message names the deepest field that is wrong.
 */

type Issue = z.core.$ZodIssue;
type Segment = PropertyKey;

/** zod's built-in English message for an issue: a message that differs from it was written in a schema, and is kept. */
function defaultMessage(issue: Issue): string | undefined {
  // A finished issue is a raw one with its message filled in; only optional fields' types differ.
  const made = en().localeError(issue as z.core.$ZodRawIssue);
  return typeof made === 'string' ? made : made?.message;
}

/** Formats a path the way OpenAI names fields: `messages[0].content`. */
export function fieldPath(path: readonly Segment[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** zod's names for what JSON calls an object or an array. */
const jsonNames: Readonly<Record<string, string>> = { record: 'object', map: 'object', tuple: 'array', set: 'array', int: 'integer', bigint: 'integer' };

function article(zodType: string): string {
  const type = jsonNames[zodType] ?? zodType;
  if (type === 'null' || type === 'undefined') return type;
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return value.length <= 40 ? `the string ${JSON.stringify(value)}` : 'a string';
  if (typeof value === 'number') return `the number ${value}`;
  return article(typeof value);
}

function quoteAll(values: readonly unknown[]): string {
  const quoted = values.map((value) => (typeof value === 'string' ? `'${value}'` : String(value)));
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1) ?? ''}`;
}

/** What one union branch wanted, when the value's own type did not fit it ("an array", "'auto' or 'none'"). */
function branchWants(branch: readonly Issue[]): string | undefined {
  const top = branch.find((issue) => issue.path.length === 0);
  if (top?.code === 'invalid_type') return article(top.expected);
  if (top?.code === 'invalid_value') return quoteAll(top.values);
  return undefined;
}

/** A branch the value was meant for: its failures lie inside the value, not in the value's own type. */
function branchMatched(branch: readonly Issue[]): boolean {
  return branch.length > 0 && !branch.some((issue) => issue.path.length === 0 && (issue.code === 'invalid_type' || issue.code === 'invalid_value'));
}

/** Replaces union issues by the issues of the branch the value was meant for, with whole paths. */
function flatten(issue: Issue, base: readonly Segment[]): Issue[] {
  const path = [...base, ...issue.path];
  if (issue.code !== 'invalid_union' || issue.errors.length === 0) return [{ ...issue, path }];
  const matched = issue.errors.filter(branchMatched);
  const chosen = matched.sort((a, b) => a.length - b.length)[0];
  if (chosen !== undefined) return chosen.flatMap((inner) => flatten(inner, path));
  return [{ ...issue, path }];
}

/** The message for one (flattened) issue, naming `param`. */
function sentence(issue: Issue, param: string): string {
  const input = (issue as { input?: unknown }).input;
  if (issue.message !== defaultMessage(issue)) {
    // Written in the schema: a predicate ("must be …") or a statement of its own.
    return issue.message.startsWith('must') || issue.message.startsWith('may') ? `'${param}' ${issue.message}.` : `'${param}': ${issue.message}.`;
  }
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `Missing required parameter: '${param}'.`;
      return `Invalid type for '${param}': expected ${article(issue.expected)}, but got ${describeValue(input)} instead.`;
    case 'invalid_value':
      return `Invalid value for '${param}': ${describeValue(input)}. Supported values are: ${quoteAll(issue.values)}.`;
    case 'invalid_union': {
      if ('note' in issue && issue.note === 'No matching discriminator') {
        const options = (issue as { options?: readonly unknown[] }).options ?? [];
        const got = typeof input === 'object' && input !== null && issue.discriminator !== undefined ? (input as Record<string, unknown>)[issue.discriminator] : input;
        if (got === undefined) return `Missing required parameter: '${param}'.`;
        return `Invalid value for '${param}': ${describeValue(got)}. Supported values are: ${quoteAll(options)}.`;
      }
      const wants = issue.errors.map(branchWants).filter((want): want is string => want !== undefined);
      if (wants.length > 0) return `Invalid type for '${param}': expected ${wants.join(' or ')}, but got ${describeValue(input)} instead.`;
      return `Invalid value for '${param}': it matches none of the accepted shapes.`;
    }
    case 'too_small': {
      const limit = `${issue.inclusive === false ? 'more than' : 'at least'} ${String(issue.minimum)}`;
      if (issue.origin === 'array' || issue.origin === 'set') return Number(issue.minimum) === 1 ? `'${param}' must not be empty.` : `'${param}' must have ${limit} items.`;
      if (issue.origin === 'string') return Number(issue.minimum) === 1 ? `'${param}' must not be empty.` : `'${param}' must be ${limit} characters long.`;
      return `Invalid value for '${param}': ${describeValue(input)}; it must be ${issue.inclusive === false ? 'greater than' : 'at least'} ${String(issue.minimum)}.`;
    }
    case 'too_big': {
      const limit = `${issue.inclusive === false ? 'fewer than' : 'at most'} ${String(issue.maximum)}`;
      if (issue.origin === 'array' || issue.origin === 'set') return `'${param}' must have ${limit} items.`;
      if (issue.origin === 'string') return `'${param}' must be ${limit} characters long.`;
      return `Invalid value for '${param}': ${describeValue(input)}; it must be ${issue.inclusive === false ? 'less than' : 'at most'} ${String(issue.maximum)}.`;
    }
    case 'not_multiple_of':
      return `Invalid value for '${param}': it must be a multiple of ${String(issue.divisor)}.`;
    case 'invalid_format':
      return `Invalid value for '${param}': it must be ${article(issue.format)}.`;
    case 'unrecognized_keys':
      return `'${param}' has unknown fields: ${issue.keys.join(', ')}.`;
    case 'invalid_key':
    case 'invalid_element': {
      // The key's (or element's) own issue says what is wrong with it.
      const inner = issue.issues[0];
      return inner === undefined ? `Invalid key in '${param}'.` : sentence(inner, param);
    }
    case 'custom':
      return `Invalid value for '${param}'.`;
  }
}

export interface FieldIssue {
  readonly path: readonly (string | number)[];
  /** `messages[0].content`; '' for the whole value. */
  readonly param: string;
  /** A whole sentence that names the field. */
  readonly message: string;
}

/** zod's issues as field issues, unions resolved, each with its own message. */
export function fieldIssues(error: z.ZodError, where = 'body'): FieldIssue[] {
  return error.issues.flatMap((issue) => flatten(issue, [])).map((issue) => {
    const path = issue.path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
    const param = fieldPath(path);
    return { path, param, message: sentence(issue, param === '' ? where : param) };
  });
}

/**
 * Fastify's validator compiler for zod schemas, with {@link fieldIssues}' messages. It stands in for
 * fastify-type-provider-zod's, whose errors carry zod's "Invalid input".
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> =
  ({ schema, httpPart }) =>
  (data) => {
    const result = schema.safeParse(data, { reportInput: true });
    if (result.success) return { value: result.data };
    const issues: FastifySchemaValidationError[] = fieldIssues(result.error, httpPart ?? 'body').map((issue) => ({
      keyword: 'zod',
      instancePath: issue.path.map((segment) => `/${String(segment).replaceAll('~', '~0').replaceAll('/', '~1')}`).join(''),
      schemaPath: '#',
      // The name as OpenAI writes it, kept whole: a record key such as logit_bias's "5" is no array index.
      params: { param: issue.param },
      message: issue.message,
    }));
    return { error: issues };
  };
