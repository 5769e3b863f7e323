import { z } from 'zod';

/**
 * The body of POST /v1/chat/completions (PRODUCT.md, "The OpenAI-compatible API"). Unknown top-level parameters are
 * refused with 400, as OpenAI itself refuses them ("Unrecognized request argument supplied"): a typo'd parameter fails
 * loudly instead of being silently ignored by one upstream and honoured by another (docs/decisions/015). Besides the
 * contract's list, the Chat Completions parameters common clients (LangChain, Continue) send are passed on too.
 */
const textPart = z.strictObject({ type: z.literal('text'), text: z.string() });
const content = z.union([z.string(), z.array(textPart)]);

const toolCall = z.strictObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string(), arguments: z.string() }),
});

const message = z.discriminatedUnion('role', [
  z.strictObject({ role: z.enum(['system', 'developer']), content, name: z.string().optional() }),
  z.strictObject({ role: z.literal('user'), content, name: z.string().optional() }),
  z.strictObject({
    role: z.literal('assistant'),
    content: content.nullable().optional(),
    name: z.string().optional(),
    tool_calls: z.array(toolCall).optional(),
    refusal: z.string().nullable().optional(),
  }),
  z.strictObject({ role: z.literal('tool'), content, tool_call_id: z.string() }),
]);

const tool = z.strictObject({
  type: z.literal('function'),
  function: z.strictObject({
    name: z.string().min(1).max(64),
    description: z.string().optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const number = (min: number, max: number) => z.number().min(min).max(max).nullable().optional();

export const completionRequestSchema = z.strictObject({
  model: z.string().min(1).max(200),
  messages: z.array(message).min(1, "'messages' must hold at least one message."),
  stream: z.boolean().nullable().optional(),
  stream_options: z.strictObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  temperature: number(0, 2),
  top_p: number(0, 1),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  stop: z
    .union([z.string(), z.array(z.string()).max(4)])
    .nullable()
    .optional(),
  seed: z.number().int().nullable().optional(),
  tools: z.array(tool).max(128).optional(),
  tool_choice: z
    .union([z.enum(['none', 'auto', 'required']), z.strictObject({ type: z.literal('function'), function: z.strictObject({ name: z.string() }) })])
    .optional(),
  parallel_tool_calls: z.boolean().optional(),
  frequency_penalty: number(-2, 2),
  presence_penalty: number(-2, 2),
  response_format: z.record(z.string(), z.unknown()).optional(),
  user: z.string().max(256).optional(),
});

export type CompletionRequest = z.infer<typeof completionRequestSchema>;

/** A zod failure as one sentence in OpenAI's style, and the parameter it is about. */
export function describeRequestProblem(error: z.ZodError): { message: string; param: string | null } {
  const issue = error.issues[0];
  if (!issue) return { message: 'The request body is not valid.', param: null };
  const path = issue.path.map(String).join('.');
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k));
    return { message: `Unrecognized request argument supplied: ${keys.join(', ')}`, param: keys[0] ?? null };
  }
  return { message: path ? `Invalid value for '${path}': ${issue.message}` : issue.message, param: path || null };
}

/** Characters of text a request sends (the token estimate when the upstream reports no usage). */
export function requestTextChars(req: CompletionRequest): number {
  let n = 0;
  for (const m of req.messages) {
    const c = 'content' in m ? m.content : null;
    if (typeof c === 'string') n += c.length;
    else if (Array.isArray(c)) for (const p of c) n += p.text.length;
  }
  return n;
}
