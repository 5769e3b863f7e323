import type { FastifyInstance } from 'fastify';
import { requireUser } from '../auth/guards.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import { html } from '../views/html.ts';

export async function chatRoutes(app: FastifyInstance, _opts: { db: Db; config: Config }): Promise<void> {
  app.get('/chat', async (req, reply) => {
    const user = requireUser(req);
    return reply.page({ title: 'Chat', body: html`<h1 class="h4">Hello, ${user.username}</h1>` });
  });
}
