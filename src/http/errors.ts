/** Errors a guard or handler throws; the one error handler (error-handler.ts) turns them into answers. */
export class HttpError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

export class NotFoundError extends HttpError {
  constructor(message = 'Not found') {
    super(404, message);
  }
}

export class ForbiddenError extends HttpError {
  constructor(message = 'You do not have access to this page.') {
    super(403, message);
  }
}

export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, message);
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string) {
    super(400, message);
  }
}

export class TooManyRequestsError extends HttpError {
  readonly retryAfterS: number;
  constructor(message: string, retryAfterS: number) {
    super(429, message);
    this.retryAfterS = retryAfterS;
  }
}

/** Not signed in: pages go to /login, JSON gets 401. */
export class UnauthenticatedError extends HttpError {
  constructor() {
    super(401, 'Sign in to continue.');
  }
}

/**
 * Signed in with the first factor only: pages go to the second step, JSON gets 401 with a message that says so.
 */
export class SecondFactorRequiredError extends HttpError {
  readonly location: string;
  constructor(location: string) {
    super(401, 'Finish signing in: enter the code of your authenticator app first.');
    this.location = location;
  }
}

/** A redirect thrown from a guard (e.g. a signed-in user on /login goes to /chat). */
export class RedirectError extends Error {
  readonly location: string;
  constructor(location: string) {
    super(`redirect to ${location}`);
    this.location = location;
  }
}

/**
 * SQLSTATE classes and codes that mean "the database cannot serve us right now", not "this query is wrong":
 * 08 connection exception, 57P01–57P03 admin/crash shutdown and "cannot connect now" (starting up, shutting
 * down), 53300 too many connections. https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const unavailableSqlStates = /^(08...|57P0[1-3]|53300)$/;
/** Node's socket errors on a connection to the server (refused while it is down, reset when it dies). */
const socketErrorCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** pg's own messages, which carry no code: a connection cut mid-query, a pool connect past its timeout. */
const poolMessages = /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable)/;

/**
 * Whether `err` says the database is unreachable (down, restarting, out of connections) rather than that a query
 * failed: the error handler answers those with a 503 and Retry-After, which a client may retry, instead of a 500.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code } = err as { code?: unknown };
  if (typeof code === 'string' && (unavailableSqlStates.test(code) || socketErrorCodes.has(code))) return true;
  if (poolMessages.test(err.message)) return true;
  // Connecting to a name with several addresses (localhost: ::1 and 127.0.0.1) fails with one error per address.
  return err instanceof AggregateError && err.errors.some(isDatabaseUnavailable);
}
