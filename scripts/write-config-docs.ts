import { writeFile } from 'node:fs/promises';
import { configurationReference } from '../src/config/reference.js';

await writeFile(new URL('../docs/configuration.md', import.meta.url), configurationReference());
console.log('wrote docs/configuration.md');
