import type { GbnfJsonSchema } from 'node-llama-cpp';
import { ParlanceError } from '../../errors.js';
import type { JsonSchema } from '../contract.js';

/**
 * Translates a client's JSON Schema into the subset node-llama-cpp turns into a grammar (its `GbnfJsonSchema`).
 *
 * The rule: every keyword either constrains the grammar or is refused, naming the keyword, so a schema never
 * validates less than the client asked for. The translation may be *stricter* than the schema where that keeps
 * the output valid: every declared property is generated (node-llama-cpp's object grammar emits them all), and an
 * object that declares properties but says nothing of `additionalProperties` gets none.
 */

/** Keywords that describe but do not constrain: dropped (`description` is kept, the prompt shows it). */
const annotations = new Set(['$schema', '$id', '$comment', 'title', 'examples', 'default', 'deprecated', 'readOnly', 'writeOnly', 'description']);

/** Keywords the translation understands; each is used below. */
const understood = new Set([
  'type', 'const', 'enum', 'anyOf', 'oneOf', 'allOf', '$ref', '$defs', 'definitions',
  'properties', 'required', 'additionalProperties', 'minProperties', 'maxProperties',
  'items', 'prefixItems', 'minItems', 'maxItems',
  'minLength', 'maxLength', 'format', 'minimum', 'maximum',
]);

const basicTypes = ['string', 'number', 'integer', 'boolean', 'null'] as const;
type BasicType = (typeof basicTypes)[number];
type SchemaType = BasicType | 'object' | 'array';
const schemaTypes: readonly string[] = [...basicTypes, 'object', 'array'];

/** The formats node-llama-cpp has grammars for. */
const grammarFormats = new Set(['date-time', 'date', 'time']);

/**
 * zod writes these bounds for every `int()`. The grammar caps an integer at 16 digits and does not bound it, so
 * these are accepted as "any integer" rather than refusing every zod integer; any other bound is refused.
 */
const SAFE_BOUND = Number.MAX_SAFE_INTEGER;

