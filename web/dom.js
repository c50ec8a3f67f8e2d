// The one way the page builds elements. Text always goes in as text (textContent or text nodes),
// so a message like "<img src=x onerror=...>" shows up as those characters and nothing else.

/**
 * Creates an element. `props` may hold:
 *   className, text (set as textContent), attrs (plain attributes), dataset, hidden, and on
 *   (event listeners by name). Children are nodes or strings (added as text nodes).
 */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { className, text, attrs, dataset, hidden, on } = props;
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  if (hidden) node.hidden = true;
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  Object.assign(node.dataset, dataset ?? {});
  for (const [type, listener] of Object.entries(on ?? {})) node.addEventListener(type, listener);
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

/** Shorthand for document.getElementById that fails loudly on a typo. */
export function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`#${id} is missing from index.html`);
  return node;
}
