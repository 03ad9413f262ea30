/** A small XML well-formedness check (Deno has no DOM parser): tags nest, attributes are
 * quoted, entities are escaped. Enough to catch a broken SVG. */

export function checkXml(xml: string): void {
  const stack: string[] = [];
  const re =
    /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>|<|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);|&/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(xml))) {
    const tok = m[0];
    if (tok === "<") {
      throw new Error(`malformed tag at ${m.index}: ${xml.slice(m.index, m.index + 60)}`);
    }
    if (tok === "&") throw new Error(`bare & at ${m.index}`);
    if (tok.startsWith("<!--") || tok.startsWith("<?") || tok.startsWith("&")) continue;
    const [, close, name, , selfClose] = m;
    if (close) {
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}> at ${m.index}`);
    } else if (!selfClose) stack.push(name);
  }
  if (stack.length) throw new Error(`unclosed: ${stack.join(" > ")}`);
}
