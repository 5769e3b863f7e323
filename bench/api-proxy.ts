import { createServer } from 'node:http';

/**
 * The baseline of `npm run bench -- api-throughput`: a bare node:http server that forwards each request body to the
 * upstream's /chat/completions with fetch and sends the answer back — no key, no database, no counting.
 */
const upstream = process.env.UPSTREAM_URL ?? '';
const server = createServer(async (req, res) => {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  const answer = await fetch(`${upstream}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat(parts) });
  res.writeHead(answer.status, { 'content-type': 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  console.log(`proxy on http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`);
});
