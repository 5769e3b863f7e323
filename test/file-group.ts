import { createRequire } from 'node:module';
import path from 'node:path';
import { describe } from 'node:test';

const require = createRequire(import.meta.url);

/**
 * Runs several test files in this one process (scripts/test.ts writes the entry that calls this): each file is loaded
 * inside a suite named by its path, so its top-level `before`/`after` hooks and tests belong to that suite, run
 * before the next file's, and its `after` closes its world before the next file opens one. (`node --test
 * --test-isolation=none` would hang every file's top-level hooks on one shared root: all `before`s first, all
 * `after`s at the very end.)
 *
 * A file is loaded with `require`, synchronously inside the suite's callback: node:test finds the suite a `test()`
 * call belongs to from the async context, which an `import()` would leave before the file's body runs. So a file
 * reaching a module with top-level await cannot be loaded so; scripts/test-processes.ts gives such a file a
 * process of its own. A file that fails to load fails its suite, with the error, and the next file still runs.
 */
export function runFilesInOneProcess(root: string, files: readonly string[]): void {
  for (const file of files) {
    describe(file, () => {
      require(path.resolve(root, file));
    });
  }
}
