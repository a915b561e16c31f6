import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** One name in a directory listing. */
export interface ListingEntry {
  name: string;
  /** A directory, or a symbolic link to one: its link ends in `/`. */
  directory: boolean;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and double-quoted attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/**
 * Reads a directory's entries, sorted case-insensitively as Python's http.server lists them. A symbolic
 * link is followed only to tell whether it names a directory; a broken one is listed as a file.
 */
export async function readListing(directory: string): Promise<ListingEntry[]> {
  const dirents = await readdir(directory, { withFileTypes: true });
  const entries = await Promise.all(
    dirents.map(async (dirent): Promise<ListingEntry> => {
      let isDirectory = dirent.isDirectory();
      if (dirent.isSymbolicLink())
        isDirectory = await stat(join(directory, dirent.name)).then(
          (s) => s.isDirectory(),
          () => false,
        );
      return { name: dirent.name, directory: isDirectory };
    }),
  );
  return entries.sort((a, b) => a.name.toLowerCase().localeCompare(b.name.toLowerCase()) || a.name.localeCompare(b.name));
}

/**
 * Renders a listing page. Names are HTML-escaped; links are relative and percent-encoded, so a name such
 * as `javascript:x` or `//host` stays a relative link to that entry.
 * @param urlPath the directory's decoded URL path (for the title), ending in `/`.
 */
export function renderListing(urlPath: string, entries: readonly ListingEntry[]): string {
  const title = `Directory listing for ${escapeHtml(urlPath)}`;
  const items = entries.map((entry) => {
    const suffix = entry.directory ? '/' : '';
    return `<li><a href="${escapeHtml(encodeURIComponent(entry.name) + suffix)}">${escapeHtml(entry.name + suffix)}</a></li>`;
  });
  if (urlPath !== '/') items.unshift('<li><a href="../">../</a></li>');
  return [
    '<!DOCTYPE html>',
    '<html>',
    `<head><meta charset="utf-8"><title>${title}</title></head>`,
    `<body>`,
    `<h1>${title}</h1>`,
    '<hr>',
    '<ul>',
    ...items,
    '</ul>',
    '<hr>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
