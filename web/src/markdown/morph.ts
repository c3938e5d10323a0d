/**
 * Makes the children of `live` match those of `next`, keeping every live node that already matches (same
 * element name, or a text node) and changing only what differs: text that grew, attributes, nodes added or
 * dropped at the end. A streaming block's new rendering is mostly its old one with more text at the end, so
 * the browser restyles, lays out and repaints that last line, not the whole block (replacing its nodes made
 * it redo all of them on every draw). `next` gives up the nodes that are moved from it.
 */
export function morphChildren(live: Node, next: Node): void {
  let current = live.firstChild;
  let incoming = next.firstChild;
  while (incoming !== null) {
    const following = incoming.nextSibling;
    if (current === null) {
      live.appendChild(incoming);
    } else if (sameKind(current, incoming)) {
      if (current.nodeType === Node.ELEMENT_NODE) {
        syncAttributes(current as Element, incoming as Element);
        morphChildren(current, incoming);
      } else if (current.nodeValue !== incoming.nodeValue) current.nodeValue = incoming.nodeValue;
      current = current.nextSibling;
    } else {
      const replaced = current;
      current = current.nextSibling;
      live.replaceChild(incoming, replaced);
    }
    incoming = following;
  }
  while (current !== null) {
    const extra = current;
    current = current.nextSibling;
    live.removeChild(extra);
  }
}

function sameKind(a: Node, b: Node): boolean {
  return a.nodeType === b.nodeType && a.nodeName === b.nodeName && (a.nodeType === Node.ELEMENT_NODE || a.nodeType === Node.TEXT_NODE);
}

function syncAttributes(live: Element, next: Element): void {
  for (const name of live.getAttributeNames()) if (!next.hasAttribute(name)) live.removeAttribute(name);
  for (const name of next.getAttributeNames()) {
    const value = next.getAttribute(name) ?? '';
    if (live.getAttribute(name) !== value) live.setAttribute(name, value);
  }
}
