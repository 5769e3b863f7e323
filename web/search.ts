import { wireSearchShortcut } from './chat/search-shortcut.ts';

/** The search results page (/chat/search): only its shortcut; the search itself is a plain GET form. */
wireSearchShortcut();