type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };
type JsonObject = { readonly [key: string]: Json };
type Literal = string | number | boolean | null;

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLiteral(value: unknown): value is Literal {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** Where in the client's request a schema came from: the field a 400 names, and a path for the message. */
export interface SchemaSite {
  /** The request field, e.g. `response_format` or `tools`. */
  readonly param: string;
  /** A readable path to the schema, e.g. `response_format.json_schema.schema`. */
  readonly path: string;
  /**
   * The schema of a tool's arguments. node-llama-cpp 3.21 re-checks call arguments itself and counts string
   * lengths in UTF-16 units where the grammar (and JSON Schema) count characters, so a call whose string holds
   * an emoji fails its own `maxLength` check mid-generation; such schemas are refused instead.
   */
  readonly toolArguments?: boolean;
}

export function unsupportedSchema(site: SchemaSite, path: string, what: string): ParlanceError {
  return new ParlanceError(
    'unsupported_parameter',
    `The embedded engine cannot enforce ${what} (at ${path}) with a grammar; remove it from the schema, or use a model whose engine supports it.`,
    { param: site.param },
  );
}

const anyValue: GbnfJsonSchema = {
  oneOf: [{ type: ['string', 'number', 'boolean', 'null'] }, { type: 'object', additionalProperties: true }, { type: 'array' }],
};

class Translator {
  /** Every definition a `$ref` names, checked against the root's definitions at the end. */
  readonly referenced = new Map<string, string>();

  constructor(private readonly site: SchemaSite) {}

  fail(path: string, what: string): never {
    throw unsupportedSchema(this.site, path, what);
  }

  translate(schema: unknown, path: string): GbnfJsonSchema {
    if (schema === true) return anyValue;
    if (!isObject(schema)) this.fail(path, 'a schema that is not an object');
    for (const key of Object.keys(schema)) {
      if (!annotations.has(key) && !understood.has(key)) this.fail(path, `the keyword '${key}'`);
      if ((key === '$defs' || key === 'definitions') && path !== this.site.path) this.fail(path, `'${key}' below the root`);
    }
    const description = typeof schema['description'] === 'string' ? { description: schema['description'] } : {};

    if (schema['$ref'] !== undefined) return { ...this.ref(schema['$ref'], path), ...description };
    if (schema['const'] !== undefined) {
      const value = schema['const'];
      if (!isLiteral(value)) this.fail(path, "a 'const' that is an object or array");
      return { const: value, ...description };
    }
    if (schema['enum'] !== undefined) {
      const values = schema['enum'];
      if (!Array.isArray(values) || !values.every(isLiteral)) this.fail(path, "an 'enum' with objects or arrays");
      return { enum: values.filter(isLiteral), ...description };
    }
    for (const combinator of ['anyOf', 'oneOf', 'allOf'] as const) {
      const alternatives = schema[combinator];
      if (alternatives === undefined) continue;
      if (!Array.isArray(alternatives) || alternatives.length === 0) this.fail(path, `an empty '${combinator}'`);
      if (combinator === 'allOf' && alternatives.length > 1) this.fail(path, "'allOf' with more than one schema");
      const structural = Object.keys(schema).filter((key) => !annotations.has(key) && key !== combinator && key !== '$defs' && key !== 'definitions');
      if (structural.length > 0) this.fail(path, `'${combinator}' beside '${structural.join("', '")}'`);
      const translated = alternatives.map((alternative, i) => this.translate(alternative, `${path}.${combinator}[${i}]`));
      const only = translated[0];
      if (translated.length === 1 && only !== undefined) return only;
      return { oneOf: translated, ...description };
    }

    const types = this.types(schema, path);
    if (types.length === 0) return anyValue;
    const variants = types.map((type) => this.typed(type, schema, path, description));
    const first = variants[0];
    if (variants.length === 1 && first !== undefined) return first;
    // Type-specific keywords apply only to values of their type, so each type gets its own alternative.
    if (types.every((type): type is BasicType => (basicTypes as readonly string[]).includes(type)) && variants.every((v) => Object.keys(v).every((k) => k === 'type' || k === 'description'))) {
      return { type: types.filter((type): type is BasicType => (basicTypes as readonly string[]).includes(type)), ...description };
    }
    return { oneOf: variants, ...description };
  }

  private types(schema: JsonObject, path: string): SchemaType[] {
    const type = schema['type'];
    if (type === undefined) {
      // No `type`: infer it from type-specific keywords, as validators apply them.
      if (schema['properties'] !== undefined || schema['additionalProperties'] !== undefined || schema['required'] !== undefined) return ['object'];
      if (schema['items'] !== undefined || schema['prefixItems'] !== undefined) return ['array'];
      return [];
    }
    const list = Array.isArray(type) ? type : [type];
    for (const item of list) {
      if (typeof item !== 'string' || !schemaTypes.includes(item)) this.fail(path, `the type ${JSON.stringify(item)}`);
    }
    return list.filter((item): item is SchemaType => typeof item === 'string' && schemaTypes.includes(item));
  }

  private typed(type: SchemaType, schema: JsonObject, path: string, description: { description?: string }): GbnfJsonSchema {
    switch (type) {
      case 'object':
        return this.object(schema, path, description);
      case 'array':
        return this.array(schema, path, description);
      case 'string':
        return this.string(schema, path, description);
      case 'number':
      case 'integer':
        for (const bound of ['minimum', 'maximum'] as const) {
          const value = schema[bound];
          if (value !== undefined && !(typeof value === 'number' && Math.abs(value) >= SAFE_BOUND)) this.fail(path, `the keyword '${bound}'`);
        }
        return { type, ...description };
      case 'boolean':
      case 'null':
        return { type, ...description };
    }
  }

  private object(schema: JsonObject, path: string, description: { description?: string }): GbnfJsonSchema {
    const properties: Record<string, GbnfJsonSchema> = {};
    const declared = schema['properties'];
    if (declared !== undefined) {
      if (!isObject(declared)) this.fail(path, "'properties' that is not an object");
      for (const [name, property] of Object.entries(declared)) properties[name] = this.translate(property, `${path}.properties.${name}`);
    }
    const required = schema['required'];
    if (required !== undefined) {
      if (!Array.isArray(required)) this.fail(path, "'required' that is not an array");
      for (const name of required) {
        if (typeof name !== 'string' || !(name in properties)) this.fail(path, `'required' naming ${JSON.stringify(name)}, which 'properties' does not declare`);
      }
    }
    const extra = schema['additionalProperties'];
    let additionalProperties: boolean | GbnfJsonSchema;
    if (extra === undefined) additionalProperties = declared === undefined;
    else if (typeof extra === 'boolean') additionalProperties = extra;
    else additionalProperties = this.translate(extra, `${path}.additionalProperties`);
    return {
      type: 'object',
      properties,
      required: Object.keys(properties),
      additionalProperties,
      ...this.counts(schema, path, 'minProperties', 'maxProperties'),
      ...description,
    };
  }

  private array(schema: JsonObject, path: string, description: { description?: string }): GbnfJsonSchema {
    const items = schema['items'];
    let prefixItems = schema['prefixItems'];
    let itemSchema: GbnfJsonSchema | undefined;
    // Draft-07 tuples spell `prefixItems` as an array under `items`.
    if (Array.isArray(items)) prefixItems = items;
    else if (items !== undefined) itemSchema = this.translate(items, `${path}.items`);
    let prefix: GbnfJsonSchema[] | undefined;
    if (prefixItems !== undefined) {
      if (!Array.isArray(prefixItems)) this.fail(path, "'prefixItems' that is not an array");
      prefix = prefixItems.map((item, i) => this.translate(item, `${path}.prefixItems[${i}]`));
    }
    return {
      type: 'array',
      ...(itemSchema === undefined ? {} : { items: itemSchema }),
      ...(prefix === undefined ? {} : { prefixItems: prefix }),
      ...this.counts(schema, path, 'minItems', 'maxItems'),
      ...description,
    };
  }

  private string(schema: JsonObject, path: string, description: { description?: string }): GbnfJsonSchema {
    const format = schema['format'];
    if (format !== undefined) {
      if (format !== 'date-time' && format !== 'date' && format !== 'time') {
        this.fail(path, `the string format ${JSON.stringify(format)} (the grammar knows ${[...grammarFormats].join(', ')})`);
      }
      if (schema['minLength'] !== undefined || schema['maxLength'] !== undefined) this.fail(path, "'format' together with a length bound");
      return { type: 'string', format, ...description };
    }
    if (this.site.toolArguments === true && schema['maxLength'] !== undefined) this.fail(path, "'maxLength' in a tool's parameters (node-llama-cpp counts it in UTF-16 units)");
    return { type: 'string', ...this.counts(schema, path, 'minLength', 'maxLength'), ...description };
  }

  private counts<K extends string>(schema: JsonObject, path: string, min: K, max: K): Partial<Record<K, number>> {
    const result: Partial<Record<K, number>> = {};
    for (const key of [min, max]) {
      const value = schema[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) this.fail(path, `'${key}' that is not a non-negative integer`);
      result[key] = value;
    }
    return result;
  }

  private ref(ref: Json, path: string): GbnfJsonSchema {
    if (typeof ref !== 'string') this.fail(path, "a '$ref' that is not a string");
    const match = /^#\/(?:\$defs|definitions)\/([^/]+)$/.exec(ref);
    const name = match?.[1];
    if (name === undefined) this.fail(path, `the reference ${JSON.stringify(ref)} (only #/$defs/… and #/definitions/… are supported)`);
    this.referenced.set(name, path);
    return { $ref: `#/$defs/${name}` };
  }
}

/**
 * The grammar schema for a client's JSON Schema, or a 400 `unsupported_parameter` naming the first keyword the
 * grammar cannot enforce. Definitions (`$defs` or draft-07 `definitions`) are read from the root only.
 */
export function toGrammarSchema(schema: JsonSchema, site: SchemaSite): GbnfJsonSchema {
  const translator: Translator = new Translator(site);
  const defs: Record<string, GbnfJsonSchema> = {};
  for (const key of ['$defs', 'definitions'] as const) {
    const block = schema[key];
    if (block === undefined) continue;
    if (!isObject(block)) translator.fail(site.path, `'${key}' that is not an object`);
    for (const [name, def] of Object.entries(block)) defs[name] = translator.translate(def, `${site.path}.${key}.${name}`);
  }
  const root = translator.translate(schema, site.path);
  for (const [name, path] of translator.referenced) {
    if (!(name in defs)) translator.fail(path, `a '$ref' to ${JSON.stringify(name)}, which the root's definitions do not hold`);
  }
  if (Object.keys(defs).length === 0) return root;
  // node-llama-cpp reads `$defs` on object, array, oneOf and $ref schemas; any root can be wrapped in a oneOf.
  return { oneOf: [root], $defs: defs };
}
