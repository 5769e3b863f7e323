import { accessSync, constants, statSync } from 'node:fs';

/**
 * Whether the browser journeys run. They need a system Chromium (playwright-core downloads none). A developer
 * without one gets a skip and one line saying how to install it; CI sets REQUIRE_BROWSER=1 so that a missing
 * browser is a failure there and the journeys are never skipped silently. Kept free of heavy imports: the test
 * runner (scripts/test.ts) asks the same question before it starts.
 */
export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

export type BrowserDecision = { run: true; executablePath: string } | { run: false; required: boolean; message: string };

export function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

export function decideBrowser(env: NodeJS.ProcessEnv = process.env, exists: (file: string) => boolean = isExecutableFile): BrowserDecision {
  const executablePath = env.CHROMIUM_PATH || DEFAULT_CHROMIUM_PATH;
  if (exists(executablePath)) return { run: true, executablePath };
  const howTo = 'install it (apt-get install -y chromium) or set CHROMIUM_PATH';
  const required = /^(1|true|yes)$/i.test(env.REQUIRE_BROWSER ?? '');
  return required
    ? { run: false, required, message: `Browser journeys need Chromium (REQUIRE_BROWSER is set) but there is none at ${executablePath}: ${howTo}.` }
    : { run: false, required, message: `Browser journeys skipped: no Chromium at ${executablePath}; ${howTo}.` };
}

/** For `describe(name, { skip: skipWithoutBrowser() }, …)`: the reason to skip, or false (run, and fail if required but missing). */
export function skipWithoutBrowser(env: NodeJS.ProcessEnv = process.env): string | false {
  const decision = decideBrowser(env);
  return !decision.run && !decision.required ? decision.message : false;
}
