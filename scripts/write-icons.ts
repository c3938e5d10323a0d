/**
 * Writes the installable page's PNG icons (web/public/icon-*.png) from the
 * logo in web/public/favicon.svg, rendered by Chromium: 192 and 512 px as the
 * logo is, and a 512 px maskable one (full-bleed background, the glyph inside
 * the central safe zone, which launchers may crop to a circle). Run it again
 * after changing the logo: npx tsx scripts/write-icons.ts
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { chromiumPath } from '../test/browser/harness.js';

const publicDir = fileURLToPath(new URL('../web/public/', import.meta.url));

async function main(): Promise<void> {
  const logo = await readFile(`${publicDir}favicon.svg`, 'utf8');
  const background = /<rect[^>]*fill="([^"]+)"/.exec(logo)?.[1] ?? '#3b5bdb';
  const glyph = /<path[^>]*\/>/.exec(logo)?.[0] ?? '';
  // The glyph at 85% of its size in the logo: its corners stay inside the maskable safe zone (a circle of 80% of the width).
  const maskable = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" fill="${background}"/><g transform="translate(16 17.5) scale(0.85) translate(-16 -17.5)">${glyph}</g></svg>`;
  const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const icons = [
      { file: 'icon-192.png', size: 192, svg: logo },
      { file: 'icon-512.png', size: 512, svg: logo },
      { file: 'icon-maskable-512.png', size: 512, svg: maskable },
    ];
    for (const { file, size, svg } of icons) {
      const page = await browser.newPage({ viewport: { width: size, height: size } });
      const sized = svg.replace('<svg ', `<svg width="${size}" height="${size}" `);
      await page.setContent(`<!doctype html><style>html,body{margin:0;background:transparent}svg{display:block}</style>${sized}`);
      await page.screenshot({ path: `${publicDir}${file}`, omitBackground: true });
      await page.close();
      console.log(`wrote web/public/${file}`);
    }
  } finally {
    await browser.close();
  }
}

await main();
