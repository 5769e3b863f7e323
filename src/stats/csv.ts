/**
 * CSV as RFC 4180 has it (CRLF line ends, fields with a quote, comma or line break quoted, quotes doubled), with
 * formula injection defused: a cell a spreadsheet would evaluate (starting with =, +, -, @, or a tab or carriage
 * return that some spreadsheets skip first) gets a leading apostrophe, as OWASP's CSV injection page recommends.
 * Numbers are written as numbers, so a negative number is not mangled; so is a string that is a plain decimal number
 * (a rounded figure such as "-0.250": a spreadsheet reads it as that number, never as a formula).
 */
const DECIMAL = /^-?\d+(\.\d+)?$/;

export type Cell = string | number | null | undefined | Date;

function field(value: Cell): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '';
  let text = value instanceof Date ? value.toISOString() : value;
  if (DECIMAL.test(text)) return text;
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function toCsv(header: string[], rows: Cell[][]): string {
  return `${[header, ...rows].map((row) => row.map(field).join(',')).join('\r\n')}\r\n`;
}
