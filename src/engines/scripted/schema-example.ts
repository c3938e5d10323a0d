import type { JsonSchema } from '../contract.js';

/** Deepest nesting followed: a recursive schema ends in null rather than in a stack overflow. */
const MAX_DEPTH = 8;

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A deterministic value that fits a JSON Schema's common keywords (type, properties and required,
 * enum, const, items and minItems, minimum, minLength, anyOf/oneOf/allOf's first branch). The scripted
 * engine calls tools and answers `json_schema` with it, so tests can predict and validate its output.
 * `$ref` and other keywords it does not follow give null.
 */
export function exampleFromSchema(schema: unknown, hint = 'value', depth = 0): unknown {
  if (!isSchema(schema) || depth > MAX_DEPTH) return null;
  if ('const' in schema) return schema['const'];
  if (Array.isArray(schema['enum']) && schema['enum'].length > 0) return schema['enum'][0];
  if ('default' in schema) return schema['default'];
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const branches = schema[key];
    if (Array.isArray(branches) && branches.length > 0) return exampleFromSchema(branches[0], hint, depth + 1);
  }
  const declared = schema['type'];
  const type = Array.isArray(declared) ? (declared.find((t) => t !== 'null') ?? declared[0]) : declared;
  const properties = isSchema(schema['properties']) ? schema['properties'] : undefined;
  switch (type ?? (properties === undefined ? undefined : 'object')) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [name, property] of Object.entries(properties ?? {})) out[name] = exampleFromSchema(property, name, depth + 1);
      return out;
    }
    case 'array': {
      const count = typeof schema['minItems'] === 'number' ? Math.max(1, schema['minItems']) : 1;
      return Array.from({ length: Math.min(count, 16) }, () => exampleFromSchema(schema['items'], hint, depth + 1));
    }
    case 'string': {
      const min = typeof schema['minLength'] === 'number' ? schema['minLength'] : 0;
      const max = typeof schema['maxLength'] === 'number' ? schema['maxLength'] : Number.POSITIVE_INFINITY;
      let text = hint;
      while (text.length < min) text += `-${hint}`;
      return text.slice(0, Math.max(min, Math.min(max, text.length)));
    }
    case 'integer':
    case 'number': {
      const min = typeof schema['minimum'] === 'number' ? schema['minimum'] : typeof schema['exclusiveMinimum'] === 'number' ? schema['exclusiveMinimum'] + 1 : 1;
      return type === 'integer' ? Math.ceil(min) : min;
    }
    case 'boolean':
      return true;
    default:
      return null;
  }
}
