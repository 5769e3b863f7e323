/**
 * CSV as RFC 4180 writes it: CRLF line ends; a field with a comma, quote, CR or LF is quoted, its quotes doubled.
 * And against formula injection (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with = + - @, tab or
 * CR as a formula, and usernames and audit details are typed by others, so such a cell gets a leading apostrophe.
 */
export function csvField(value: string | number | null | undefined): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvLine(fields: (string | number | null | undefined)[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}
