import fastJson from 'fast-json-stringify';
import type { FastifySerializerCompiler } from 'fastify';
import { z } from 'zod';

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
