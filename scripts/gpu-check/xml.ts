/**
 * A small XML reader, enough for `nvidia-smi -q -x`: elements, attributes, text, entities,
 * comments, CDATA, the XML declaration and a DOCTYPE (skipped). No namespaces, no DTD
 * processing. Written here because the GPU host has no package registry.
 */

export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** The element's own text (its text nodes joined), trimmed. */
  text: string;
}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decode(raw: string, at: number): string {
  return raw.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-zA-Z]+);/g, (whole, ent: string) => {
    if (ent.startsWith('#x')) return String.fromCodePoint(parseInt(ent.slice(2), 16));
    if (ent.startsWith('#')) return String.fromCodePoint(parseInt(ent.slice(1), 10));
    const v = ENTITIES[ent];
    if (v === undefined) throw new Error(`unknown entity ${whole} near offset ${at}`);
    return v;
  });
}

export function parseXml(text: string): XmlElement {
  let i = 0;
  const stack: { el: XmlElement; texts: string[] }[] = [];
  let root: XmlElement | undefined;
  const fail = (what: string): never => {
    const line = text.slice(0, i).split('\n').length;
    throw new Error(`XML line ${line}: ${what}`);
  };
  const skipPast = (end: string): void => {
    const j = text.indexOf(end, i);
    if (j < 0) fail(`no closing ${end}`);
    i = j + end.length;
  };
  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt < 0 ? text.slice(i) : text.slice(i, lt);
    if (chunk.length > 0) {
      if (stack.length > 0) stack[stack.length - 1]!.texts.push(decode(chunk, i));
      else if (chunk.trim() !== '') fail('text outside the root element');
    }
    if (lt < 0) break;
    i = lt;
    if (text.startsWith('<?', i)) {
      skipPast('?>');
    } else if (text.startsWith('<!--', i)) {
      skipPast('-->');
    } else if (text.startsWith('<![CDATA[', i)) {
      const j = text.indexOf(']]>', i);
      if (j < 0) fail('unclosed CDATA');
      if (stack.length > 0) stack[stack.length - 1]!.texts.push(text.slice(i + 9, j));
      i = j + 3;
    } else if (text.startsWith('<!', i)) {
      // DOCTYPE, possibly with an internal subset in [...]
      let depth = 0;
      for (; i < text.length; i++) {
        const c = text[i];
        if (c === '[') depth++;
        else if (c === ']') depth--;
        else if (c === '>' && depth === 0) break;
      }
      i++;
    } else if (text.startsWith('</', i)) {
      const m = /^<\/([A-Za-z_][\w.:-]*)\s*>/.exec(text.slice(i, i + 200));
      if (!m) fail('bad closing tag');
      const top = stack.pop();
      if (!top || top.el.name !== m![1]) fail(`closing </${m![1]}> does not match <${top?.el.name ?? '(none)'}>`);
      top!.el.text = top!.texts.join('').trim();
      i += m![0].length;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(i, i + 4096));
      if (!m) fail('bad opening tag');
      const attrs: Record<string, string> = {};
      for (const a of m![2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) attrs[a[1]!] = decode(a[2] ?? a[3] ?? '', i);
      const el: XmlElement = { name: m![1]!, attrs, children: [], text: '' };
      if (stack.length > 0) stack[stack.length - 1]!.el.children.push(el);
      else if (root) fail('a second root element');
      else root = el;
      if (m![3] !== '/') stack.push({ el, texts: [] });
      i += m![0].length;
    }
  }
  if (stack.length > 0) fail(`<${stack[stack.length - 1]!.el.name}> is never closed`);
  if (!root) fail('no root element');
  return root!;
}

export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

export function childrenNamed(el: XmlElement | undefined, name: string): XmlElement[] {
  return el?.children.filter((c) => c.name === name) ?? [];
}

/** The text at a slash-separated path below `el` ("fb_memory_usage/total"), or undefined. */
export function textAt(el: XmlElement | undefined, path: string): string | undefined {
  let cur = el;
  for (const part of path.split('/')) cur = child(cur, part);
  return cur?.text;
}
