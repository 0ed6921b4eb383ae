/**
 * Nodes in the shape fast-xml-builder writes with preserveOrder (the shape xml-tree.ts reads): one key
 * naming the element, its children in order, attributes under `:@`. The builder escapes text and values.
 */
export type XmlNode = Record<string, unknown>

export function element (name: string, attributes: Record<string, string> = {}, children: XmlNode[] = []): XmlNode {
  return Object.keys(attributes).length === 0 ? { [name]: children } : { [name]: children, ':@': attributes }
}

export function textElement (name: string, text: string, attributes: Record<string, string> = {}): XmlNode {
  return element(name, attributes, [{ '#text': text }])
}
