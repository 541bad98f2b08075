// The portal's one DOM builder: el("a", {href, text, class, onclick}, ...children).
// "text" sets textContent (never innerHTML: values come from the services),
// "class" the class name, on<event> a listener, anything else an attribute;
// null and undefined children are left out.
export function el(tag, props = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...kids.filter((k) => k !== null && k !== undefined));
  return node;
}
