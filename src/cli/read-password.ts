import type { ReadStream } from 'node:tty';
import { passwordProblem } from '../auth/passwords.ts';
import { CliError } from './cli-runtime.ts';

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const BACKSPACE = new Set(['\u007f', '\b']);

/** Reads one line from a terminal in raw mode, echoing nothing, so the password stays off the screen and out of scrollback. */
export function readHiddenLine(prompt: string, input: ReadStream, output: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (err?: Error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === CTRL_C || (ch === CTRL_D && value === '')) return finish(new CliError('Cancelled.'));
        if (BACKSPACE.has(ch)) value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    output.write(prompt);
    input.setEncoding('utf8');
    input.setRawMode(true);
    input.on('data', onData);
    input.resume();
  });
}

/** Reads the first line of a pipe or file (`echo "$PW" | npm run user:create …`); the line ending is not part of it. */
export async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  input.setEncoding('utf8');
  for await (const chunk of input) {
    text += chunk as string;
    if (text.includes('\n')) break;
  }
  return (text.split('\n')[0] ?? '').replace(/\r$/, '');
}

/**
 * A new password under the registration rules: typed twice without echo on a terminal, else the first line of
 * stdin (so it can be scripted without putting the password on the command line, where `ps` would show it).
 */
export async function readNewPassword(stdin: NodeJS.ReadStream = process.stdin, prompts: NodeJS.WritableStream = process.stderr): Promise<string> {
  let password: string;
  if (stdin.isTTY) {
    const tty = stdin as ReadStream;
    password = await readHiddenLine('Password: ', tty, prompts);
    const problem = passwordProblem(password);
    if (problem) throw new CliError(`Password refused: ${problem}`);
    if ((await readHiddenLine('Repeat the password: ', tty, prompts)) !== password) throw new CliError('The two passwords differ.');
  } else {
    password = await readFirstLine(stdin);
  }
  const problem = passwordProblem(password);
  if (problem) throw new CliError(`Password refused: ${problem}`);
  return password;
}
