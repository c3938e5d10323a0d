import katex from 'katex';
import 'katex/dist/katex.min.css';

/**
 * Math rendering, loaded on first use (a lazy chunk with KaTeX's CSS and
 * fonts). `katex.render` builds DOM nodes and sets their styles through the
 * CSSOM, which the page's CSP allows, so no inline `style` attributes are
 * needed. `trust: false` keeps `\href`, `\url` and `\includegraphics` inert.
 */
export function renderMath(element: HTMLElement): void {
  const tex = element.textContent ?? '';
  const displayMode = element.classList.contains('math-display');
  // No aria-label: on a plain span it is prohibited (axe's aria-prohibited-attr), and KaTeX's MathML already reads the formula.
  element.title = tex;
  try {
    element.replaceChildren();
    katex.render(tex, element, { displayMode, throwOnError: false, trust: false, strict: 'ignore', maxSize: 50, maxExpand: 500, output: 'htmlAndMathml' });
    element.classList.add('math-rendered');
  } catch {
    element.textContent = tex;
  }
}
