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
