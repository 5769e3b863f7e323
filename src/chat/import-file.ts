import { assertStorableJson } from '../http/storable-text.ts';
import { chatsFromChatGpt } from './chatgpt-conversations.ts';
import { chatsFromParley, ImportRefusedError, type ParsedImport } from './import-formats.ts';
import { EXPORT_FORMAT } from './transfer-format.ts';

/** The largest file the import takes: it is read whole, parsed and stored in one transaction (so: memory and time). */
export const IMPORT_MAX_BYTES = 32 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The uploaded file, its format told by its content (not its name): our export is an object naming its format;
 * ChatGPT's conversations.json is an array of conversations with a `mapping`. Anything else, or a file with a bad
 * chat anywhere in it, is refused whole (ImportRefusedError, a 400).
 */
export function parseImportFile(bytes: Buffer): ParsedImport {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ImportRefusedError('The file is not UTF-8 text. Choose a Parley export (.json) or ChatGPT’s conversations.json.');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ImportRefusedError('The file is not JSON. Choose a Parley export (.json) or ChatGPT’s conversations.json.');
  }
  assertStorableJson(json);
  let parsed: ParsedImport;
  if (Array.isArray(json) && json.every((c) => typeof c === 'object' && c !== null && 'mapping' in c)) parsed = chatsFromChatGpt(json);
  else if (typeof json === 'object' && json !== null && (json as { format?: unknown }).format === EXPORT_FORMAT) parsed = chatsFromParley(json);
  else throw new ImportRefusedError('This file is neither a Parley export nor ChatGPT’s conversations.json.');
  if (parsed.chats.length === 0 && parsed.skipped.length === 0) throw new ImportRefusedError('The file holds no chats.');
  return parsed;
}
