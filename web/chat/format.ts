/** "0.8 s", "12 s", "2 min 5 s". The twin of formatDuration in src/chat/chat-turn-views.ts (web/ imports nothing from src/). */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

const TITLE_MAX_CHARS = 60;

/** The title the server gives a chat from its first prompt (titleFrom in src/chat/chat-queries.ts), shown before any reload. */
export function titleFromPrompt(prompt: string): string {
  const oneLine = prompt.replace(/\s+/g, ' ').trim();
  const chars = [...oneLine]; // code points, so an emoji is never cut in half
  return chars.length > TITLE_MAX_CHARS ? `${chars.slice(0, TITLE_MAX_CHARS - 1).join('')}…` : oneLine || 'New chat';
}
