import { readEventStream, type SseEvent, SseParser } from './sse.ts';

/** A refusal or failure with the message to show the user (from the API's `{ "error": "…" }` when it sent one). */
export class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
}

async function messageOf(res: Response): Promise<string> {
  if (res.headers.get('content-type')?.includes('application/json')) {
    const body = (await res.json().catch(() => null)) as { error?: unknown } | null;
    if (typeof body?.error === 'string' && body.error) return body.error;
  }
  if (res.status === 401 || res.status === 403) return 'Your session has ended or the page is out of date. Reload the page and try again.';
  if (res.status >= 500) return 'The server had a problem. Try again in a moment.';
  return `The request failed (${res.status}).`;
}

async function send(method: string, url: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  // No content-type without a body: Fastify refuses an empty body announced as JSON.
  const headers: Record<string, string> = { accept, 'x-csrf-token': csrfToken() };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch {
    throw new ApiError('Could not reach the server. Check your connection and try again.', 0);
  }
  if (!res.ok) throw new ApiError(await messageOf(res), res.status);
  // A signed-out session is redirected to the sign-in page, which fetch follows silently.
  if (res.redirected && new URL(res.url).pathname.startsWith('/login')) throw new ApiError('You have been signed out. Reload the page to sign in again.', 401);
  return res;
}

export async function requestJson<T>(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<T> {
  const res = await send(method, url, body);
  if (res.status === 204) return undefined as T;
  try {
    return (await res.json()) as T;
  } catch {
    throw new ApiError('The server sent an answer this page does not understand. Reload the page.', res.status);
  }
}

/**
 * POSTs and reads the answer as server-sent events. Rejects with ApiError when the request is refused (nothing
 * was streamed), with another error when the connection breaks mid-stream.
 */
export async function postEventStream(url: string, body: unknown, onEvent: (event: SseEvent) => void): Promise<void> {
  const res = await send('POST', url, body, 'text/event-stream');
  if (!res.body || !res.headers.get('content-type')?.includes('text/event-stream')) {
    throw new ApiError('The server sent an answer this page does not understand. Reload the page.', res.status);
  }
  await readEventStream(res.body, onEvent);
}

/**
 * postEventStream for a prompt with files: multipart/form-data by XMLHttpRequest, whose upload events give the
 * progress of a large upload (fetch has none), and whose growing responseText is read as the event stream.
 */
export function postEventStreamWithUpload(
  url: string,
  form: FormData,
  onProgress: (fraction: number) => void,
  onEvent: (event: SseEvent) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const parser = new SseParser(onEvent);
    let read = 0;
    const isStream = () => xhr.status >= 200 && xhr.status < 300 && (xhr.getResponseHeader('content-type') ?? '').includes('text/event-stream');
    const feed = () => {
      if (!isStream()) return;
      parser.push(xhr.responseText.slice(read));
      read = xhr.responseText.length;
    };
    xhr.open('POST', url);
    xhr.setRequestHeader('accept', 'text/event-stream');
    xhr.setRequestHeader('x-csrf-token', csrfToken());
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('progress', feed);
    xhr.addEventListener('load', () => {
      if (isStream()) {
        feed();
        parser.end();
        return resolve();
      }
      reject(new ApiError(messageOfXhr(xhr), xhr.status));
    });
    xhr.addEventListener('error', () =>
      read > 0 ? reject(new Error('connection lost')) : reject(new ApiError('Could not reach the server. Check your connection and try again.', 0)),
    );
    xhr.send(form);
  });
}

function messageOfXhr(xhr: XMLHttpRequest): string {
  try {
    const body = JSON.parse(xhr.responseText) as { error?: unknown };
    if (typeof body.error === 'string' && body.error) return body.error;
  } catch {
    // not JSON: the status says enough
  }
  if (xhr.status === 401 || xhr.status === 403) return 'Your session has ended or the page is out of date. Reload the page and try again.';
  if (xhr.status === 413) return 'The files are too large to send.';
  if (xhr.status >= 500) return 'The server had a problem. Try again in a moment.';
  return `The request failed (${xhr.status}).`;
}
