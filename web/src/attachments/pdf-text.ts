import { PDF_MAX_PAGES } from './limits.js';

/**
 * A PDF's text, page by page, by PDF.js. It is loaded on the first PDF only (a chunk of its own, outside the
 * page's initial JavaScript), and its worker is a file of this build served from this origin, which the CSP's
 * `script-src 'self'` already allows: no eval (`isEvalSupported: false`), no fonts loaded, nothing remote.
 */
export async function pdfText(data: ArrayBuffer): Promise<string> {
  const [pdfjs, worker] = await Promise.all([import('pdfjs-dist'), import('pdfjs-dist/build/pdf.worker.min.mjs?url')]);
  pdfjs.GlobalWorkerOptions.workerSrc = worker.default;
  const task = pdfjs.getDocument({ data: new Uint8Array(data), isEvalSupported: false, disableFontFace: true, useSystemFonts: false, stopAtErrors: false });
  const document = await task.promise;
  try {
    if (document.numPages > PDF_MAX_PAGES) throw new Error(`it has ${document.numPages} pages; PDFs of up to ${PDF_MAX_PAGES} pages can be read`);
    const pages: string[] = [];
    for (let number = 1; number <= document.numPages; number++) {
      const page = await document.getPage(number);
      const content = await page.getTextContent();
      let text = '';
      for (const item of content.items) {
        if (!('str' in item)) continue;
        text += item.str;
        if (item.hasEOL) text += '\n';
      }
      pages.push(text.trim());
      page.cleanup();
    }
    return pages.filter(Boolean).join('\n\n');
  } finally {
    await document.destroy();
  }
}
