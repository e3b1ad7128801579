import fastJson from 'fast-json-stringify';
import type { FastifySchemaCompiler, FastifySchemaValidationError, FastifySerializerCompiler } from 'fastify';
import { validatorCompiler as zodValidatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';

/**
 * How Fastify compiles the routes' zod schemas: input is checked by zod (its messages name the
 * field in our 400s), output is written by code compiled from the same schemas.
 */

/**
 * Answers are serialised by code compiled from each route's zod response schema, not by zod.
 *
 * The zod schemas stay the one source of the contract (they validate input, type the handlers
 * and feed the OpenAPI document); for output, each is turned into JSON Schema once, when Fastify
 * compiles the route, and handed to fast-json-stringify, the compiler Fastify itself uses for
 * JSON Schema. zod's own serializer (fastify-type-provider-zod's) re-validates and copies every
 * answer before `JSON.stringify`: 4–5 µs per answer against about 0.6 µs, on the two answers
 * every booking gets (the 202 and its poll), measured in bench/RESULTS.md.
 *
 * What an answer may carry is unchanged: only the schema's properties are written (unknown
 * keys are dropped, as zod's object parsing stripped them) and a missing required property
 * still fails the answer. What is no longer checked at run time is each value's type and format
 * (the handlers' TypeScript types check those at compile time); fast-json-stringify coerces
 * rather than refuses.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType | { properties: z.ZodType }> = ({ schema }) => {
  const zodSchema = schema instanceof z.ZodType ? schema : schema.properties;
  // `output`: the shape a handler returns. Unrepresentable parts (none today) are written as they are.
  const jsonSchema = z.toJSONSchema(zodSchema, { io: 'output', target: 'draft-7', unrepresentable: 'any' });
  return fastJson(jsonSchema as Parameters<typeof fastJson>[0]);
};

type ValidationResult = { value?: unknown; error?: Error | FastifySchemaValidationError[] };

/**
 * zod's validation, except that valid headers are left as they came. zod hands back a new object
 * holding only the headers the schema names; Fastify keeps it beside the raw headers and merges
 * the two into a fresh copy on every read of `request.headers` (the route's, the compression's,
 * the logger's): an object of every header per read, per request. When zod changed no value the
 * merge equals the raw headers, so nothing is handed back; a schema that does transform a
 * header still gets its value through.
 */
export const validatorCompiler: FastifySchemaCompiler<z.ZodType> = (route) => {
  const validate = zodValidatorCompiler(route) as (data: unknown) => ValidationResult;
  if (route.httpPart !== 'headers') return validate;
  return (data: unknown) => {
    const result = validate(data);
    if (result.error !== undefined || !isRecord(data) || !isRecord(result.value)) return result;
    const raw = data;
    const unchanged = Object.entries(result.value).every(([name, value]) => raw[name] === value);
    return unchanged ? {} : result;
  };
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}
