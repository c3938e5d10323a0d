/**
 * How large a file the page attaches. The server's own limit on a request's body (`--body-limit`, 1 MiB by
 * default; `/parlance/api/models` says it) binds the whole message; these bound each file before it is read,
 * so that a person dropping a film or a disk image gets a sentence, not a frozen tab.
 */
export const TEXT_FILE_MAX_BYTES = 2 * 1024 * 1024;
export const PDF_FILE_MAX_BYTES = 20 * 1024 * 1024;
export const IMAGE_FILE_MAX_BYTES = 10 * 1024 * 1024;
/** Pages of a PDF read for text; a longer document is refused rather than read for minutes. */
export const PDF_MAX_PAGES = 500;
/** As the server's ATTACHMENT_TEXT_MAX_CHARS. */
export const TEXT_MAX_CHARS = 1_000_000;

/** `1.5 MB`, `320 KB`, `12 bytes`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
